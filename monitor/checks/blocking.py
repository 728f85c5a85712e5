"""blocking: visible blocks, from compression (8x8 / 16x16 DCT blocks) or pixelation (mosaic
blocks of any size).

On native-resolution luma (a grid-aligned crop), the mean absolute difference between
neighbouring pixels is folded by position modulo a block size P, for every P from 4 to 32: if
the picture is made of P-pixel blocks, one phase (the block boundary) stands out and the rest
(the blocks' insides) are smoother. The block size is the P whose boundary stands out most in
both directions at once (blocks are a 2-D grid; a building's vertical lines are not). Natural
pictures and well-deblocked video give a ratio near 1; visible blocks give several times that.
A minimum absolute step keeps very flat content (a sky), where all differences are tiny, from
producing a large ratio out of nothing.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView

BLOCK_SIZES = range(4, 33)


def _fold(profile: np.ndarray, period: int) -> tuple[float, float]:
    """(boundary, interior): the strongest phase's mean difference and the median of the others."""
    n = profile.size // period * period
    phases = profile[:n].reshape(-1, period).mean(axis=0)
    k = int(np.argmax(phases))
    return float(phases[k]), float(np.median(np.delete(phases, k)))


def blockiness(luma: np.ndarray, sizes: range = BLOCK_SIZES) -> tuple[float, float, int]:
    """(boundary/interior difference ratio, boundary excess in luma levels, block size)."""
    dh = cv2.reduce(cv2.absdiff(luma[:, 1:], luma[:, :-1]), 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
    dv = cv2.reduce(cv2.absdiff(luma[1:, :], luma[:-1, :]), 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
    best = (0.0, 0.0, sizes[0])
    for p in sizes:
        if dh.size < 2 * p or dv.size < 2 * p:
            break
        bh, ih = _fold(dh, p)
        bv, iv = _fold(dv, p)
        ratio = min(bh / (ih + 1e-3), bv / (iv + 1e-3))
        # A block grid of size P also repeats at 2P, 3P: keep the smallest size unless a larger
        # one stands out clearly more.
        if ratio > best[0] * 1.15:
            best = (ratio, min(bh - ih, bv - iv), p)
    return best


class BlockingConfig(CheckConfig):
    raise_after_s: float = Field(1.5, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    min_ratio: float = Field(1.5, gt=1, description="boundary/interior difference ratio that is blocky")
    # Encoders leave steps of 1-2.5 levels on smooth graphics (a slate's colour ramp): not a fault.
    min_step: float = Field(2.8, ge=0, description="...with boundary steps at least this many luma levels larger")
    pixelation_ratio: float = Field(
        4.0, gt=1, description="flat blocks (pixelation) this clearly bounded are blocky with smaller steps"
    )
    pixelation_min_step: float = Field(0.6, ge=0, description="...down to this step")
    critical_ratio: float = Field(8.0, gt=1)


@register
class BlockingCheck(Check):
    name = "blocking"
    Config = BlockingConfig
    config: BlockingConfig

    def evaluate(self, view: FrameView) -> CheckResult:
        ratio, step, block = blockiness(view.native_crop)
        c = self.config
        active = (ratio >= c.min_ratio and step >= c.min_step) or (
            ratio >= c.pixelation_ratio and step >= c.pixelation_min_step
        )
        severity = "critical" if ratio >= self.config.critical_ratio else "warning"
        return CheckResult(active, severity, {"ratio": round(ratio, 2), "step": round(step, 2), "block": block})
