"""blocking: visible blocks, from compression (8x8 / 16x16 DCT blocks) or pixelation (mosaic
blocks of any size).

On native-resolution luma (a grid-aligned crop), the mean absolute difference between
neighbouring pixels is folded by position modulo a block size P. Two signals:

- compression: codecs and JPEG cut the picture into 8x8 and 16x16 blocks from its top-left
  corner, so their edges fall at fixed places (between pixels 8k-1 and 8k). Blocking is the
  difference across those places standing out from the differences inside the blocks, in both
  directions at once (``grid_ratio``), by a step the eye can see (``grid_step``, luma levels).
  Anything else periodic - a colour ramp's 8-bit steps on a slate, a fence, a building's
  windows - sits at other places or other periods.
- pixelation: flat blocks of any size 4-32 px at any offset; for every P, the strongest phase
  against the others (``ratio``, ``step``, ``block``). Pixelation's blocks are flat inside, so
  the ratio is large; the threshold is high enough that a ramp's steps stay below it.

Natural pictures and well-deblocked video give ratios near 1.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult, Severity
from monitor.checks.registry import register
from monitor.checks.view import FrameView

BLOCK_SIZES = range(4, 33)


def _fold(profile: np.ndarray, period: int, phase: int | None = None) -> tuple[float, float]:
    """(boundary, interior): the mean difference at ``phase`` of the period (default: the
    strongest phase) and the median of the other phases."""
    rows = profile.size // period
    phases = np.add.reduce(profile[: rows * period].reshape(rows, period), axis=0) / rows
    k = int(phases.argmax()) if phase is None else phase
    # The median of the other phases by hand, from one sort of all of them: numpy's median and
    # mean cost more in overhead than in work here, and this runs ~60 times a frame.
    ordered = np.sort(phases)
    skip = period - 1 if phase is None else int(np.searchsorted(ordered, phases[k]))
    m = period - 1

    def rest(j: int) -> float:
        return float(ordered[j if j < skip else j + 1])

    return float(phases[k]), (rest((m - 1) // 2) + rest(m // 2)) / 2.0


def profiles(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean absolute step between neighbouring columns (dh[j]: columns j, j+1) and rows (dv)."""
    dh = cv2.reduce(cv2.absdiff(luma[:, 1:], luma[:, :-1]), 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
    dv = cv2.reduce(cv2.absdiff(luma[1:, :], luma[:-1, :]), 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
    return dh, dv


def blockiness(dh: np.ndarray, dv: np.ndarray, sizes: range = BLOCK_SIZES) -> tuple[float, float, int]:
    """(boundary/interior difference ratio, boundary excess in luma levels, block size) of the
    strongest phase of any block size (pixelation, at any offset)."""
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


CODEC_BLOCKS = (8, 16)


def grid_blockiness(dh: np.ndarray, dv: np.ndarray, sizes: tuple[int, ...] = CODEC_BLOCKS) -> tuple[float, float, int]:
    """(ratio, step, block) at the codec block grid: the difference across the grid lines (the
    last phase of each P-pixel period, the crop being aligned to the grid) against the median
    difference inside the blocks; the weaker of the two directions, the stronger block size."""
    best = (0.0, 0.0, sizes[0])
    for p in sizes:
        if dh.size < 2 * p or dv.size < 2 * p:
            break
        # d[j] is the step between pixels j and j+1: grid lines are at j = p-1, 2p-1, ...
        bh, ih = _fold(dh, p, phase=p - 1)
        bv, iv = _fold(dv, p, phase=p - 1)
        ratio = min(bh / (ih + 1e-3), bv / (iv + 1e-3))
        if ratio > best[0]:
            best = (ratio, min(bh - ih, bv - iv), p)
    return best


class BlockingConfig(CheckConfig):
    raise_after_s: float = Field(1.5, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    grid_ratio: float = Field(
        1.4, gt=1, description="compression: steps across the 8/16-pixel codec grid this x those inside the blocks"
    )
    grid_min_step: float = Field(1.0, ge=0, description="...and at least this many luma levels larger")
    pixelation_ratio: float = Field(
        4.0, gt=1, description="pixelation: the strongest block size's edges this x its insides (flat blocks)"
    )
    pixelation_min_step: float = Field(0.6, ge=0, description="...and at least this many luma levels larger")
    critical_ratio: float = Field(8.0, gt=1)


@register
class BlockingCheck(Check):
    name = "blocking"
    alters_picture = True
    Config = BlockingConfig
    config: BlockingConfig

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        dh, dv = profiles(view.native_crop)
        g_ratio, g_step, g_block = grid_blockiness(dh, dv)
        ratio, step, block = blockiness(dh, dv)
        compressed = g_ratio >= c.grid_ratio and g_step >= c.grid_min_step
        pixelated = ratio >= c.pixelation_ratio and step >= c.pixelation_min_step
        severity: Severity = "critical" if max(ratio, g_ratio) >= c.critical_ratio else "warning"
        m: dict[str, object] = {
            "grid_ratio": round(g_ratio, 2),
            "grid_step": round(g_step, 2),
            "ratio": round(ratio, 2),
            "step": round(step, 2),
            "block": g_block if compressed else block,
        }
        if compressed or pixelated:
            m["kind"] = "compression" if compressed else "pixelation"
        return CheckResult(compressed or pixelated, severity, m)
