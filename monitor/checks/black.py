"""black: the picture is (nearly) black, with ffmpeg blackdetect's two thresholds."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView


class BlackConfig(CheckConfig):
    raise_after_s: float = Field(1.0, ge=0)
    clear_after_s: float = Field(3.0, ge=0)
    # ffmpeg's blackdetect defaults to 0.10, which also takes a badly underexposed picture
    # (gain x0.12, luma ~10-20) for black; 0.05 keeps "black" for a picture with no content.
    pixel_threshold: float = Field(
        0.05, gt=0, lt=1, description="a pixel is dark when its luma is below this fraction of full scale"
    )
    min_fraction: float = Field(0.98, gt=0, le=1, description="black when at least this fraction of pixels is dark")


@register
class BlackCheck(Check):
    name = "black"
    Config = BlackConfig
    config: BlackConfig

    def evaluate(self, view: FrameView) -> CheckResult:
        gray = view.gray
        limit = self.config.pixel_threshold * 255.0
        dark_fraction = float(np.count_nonzero(gray < limit)) / gray.size
        return CheckResult(
            active=dark_fraction >= self.config.min_fraction,
            severity="critical",
            measurements={"dark_fraction": round(dark_fraction, 4), "mean_luma": round(view.mean_luma, 2)},
        )
