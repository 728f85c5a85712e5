"""black: the picture is (nearly) black: dark everywhere between the graphics bands (ffmpeg
blackdetect's thresholds; a clock or logo may stay on), with no content left in it (a badly
underexposed picture is dark too, but still shows its scene). Content is looked for in the
middle of the picture, clear of graphics that reach past the bands (a big channel logo): a dim
scene, or a lit object in a night scene (a floodlit mast) that covers a sliver of the picture."""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView, core_rows

# Rows clear of graphics that reach past the usual band (a big logo, a two-line clock).
MIDDLE_BAND = 0.2


class BlackConfig(CheckConfig):
    raise_after_s: float = Field(1.0, ge=0)
    clear_after_s: float = Field(3.0, ge=0)
    # ffmpeg's blackdetect default. It also takes a badly underexposed picture (gain x0.12,
    # luma ~10-20) for dark, which is why black also needs the picture to have no content.
    pixel_threshold: float = Field(
        0.10, gt=0, lt=1, description="a pixel is dark when its luma is below this fraction of full scale"
    )
    min_fraction: float = Field(
        0.98, gt=0, le=1, description="black when this fraction of the picture between the graphics bands is dark"
    )
    min_fraction_all: float = Field(
        0.90, gt=0, le=1, description="...and this fraction of the whole picture (a clock or logo may stay on)"
    )
    max_content_std: float = Field(
        4.0, ge=0, description="...and the denoised picture varies less than this (an underexposed one has content)"
    )
    max_lit_fraction: float = Field(
        0.005, ge=0, le=1, description="...and at most this fraction of it is lit (a floodlit object at night)"
    )


@register
class BlackCheck(Check):
    name = "black"
    alters_picture = True
    Config = BlackConfig
    config: BlackConfig

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        gray = view.gray
        limit = c.pixel_threshold * 255.0
        core = core_rows(gray.shape[0])
        dark_all = 1.0 - view.fraction_at_or_above(math.ceil(limit))  # luma < limit, from the shared histogram
        dark = float(np.count_nonzero(gray[core] < limit)) / gray[core].size
        active = dark >= c.min_fraction and dark_all >= c.min_fraction_all
        m = {"dark_fraction": round(dark, 4), "mean_luma": round(view.mean_luma, 2)}
        if active:
            middle = view.gray_median[core_rows(gray.shape[0], MIDDLE_BAND)]
            content = float(middle.std())
            lit = float(np.count_nonzero(middle >= limit)) / middle.size
            active = content < c.max_content_std and lit <= c.max_lit_fraction
            m["content_std"] = round(content, 2)
            m["lit_fraction"] = round(lit, 4)
        return CheckResult(active=active, severity="critical", measurements=m)
