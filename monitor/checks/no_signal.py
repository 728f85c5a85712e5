"""no_signal: a colour-bar card, a flat single-colour screen, or a flat synthetic card.

Three explainable patterns:
- bars: in the top 60 % of the picture every column is constant (vertical std ~0) while the
  columns differ strongly from each other (SMPTE/EBU bars, vertical ramps);
- flat: the whole picture is one colour (blue/grey "no signal" screens), but not black;
- card: most of the picture is *exactly* flat, neighbouring pixels equal (a caption like
  "NO SIGNAL" on a plain background), and what is not flat is drawn edges, not the small
  gradients of sensor noise. Real pictures never get there, even a clear sky (at most ~56 %
  exactly flat in the dev clips; synthetic cards 75-95 %); a lens covered by a flat object
  still shows a strip of noisy scene, which keeps it an obstruction.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView


class NoSignalConfig(CheckConfig):
    raise_after_s: float = Field(1.0, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    max_column_std: float = Field(1.5, ge=0, description="bars: columns vary vertically less than this")
    min_column_contrast: float = Field(20.0, ge=0, description="bars: ...and differ from each other this much")
    max_flat_std: float = Field(2.0, ge=0, description="flat: luma std below this")
    min_flat_luma: float = Field(16.0, ge=0, description="flat: brighter than this (darker is black)")
    card_flat_fraction: float = Field(0.75, gt=0, le=1, description="card: fraction of exactly flat pixels")
    card_min_luma: float = Field(25.0, ge=0, description="card: brighter than this (a dark picture is quantised flat)")
    card_max_fine: float = Field(0.03, ge=0, le=1, description="card: at most this fraction of small (noise) gradients")


@register
class NoSignalCheck(Check):
    name = "no_signal"
    Config = NoSignalConfig
    config: NoSignalConfig

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        small = view.small
        top = small[: max(1, int(small.shape[0] * 0.6))].astype(np.float32)
        col_mean = cv2.reduce(top, 0, cv2.REDUCE_AVG)  # 1 x W x 3
        col_sq = cv2.reduce(top * top, 0, cv2.REDUCE_AVG)
        column_std = float(np.sqrt(np.maximum(col_sq - col_mean * col_mean, 0.0)).mean())
        column_contrast = float(col_mean.reshape(-1, 3).std(axis=0).mean())
        gray_std = float(view.gray_f.std())
        mean = view.mean_luma
        pattern = None
        if column_std < c.max_column_std and column_contrast >= c.min_column_contrast:
            pattern = "bars"
        elif gray_std < c.max_flat_std and mean >= c.min_flat_luma:
            pattern = "flat"
        elif mean >= c.card_min_luma:
            g = view.gradient
            exact = float(np.count_nonzero(g == 0)) / g.size
            fine = float(np.count_nonzero((g > 0) & (g <= 4))) / g.size
            if exact >= c.card_flat_fraction and fine <= c.card_max_fine:
                pattern = "card"
        m: dict[str, object] = {"column_std": round(column_std, 2), "luma_std": round(gray_std, 2)}
        if pattern:
            m["pattern"] = pattern
        return CheckResult(pattern is not None, "critical", m)
