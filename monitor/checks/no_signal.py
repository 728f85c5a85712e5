"""no_signal: a colour-bar card, a flat single-colour screen, or a flat synthetic card.

Four explainable patterns:
- bars: in the top 60 % of the picture every column is constant (vertical std ~0) while the
  columns differ strongly from each other (SMPTE/EBU bars, vertical ramps);
- flat: the whole picture is one colour (blue/grey "no signal" screens), but not black;
- card: most of the picture is *exactly* flat, neighbouring pixels equal (a caption like
  "NO SIGNAL" on a plain background), and what is not flat is drawn edges, not the small
  gradients of sensor noise. Real pictures never get there, even a clear sky (at most ~56 %
  exactly flat in the dev clips; synthetic cards 75-95 %); a lens covered by a flat object
  still shows a strip of noisy scene, which keeps it an obstruction;
- logo: a flat dark screen with one small graphic that moves (a player's or encoder's idle
  "NO SIGNAL" logo bouncing around). A still graphic on a dark screen is a black picture with
  the camera's clock on it, which the black check reports.
Digitally flat pictures (85 % of neighbouring pixels equal, few small gradients) brighter than
black also count as a card.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView


class NoSignalConfig(CheckConfig):
    # Sooner than black's 1 s: an idle screen with a small logo is mostly black, and the
    # specific diagnosis should win.
    raise_after_s: float = Field(0.6, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    max_column_std: float = Field(1.5, ge=0, description="bars: columns vary vertically less than this")
    min_column_contrast: float = Field(20.0, ge=0, description="bars: ...and differ from each other this much")
    max_flat_std: float = Field(2.0, ge=0, description="flat: luma std below this")
    min_flat_luma: float = Field(16.0, ge=0, description="flat: brighter than this (darker is black)")
    card_flat_fraction: float = Field(0.75, gt=0, le=1, description="card: fraction of exactly flat pixels")
    card_min_luma: float = Field(25.0, ge=0, description="card: brighter than this (a dark picture is quantised flat)")
    card_max_fine: float = Field(0.03, ge=0, le=1, description="card: at most this fraction of small (noise) gradients")
    graphic_flat_fraction: float = Field(
        0.85, gt=0, le=1, description="card/logo: this much of the picture exactly flat (neighbours equal)"
    )
    graphic_min_luma: float = Field(
        14.0, ge=0, description="card: a flat picture brighter than this (darker is black, or a logo screen)"
    )
    max_card_luma: float = Field(
        245.0, ge=0, le=255, description="flat/card: darker than this (a white-out is overexposure)"
    )
    logo_max_area: float = Field(0.15, gt=0, le=1, description="logo: what is not flat fits in a box this small")
    logo_min_move: float = Field(0.01, ge=0, description="logo: ...that moves at least this (fraction of width)")


@register
class NoSignalCheck(Check):
    name = "no_signal"
    Config = NoSignalConfig
    config: NoSignalConfig

    def __init__(self, config: NoSignalConfig) -> None:
        super().__init__(config)
        self._last_box: tuple[float, float] | None = None

    def _graphic(self, view: FrameView) -> str | None:
        """A digitally flat picture: a card (bright enough not to be black), or a small logo
        moving over a flat, dark screen (a player's or encoder's idle screen)."""
        c = self.config
        g = view.gradient
        busy = g > 0
        flat = 1.0 - float(np.count_nonzero(busy)) / g.size
        # Natural pictures, even a clear sky or a dark underexposed scene, have small gradients
        # everywhere; a graphic is exactly flat with a few sharp edges.
        if float(np.count_nonzero((g > 0) & (g <= 4))) / g.size > c.card_max_fine:
            flat = 0.0
        box = None
        if flat >= c.graphic_flat_fraction and np.any(busy):
            ys, xs = np.nonzero(busy)
            y0, y1, x0, x1 = np.percentile(ys, 1), np.percentile(ys, 99), np.percentile(xs, 1), np.percentile(xs, 99)
            if (y1 - y0 + 1) * (x1 - x0 + 1) <= c.logo_max_area * g.size:
                box = ((x0 + x1) / 2 / g.shape[1], (y0 + y1) / 2 / g.shape[0])
        last, self._last_box = self._last_box, box
        if flat < c.graphic_flat_fraction:
            return None
        if view.mean_luma >= c.graphic_min_luma:
            return "card"
        moved = (
            box is not None
            and last is not None
            and max(abs(box[0] - last[0]), abs(box[1] - last[1])) >= c.logo_min_move
        )
        return "logo" if moved else None

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
        graphic = self._graphic(view)
        pattern = pattern or graphic
        if pattern in ("flat", "card") and mean >= c.max_card_luma:
            pattern = None  # a picture clipped to white is overexposed (a sensor or gain fault), not a card
        m: dict[str, object] = {"column_std": round(column_std, 2), "luma_std": round(gray_std, 2)}
        if pattern:
            m["pattern"] = pattern
        return CheckResult(pattern is not None, "critical", m)
