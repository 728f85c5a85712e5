"""freeze: the decoded picture stops changing.

A true freeze repeats frames, so consecutive samples are near-identical (mean absolute luma
difference ~0). A static scene still carries sensor noise (difference ~0.3-2), and a slow fade
shifts the mean brightness steadily; neither is a freeze. The encoder refreshes the picture at
each key frame, which gives a small difference spike inside a real freeze: a key frame that
differs only a little does not break a freeze that is already running.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView


class FreezeConfig(CheckConfig):
    raise_after_s: float = Field(1.5, ge=0)
    clear_after_s: float = Field(1.0, ge=0)
    max_difference: float = Field(0.15, gt=0, description="mean |Δluma| (0-255) below which two samples are the same")
    max_local_difference: float = Field(
        1.0, gt=0, description="...and no 16x16 region differs by more (a ticking clock is not a freeze)"
    )
    keyframe_tolerance: float = Field(
        3.0, ge=0, description="a key frame differing by less than this does not end a running freeze"
    )
    refresh_spread: float = Field(
        2.2, gt=1, description="...if no 16x16 region changes more than this x the mean change"
    )


@register
class FreezeCheck(Check):
    name = "freeze"
    Config = FreezeConfig
    config: FreezeConfig

    def __init__(self, config: FreezeConfig) -> None:
        super().__init__(config)
        self._prev: np.ndarray | None = None
        self._frozen = False

    def evaluate(self, view: FrameView) -> CheckResult:
        cur = view.gray_f
        prev, self._prev = self._prev, cur
        if prev is None or prev.shape != cur.shape:
            self._frozen = False
            return CheckResult(active=False)
        delta = cv2.absdiff(cur, prev)
        diff = float(cv2.mean(delta)[0])
        h, w = delta.shape
        local = float(cv2.resize(delta, (max(1, w // 16), max(1, h // 16)), interpolation=cv2.INTER_AREA).max())
        # A low-contrast picture (dim, hazy) changes little even when it moves: scale the limits
        # with its contrast so a dark moving scene is not taken for a frozen one.
        scale = min(1.0, max(0.1, float(cv2.meanStdDev(view.gray)[1][0, 0]) / 40.0))
        frozen = diff < self.config.max_difference * scale and local < self.config.max_local_difference * scale
        # The key-frame refresh of a frozen picture is small and spread evenly over the picture; a
        # ticking clock that happens to change on a key frame is a local change on top of it.
        refresh = diff < self.config.keyframe_tolerance and local < self.config.refresh_spread * diff
        if not frozen and self._frozen and view.frame.keyframe and refresh:
            frozen = True
        self._frozen = frozen
        m = {"difference": round(diff, 3), "local_difference": round(local, 2), "contrast_scale": round(scale, 2)}
        return CheckResult(active=frozen, severity="critical", measurements=m)
