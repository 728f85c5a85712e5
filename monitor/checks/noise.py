"""noise: strong noise, by Immerkær's fast noise-sigma estimate on native-resolution luma.

The estimate (a Laplacian-difference mask that cancels smooth structure) runs on a centred crop
of the full-resolution luma, since downscaling would average noise away. Compression smooths
noise in predicted frames, so the threshold is both absolute and relative to the stream's own
noise floor (a grainy night camera is normal for itself).
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.baseline import Baseline
from monitor.checks.registry import register
from monitor.checks.view import FrameView

_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise_sigma(luma: np.ndarray) -> float:
    conv = cv2.filter2D(luma.astype(np.float32), -1, _MASK)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(conv).mean() / 6.0)


class NoiseConfig(CheckConfig):
    raise_after_s: float = Field(1.0, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    min_sigma: float = Field(2.5, gt=0, description="noise sigma (luma levels) that is noisy")
    min_ratio: float = Field(1.8, ge=1, description="...and at least this x the stream's baseline")
    critical_sigma: float = Field(8.0, gt=0)
    baseline_tau_s: float = Field(60.0, gt=0)
    warmup_s: float = Field(3.0, ge=0)


@register
class NoiseCheck(Check):
    name = "noise"
    Config = NoiseConfig
    config: NoiseConfig

    def __init__(self, config: NoiseConfig) -> None:
        super().__init__(config)
        self._baseline = Baseline(config.baseline_tau_s, config.warmup_s)

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        sigma = noise_sigma(view.native_crop)
        ratio = self._baseline.ratio(sigma, floor=0.3)
        active = sigma >= c.min_sigma and (ratio is None or ratio >= c.min_ratio)
        if not active:
            self._baseline.update(sigma, view.frame.stream_time)
        m = {"sigma": round(sigma, 2)}
        if ratio is not None:
            m["ratio"] = round(ratio, 2)
        return CheckResult(active, "critical" if sigma >= c.critical_sigma else "warning", m)
