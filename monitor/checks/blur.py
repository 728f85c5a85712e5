"""blur: the picture lost sharpness compared with what is normal for this stream.

Sharpness is the variance of the Laplacian of the analysis copy; its per-stream baseline is
learned online from frames not flagged. Naturally soft content has a low baseline, so only a
drop relative to it counts. A scene change (a cut, a pan to new content) is not a defocus: when
the coarse layout of the picture (a 16x9 thumbnail) moves away from the one the baseline was
learned on, the baseline is re-learned instead of flagging the new content.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import BaselineCheck, BaselineCheckConfig, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView


class BlurConfig(BaselineCheckConfig):
    raise_after_s: float = Field(1.5, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    max_ratio: float = Field(0.35, gt=0, lt=1, description="blurred when sharpness < this x the stream's baseline")
    critical_ratio: float = Field(0.12, gt=0, lt=1, description="critical below this x baseline")
    min_baseline: float = Field(
        15.0, ge=0, description="streams whose normal sharpness is below this (a clear sky) are not judged"
    )
    scene_change: float = Field(
        12.0, gt=0, description="mean |Δ| of the 16x9 thumbnail (0-255) that counts as new content"
    )
    baseline_tau_s: float = Field(30.0, gt=0)


def thumbnail(gray: np.ndarray) -> np.ndarray:
    return cv2.resize(gray, (16, 9), interpolation=cv2.INTER_AREA).astype(np.float32)


@register
class BlurCheck(BaselineCheck):
    name = "blur"
    Config = BlurConfig
    config: BlurConfig

    def __init__(self, config: BlurConfig) -> None:
        super().__init__(config)
        self._ref_thumb: np.ndarray | None = None

    def evaluate(self, view: FrameView) -> CheckResult:
        t = view.frame.stream_time
        # A 3x3 median first: it keeps edges (what defocus removes) but drops pixel noise, which
        # would otherwise read as extra sharpness.
        sharp = float(cv2.Laplacian(view.gray_median, cv2.CV_32F).var())
        thumb = thumbnail(view.gray)
        scene = float(np.abs(thumb - self._ref_thumb).mean()) if self._ref_thumb is not None else 0.0
        m = {"sharpness": round(sharp, 1), "scene": round(scene, 2)}
        base = self._baseline.value
        ratio = self._baseline.ratio(sharp, floor=1.0)
        if base is not None:
            m["baseline"] = round(base, 1)
        if scene > self.config.scene_change:
            # New content: learn it as normal rather than comparing it with the old scene.
            self._baseline = self.new_baseline()
            self._baseline.update(sharp, t)
            self._ref_thumb = thumb
            return CheckResult(active=False, measurements=m)
        blurred = (
            ratio is not None
            and base is not None
            and base >= self.config.min_baseline
            and ratio < self.config.max_ratio
        )
        if ratio is not None:
            m["ratio"] = round(ratio, 3)
        if not blurred:
            # Learn upward only gradually: noise inflates Laplacian variance, and a noisy spell
            # must not make the clean picture after it look blurred.
            capped = sharp if base is None else min(sharp, 2.0 * base)
            self._baseline.update(capped, t)
        self._ref_thumb = thumb
        severity = "critical" if ratio is not None and ratio < self.config.critical_ratio else "warning"
        return CheckResult(active=blurred, severity=severity, measurements=m)
