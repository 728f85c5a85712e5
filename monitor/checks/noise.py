"""noise: strong noise, by Immerkær's fast noise-sigma estimate on native-resolution luma.

The estimate (a Laplacian-difference mask that cancels smooth structure) runs on a centred crop
of the full-resolution luma, since downscaling would average noise away. It is taken per 16x16
block and the 30th percentile of the blocks is kept: edges, texture, rain or snow raise some
blocks, noise raises all of them. Compression smooths noise in predicted frames, so the
threshold is both absolute and relative to the stream's own noise floor (a grainy night camera
is normal for itself), key frames against key frames and predicted frames against predicted
ones; noise far stronger than any camera's grain is a fault on its own.

Right after another fault that changed the picture (a defocus) clears, the encoder spends bits
on the detail coming back and keeps more of the sensor's grain than it did before the fault,
for a second or two; meanwhile only noise above absolute_sigma is (see base.SETTLE_S).
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import BaselineCheck, BaselineCheckConfig, CheckResult, Settling
from monitor.checks.registry import register
from monitor.checks.view import FrameView

# Immerkaer's mask [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] is the outer product of this with
# itself: two passes of 3 taps give the same result as one of 9 in a fifth of the time.
_SECOND_DIFFERENCE = np.array([1, -2, 1], np.float32)


def noise_sigma(luma: np.ndarray, block: int = 16, percentile: float = 30.0) -> float:
    conv = cv2.sepFilter2D(luma, cv2.CV_32F, _SECOND_DIFFERENCE, _SECOND_DIFFERENCE)[1:-1, 1:-1]
    conv = np.abs(conv, out=conv)
    h, w = conv.shape
    hh, ww = h // block * block, w // block * block
    if hh == 0 or ww == 0:
        return float(np.sqrt(np.pi / 2) * conv.mean() / 6.0)
    # INTER_AREA on an exact multiple is the block mean
    blocks = cv2.resize(conv[:hh, :ww], (ww // block, hh // block), interpolation=cv2.INTER_AREA)
    return float(np.sqrt(np.pi / 2) * np.percentile(blocks, percentile) / 6.0)


class NoiseConfig(BaselineCheckConfig):
    raise_after_s: float = Field(1.0, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    min_sigma: float = Field(1.2, gt=0, description="noise sigma (luma levels) that is noisy")
    min_ratio: float = Field(2.5, ge=1, description="...and at least this x the stream's baseline")
    hold_ratio: float = Field(
        1.6,
        ge=1,
        description="once noisy, stays noisy while at least this x the baseline: the encoder smooths a fault's "
        "noise by different amounts from frame to frame (2.0-3.3x on a textured scene in train footage)",
    )
    critical_sigma: float = Field(6.0, gt=0, description="noise this strong is critical")
    # The grainiest clean camera in the training footage reads 5.6; twice that hides the picture
    # on any camera. It needs no baseline, so it also holds on a camera that keeps moving (a
    # patrol over brick), whose layout changes too much between samples for one to be learned.
    absolute_sigma: float = Field(12.0, gt=0, description="noise this strong is a fault whatever the stream's normal")


@register
class NoiseCheck(BaselineCheck):
    name = "noise"
    alters_picture = True
    Config = NoiseConfig
    config: NoiseConfig

    def __init__(self, config: NoiseConfig) -> None:
        super().__init__(config)
        self._settling = Settling(self.name)
        # Key frames carry a camera's noise whole; the encoder smooths it in the frames it
        # predicts from them (2.1 against 1.35 on a clean 640x360 stream, 11 against 4.4 under a
        # sigma-14 fault), so a stream sampled across both is judged kind against kind: against
        # one baseline, the predicted frames of that fault read 2x and the flag went on and off.
        self._key = self.new_baseline()

    def new_scene(self) -> None:
        super().new_scene()
        self._key = self.new_baseline()

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        sigma = noise_sigma(view.native_crop)
        baseline = self._key if view.frame.keyframe else self._baseline
        floor = 0.3
        if view.frame.keyframe and self._baseline.ready and self._baseline.value is not None:
            # A key frame is never cleaner than the frames predicted from it: a key baseline
            # below theirs was learned from a smoothed picture (its few warm-up samples caught
            # a defocus: 1.1 against 1.6 on train footage, and the sharp picture after it read 2.5x).
            floor = max(floor, self._baseline.value)
        ratio = baseline.ratio(sigma, floor=floor)
        # Noise is judged against the picture's own noise floor: a grainy night camera, or the
        # camera a sequencer just switched to, is its own normal, learned (afresh) first.
        absolute = sigma >= c.absolute_sigma
        least = c.hold_ratio if self._flagging else c.min_ratio
        settled = not self._settling.update(view) or self._flagging
        relative = settled and ratio is not None and sigma >= c.min_sigma and ratio >= least
        active, corr = self.judge(view, sigma, absolute or relative, baseline=baseline)
        active = active or absolute
        m = {"sigma": round(sigma, 2)}
        if ratio is not None:
            m["ratio"] = round(ratio, 2)
        if corr is not None:
            m["layout_correlation"] = round(corr, 2)
        return CheckResult(active, "critical" if sigma >= c.critical_sigma else "warning", m)
