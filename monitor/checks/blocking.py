"""blocking: compression blockiness, steps in luma on the 8x8 coding grid.

On native-resolution luma (a grid-aligned crop), the mean absolute difference between
neighbouring pixels across 8x8 block boundaries is compared with the difference between
neighbours inside blocks. Natural images and well-deblocked video give a ratio near 1; visible
blocks give several times that. A minimum absolute step keeps very flat content (a sky), where
both differences are tiny, from producing a large ratio out of nothing.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView


def blockiness(luma: np.ndarray, block: int = 8) -> tuple[float, float]:
    """(boundary/interior difference ratio, boundary excess in luma levels)."""
    dh = cv2.reduce(cv2.absdiff(luma[:, 1:], luma[:, :-1]), 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
    dv = cv2.reduce(cv2.absdiff(luma[1:, :], luma[:-1, :]), 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
    edge_h = (np.arange(dh.size) % block) == block - 1
    edge_v = (np.arange(dv.size) % block) == block - 1
    boundary = (dh[edge_h].mean() + dv[edge_v].mean()) / 2
    interior = (dh[~edge_h].mean() + dv[~edge_v].mean()) / 2
    return float(boundary / (interior + 1e-3)), float(boundary - interior)


class BlockingConfig(CheckConfig):
    raise_after_s: float = Field(1.5, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    min_ratio: float = Field(1.8, gt=1, description="boundary/interior difference ratio that is blocky")
    min_step: float = Field(2.0, ge=0, description="...with boundary steps at least this many luma levels larger")
    critical_ratio: float = Field(8.0, gt=1)


@register
class BlockingCheck(Check):
    name = "blocking"
    Config = BlockingConfig
    config: BlockingConfig

    def evaluate(self, view: FrameView) -> CheckResult:
        ratio, step = blockiness(view.native_crop)
        active = ratio >= self.config.min_ratio and step >= self.config.min_step
        severity = "critical" if ratio >= self.config.critical_ratio else "warning"
        return CheckResult(active, severity, {"ratio": round(ratio, 2), "step": round(step, 2)})
