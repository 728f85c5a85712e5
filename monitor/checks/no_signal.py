"""no_signal: a colour-bar card, a flat single-colour screen, or a flat synthetic card.

Four explainable patterns:
- bars: in the top 60 % of the picture most columns are constant (vertical std ~0; a "NO
  SIGNAL" caption or a logo on top of the bars breaks a minority of them) and those constant
  columns differ strongly from each other (SMPTE/EBU bars, vertical ramps; a photo on a plain
  white background has constant columns too, all alike);
- flat: the whole picture is one colour (blue/grey "no signal" screens), but not black;
- card: most of the picture is *exactly* flat at a colour between black and white,
  neighbouring native pixels equal (a caption like "NO SIGNAL" on a plain background), and what
  is not flat is drawn edges, not the small gradients of sensor noise. Real pictures never get
  there, even a clear sky (at most ~56 % exactly flat in the dev clips; synthetic cards
  75-95 %); a lens covered by a flat object still shows a strip of noisy scene, which keeps it
  an obstruction; a picture clipped to white is flat too, and overexposed;
- logo: a flat dark screen with one small graphic that moves (a player's or encoder's idle
  "NO SIGNAL" logo bouncing around). A still graphic on a dark screen is a black picture with
  the camera's clock on it, which the black check reports.
Digitally flat pictures (85 % of neighbouring pixels equal, few small gradients) brighter than
black also count as a card, unless they are cut along the codec's 8/16-pixel block grid: a
picture quantised to flat blocks is blocking.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.blocking import grid_blockiness, profiles
from monitor.checks.registry import register
from monitor.checks.view import FrameView


class NoSignalConfig(CheckConfig):
    # Sooner than black's 1 s: an idle screen with a small logo is mostly black, and the
    # specific diagnosis should win.
    raise_after_s: float = Field(0.6, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    max_column_std: float = Field(
        1.5, ge=0, description="bars: the typical column varies vertically less than this (any channel)"
    )
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
    # Quantisation far past blocking (JPEG at quality 2) leaves each 8x8 block one flat colour:
    # the picture is as exactly flat as a card, but cut along the codec's block grid. Cards on
    # train footage step across that grid by 0.32 levels at most; such a picture by 1.3-1.6.
    compression_grid_ratio: float = Field(
        1.4, gt=1, description="card/logo: steps across the 8/16-pixel codec grid this x those inside the blocks..."
    )
    compression_grid_step: float = Field(
        1.0, ge=0, description="...and this many luma levels larger is a picture compressed to blocks, not a card"
    )


def flatness(luma: np.ndarray, dark_limit: float, clip_limit: float, max_fine: float) -> tuple[float, float]:
    """(flat, flat and dark): fractions of the native luma whose right and lower neighbours
    equal it - at a level between ``dark_limit`` and ``clip_limit`` (a card's colour), or darker
    (an idle screen's background). Pixels clipped to white are flat for another reason
    (overexposure). Native pixels, because the analysis copy's scaler dithers flat areas by a
    level. Natural pictures, even a clear sky or a dark underexposed scene, have small steps (1-4
    levels: sensor noise, natural shading) everywhere, where a graphic is exactly flat with a few
    sharp edges: with more than ``max_fine`` of them, nothing is flat (and nothing more is
    counted: that is nearly every picture)."""
    y = luma[:-1, :-1]
    g = cv2.add(cv2.absdiff(luma[:-1, 1:], y), cv2.absdiff(luma[1:, :-1], y))
    n = g.size
    if cv2.countNonZero(cv2.inRange(g, 1, 4)) > max_fine * n:
        return 0.0, 0.0
    still = g == 0
    flat = float(np.count_nonzero(still & (y > dark_limit) & (y < clip_limit))) / n
    dark = float(np.count_nonzero(still & (y <= dark_limit))) / n
    return flat, dark


@register
class NoSignalCheck(Check):
    name = "no_signal"
    alters_picture = True
    Config = NoSignalConfig
    config: NoSignalConfig

    def __init__(self, config: NoSignalConfig) -> None:
        super().__init__(config)
        self._last_box: tuple[float, float] | None = None

    def _graphic(self, view: FrameView, flat: float, dark: float) -> str | None:
        """A digitally flat picture: a card (bright enough not to be black), or a small logo
        moving over a flat, dark screen (a player's or encoder's idle screen)."""
        c = self.config
        if view.mean_luma < c.graphic_min_luma:
            flat += dark
        box = None
        if flat >= c.graphic_flat_fraction:
            g = view.gradient
            busy = g > 1  # the scaler that made the analysis copy dithers flat areas by one level
            if np.any(busy):
                ys, xs = np.nonzero(busy)
                y0, y1 = np.percentile(ys, 1), np.percentile(ys, 99)
                x0, x1 = np.percentile(xs, 1), np.percentile(xs, 99)
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
        # The typical column (median), not the mean: a caption over the bars breaks a few columns.
        col_std = np.sqrt(np.maximum(col_sq - col_mean * col_mean, 0.0)).max(axis=2).ravel()
        column_std = float(np.median(col_std))
        # Contrast among the steady columns only: a photo on a white background has mostly steady
        # (white) columns too, and its contrast comes from the columns that are not steady.
        steady = col_mean.reshape(-1, 3)[col_std < c.max_column_std]
        column_contrast = float(steady.std(axis=0).mean()) if len(steady) >= 2 else 0.0
        gray_std = float(view.gray_f.std())
        mean = view.mean_luma
        pattern = None
        if column_std < c.max_column_std and column_contrast >= c.min_column_contrast:
            pattern = "bars"
        elif gray_std < c.max_flat_std and mean >= c.min_flat_luma:
            pattern = "flat"
        flat, dark = flatness(
            view.native_crop, dark_limit=c.min_flat_luma, clip_limit=c.max_card_luma, max_fine=c.card_max_fine
        )
        if pattern is None and mean >= c.card_min_luma and flat >= c.card_flat_fraction:
            pattern = "card"
        graphic = self._graphic(view, flat, dark)
        pattern = pattern or graphic
        if pattern in ("card", "logo"):
            ratio, step, _block = grid_blockiness(*profiles(view.native_crop))
            if ratio >= c.compression_grid_ratio and step >= c.compression_grid_step:
                pattern = None  # blocking's to report
        if pattern in ("flat", "card") and mean >= c.max_card_luma:
            pattern = None  # a picture clipped to white is overexposed (a sensor or gain fault), not a card
        m: dict[str, object] = {"column_std": round(column_std, 2), "luma_std": round(gray_std, 2)}
        if pattern:
            m["pattern"] = pattern
        return CheckResult(pattern is not None, "critical", m)
