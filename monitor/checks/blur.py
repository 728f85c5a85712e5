"""blur: the picture lost sharpness compared with what is normal for this stream.

Sharpness is the variance of the Laplacian of the denoised analysis copy, relative to the
picture's variance (so exposure changes do not read as focus changes), between the graphics
bands (the top and bottom of the picture, where a clock or a logo stays sharp on top of a
defocused picture); defocus removes the strong edges that dominate it. Its
per-stream baseline is learned from frames not flagged, and not while the picture is on its
way down (a gradual defocus would otherwise drag the baseline with it). Naturally soft content
has a low baseline, so only a drop relative to it counts. New content (a cut, a camera switch,
a pan) is not a defocus: when the picture's layout no longer matches the baseline's, the
baseline is learned anew (see BaselineCheck.judge).
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
    max_ratio: float = Field(0.45, gt=0, lt=1, description="blurred when sharpness < this x the stream's baseline")
    doubt_ratio: float = Field(0.75, gt=0, lt=1, description="below this x baseline the baseline stops learning")
    critical_ratio: float = Field(0.12, gt=0, lt=1, description="critical below this x baseline")
    min_baseline: float = Field(
        5.0, ge=0, description="streams whose normal sharpness is below this (a clear sky) are not judged"
    )
    baseline_tau_s: float = Field(30.0, gt=0)


def sharpness(denoised: np.ndarray, band: float = 0.12) -> float:
    """Variance of the Laplacian over the picture's own variance (x100), between the graphics
    bands (top and bottom, where a clock or a logo stays sharp whatever the lens does). Dividing
    by the picture's variance makes it blind to exposure: a darker or washed-out picture of the
    same scene is no sharper or softer."""
    h = denoised.shape[0]
    b = int(h * band)
    core = denoised[b : h - b] if h - 2 * b >= 8 else denoised
    lap = float(cv2.Laplacian(core, cv2.CV_32F).var())
    return 100.0 * lap / max(float(core.astype(np.float32).var()), 4.0)


@register
class BlurCheck(BaselineCheck):
    name = "blur"
    Config = BlurConfig
    config: BlurConfig

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        sharp = sharpness(view.gray_median)
        base = self._baseline.value if self._baseline.ready else None
        ratio = self._baseline.ratio(sharp, floor=1.0)
        judged = base is not None and base >= c.min_baseline and ratio is not None
        active, corr = self.judge(
            view,
            # Learn upward only gradually: noise inflates the Laplacian, and a noisy spell must
            # not make the clean picture after it look blurred.
            sharp if base is None else min(sharp, 2.0 * base),
            suspect=judged and ratio < c.max_ratio,
            doubtful=judged and ratio < c.doubt_ratio,
        )
        m = {"sharpness": round(sharp, 1)}
        if base is not None:
            m["baseline"] = round(base, 1)
        if ratio is not None:
            m["ratio"] = round(ratio, 3)
        if corr is not None:
            m["layout_correlation"] = round(corr, 2)
        severity = "critical" if ratio is not None and ratio < c.critical_ratio else "warning"
        return CheckResult(active=active, severity=severity, measurements=m)
