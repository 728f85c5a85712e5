"""freeze: the picture stops changing, even if graphics on top of it or its noise do not.

The picture is compared with a reference frame: the first frame of the current still spell.
Comparing with the reference rather than the previous sample lets slow real change (drifting
clouds, a dimming light) add up until it shows, while a frozen picture never drifts.

Change is judged on 8x8-pixel cell means of the analysis copy, in luma and in both colour
differences (a red car on a grey road of the same brightness is motion too), each against a
threshold that scales with the typical cell difference of this frame pair: fresh sensor noise on a frozen
picture (which some encoders and cameras keep sending) moves every cell a little and no cell
much, while real motion moves some cells a lot. Two kinds of change do not count:
- on-screen graphics: a ticking clock, a camera name, a news ticker or a logo live in the top
  and bottom bands of the picture; change confined to those bands (up to a small part of the
  picture) does not end a freeze;
- encoder refreshes: a key frame re-codes a frozen picture, which moves cells only a little.
A change of the overall brightness (a light flicker, a fade) is life, not a freeze, and a still
picture that is digitally flat (a programme slate, a caption card) is a graphic, not a camera.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import GRAPHICS_BAND, FrameView, core_rows


class FreezeConfig(CheckConfig):
    raise_after_s: float = Field(1.5, ge=0)
    clear_after_s: float = Field(1.0, ge=0)
    cell_px: int = Field(8, ge=2, le=32, description="side of the cells (px of the analysis copy) change is judged on")
    max_changed: float = Field(
        0.001, ge=0, le=1, description="frozen while at most this fraction of the picture's cells changed"
    )
    keyframe_changed: float = Field(
        0.01, ge=0, le=1, description="a key frame's re-coding of a frozen picture may change this many cells"
    )
    graphics_band: float = Field(
        GRAPHICS_BAND,
        ge=0,
        lt=0.5,
        description="top and bottom bands (fraction of height) where on-screen graphics live",
    )
    max_band_changed: float = Field(
        0.12, ge=0, le=1, description="change in the graphics bands up to this fraction of all cells is ignored"
    )
    min_change: float = Field(2.5, gt=0, description="a cell changed when its mean moved at least this (luma levels)")
    min_colour_change: float = Field(
        6.0,
        gt=0,
        description="a cell's colour changed when a colour-difference channel moved at least this "
        "(an encoder keeps re-coding a still picture's colour more coarsely than its luma)",
    )
    noise_factor: float = Field(
        6.0, gt=0, description="...and more than this x the typical cell difference (noise-like change)"
    )
    max_change_threshold: float = Field(6.0, gt=0, description="the cell threshold never exceeds this")
    # Slates and caption cards measure ~95 %; a clean photo with a clear sky ~70 %.
    max_flat_fraction: float = Field(
        0.85,
        gt=0,
        le=1,
        description="a still picture this flat (neighbouring pixels within 1 level) is a graphic "
        "(a slate, a caption card), not a frozen camera",
    )
    max_brightness_shift: float = Field(
        0.5, ge=0, description="a mean-luma shift this large since the still spell began is a light change: alive"
    )


@register
class FreezeCheck(Check):
    name = "freeze"
    Config = FreezeConfig
    config: FreezeConfig

    def __init__(self, config: FreezeConfig) -> None:
        super().__init__(config)
        self._ref: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._frozen = False

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        ycc = cv2.cvtColor(view.small, cv2.COLOR_BGR2YCrCb).astype(np.float32)
        h, w = ycc.shape[:2]
        cells = cv2.resize(ycc, (max(1, w // c.cell_px), max(1, h // c.cell_px)), interpolation=cv2.INTER_AREA)
        ref, prev = self._ref, self._prev
        self._prev = cells
        if ref is None or prev is None or ref.shape != cells.shape:
            self._ref = cells
            return CheckResult(active=False)
        # Per channel (luma and the two colour differences), each against its own noise: a red car
        # on a grey road of the same brightness is motion all the same.
        step, moved = cv2.absdiff(cells, prev), cv2.absdiff(cells, ref)
        changed = np.zeros(cells.shape[:2], bool)
        limits = []
        for ch in range(3):
            typical = float(np.median(step[..., ch]))
            limit = min(c.max_change_threshold, max(c.min_change, c.noise_factor * typical))
            limits.append(limit if ch == 0 else max(c.min_colour_change, limit))
            changed |= moved[..., ch] > limits[-1]
        rows = changed.shape[0]
        core = core_rows(rows, c.graphics_band)
        inner = changed[core]
        n_inner = int(np.count_nonzero(inner))
        n_band = int(np.count_nonzero(changed)) - n_inner
        inner_frac = n_inner / max(1, inner.size)
        band_frac = n_band / changed.size
        shift = abs(float(cells[core, :, 0].mean()) - float(ref[core, :, 0].mean()))
        allowed = c.keyframe_changed if self._frozen and view.frame.keyframe else c.max_changed
        still = inner_frac <= allowed and band_frac <= c.max_band_changed and shift <= c.max_brightness_shift
        if not still:
            self._ref = cells  # the picture moved: a new still spell would start here
        # A camera picture has sensor texture everywhere; a still slate or card is digitally flat.
        flat = float(np.count_nonzero(view.gradient <= 1.0)) / view.gradient.size if still else 0.0
        frozen = still and flat < c.max_flat_fraction
        self._frozen = frozen
        m = {
            "changed_fraction": round(inner_frac, 5),
            "graphics_changed": round(band_frac, 4),
            "brightness_shift": round(shift, 2),
            "cell_threshold": round(limits[0], 2),
        }
        if still:
            m["flat_fraction"] = round(flat, 3)
        return CheckResult(active=frozen, severity="critical", measurements=m)
