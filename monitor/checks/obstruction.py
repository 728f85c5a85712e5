"""obstruction: something covers much of the lens.

The analysis copy is split into a grid of cells. A cell is *featureless* when the denoised
picture has almost no detail there relative to its brightness: whatever sits on a lens is far
out of focus, whatever its colour or brightness, while a darker or brighter picture of the same
scene keeps its detail in proportion. Each cell remembers whether the scene normally has detail
there (a baseline, learned slowly and not while flagged).

A cover arrives over the scene: the cells it takes go featureless while the rest of the picture
carries on as it was (continuity). A cut or a camera switch to a plainer scene (a table top, a
wall) takes detail away at once with the rest of the picture changing too; cells that went
featureless that way are not counted as covered. The rest is judged away from the cover's edge
(the cells beside it are partly covered and change with it). Only a cover of the whole picture
at once (a lens cap) leaves nothing to compare, and then no detail is left outside the graphics
rows (a camera's clock stays on top of the cover). Obstruction is:

- partial: a large part of the normally detailed cells went featureless while some of them
  keep their detail and brightness (the rest of the scene is still there), or, on a camera
  that moves, while the brightness layout no longer matches the scene's (the cover has its own);
- full: almost every normally detailed cell went featureless and the brightness layout no
  longer matches the scene's (a blurred or badly exposed picture keeps its layout).

Two things that also take detail away are not a cover:
- a cut or a camera switch (to a slate, say): nearly every cell changes between two samples and
  the new picture has some detail of its own; the baseline is learned anew;
- a black picture, which the black check reports.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.baseline import Layout
from monitor.checks.registry import register
from monitor.checks.view import FrameView

# Cells small enough that a cover's soft edge and the thin structures of a sparse scene (a mast,
# a gantry against the sky) take few of them: 6x8 missed 3 of 10 covers on train, 12x16 1.
GRID = (12, 16)  # rows, columns
GRAPHICS_ROWS = GRID[0] // 6  # top and bottom rows where a camera's clock or a ticker sits


class ObstructionConfig(CheckConfig):
    # Its own cut rule (below), not the baseline checks' layout one: only their learning times.
    # A cover stays; content that merely looks featureless for a moment (a cross-fade, a slate)
    # does not.
    raise_after_s: float = Field(4.0, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    min_detail: float = Field(
        0.04, gt=0, description="a cell has detail when its denoised mean gradient is this x its brightness"
    )
    min_covered: float = Field(0.35, gt=0, le=1, description="partial: fraction of detailed cells gone featureless")
    min_live: float = Field(0.08, ge=0, le=1, description="partial: ...while this fraction keeps its detail")
    full_cover: float = Field(0.8, gt=0, le=1, description="full: fraction of detailed cells gone featureless")
    max_layout_correlation: float = Field(
        0.5, ge=-1, le=1, description="full: ...and the brightness layout correlates less than this with the scene's"
    )
    cut_fraction: float = Field(
        0.9, gt=0, le=1, description="this fraction of cells changing at once is a cut: the baseline starts again"
    )
    cut_correlation: float = Field(
        0.3, ge=-1, le=1, description="...or a layout correlating less than this with the last sample's"
    )
    cut_detail: float = Field(
        0.1, gt=0, le=1, description="...when the new picture has detail in this fraction of cells (a cover has none)"
    )
    min_continuity: float = Field(
        0.65,
        ge=0,
        le=1,
        description="cells going featureless count as covered when this fraction of the others is unchanged",
    )
    onset_window_s: float = Field(
        2.0, gt=0, description="a cell counts as newly covered when it had detail this recently (paint builds up)"
    )
    min_luma: float = Field(12.0, ge=0, description="darker pictures are black, not covered")
    max_luma: float = Field(245.0, ge=0, le=255, description="brighter pictures are clipped white: overexposed")
    baseline_tau_s: float = Field(20.0, gt=0, description="time constant of the per-cell detail baseline")
    warmup_s: float = Field(
        1.0, ge=0, description="stream time (after a start or a cut) before the baseline is trusted"
    )


def cell_stats(view: FrameView) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: detail (mean gradient of the denoised picture over brightness) and mean luma."""
    rows, cols = GRID
    # Detail at a scale above pixel noise: the sensor noise on a cover is not detail.
    m = cv2.GaussianBlur(view.gray_median, (0, 0), 1.2)
    h, w = m.shape
    hh, ww = h // rows * rows, w // cols * cols
    grad = np.zeros(m.shape, np.float32)
    grad[:, :-1] += cv2.absdiff(m[:, 1:], m[:, :-1])
    grad[:-1, :] += cv2.absdiff(m[1:, :], m[:-1, :])

    def means(a: np.ndarray) -> np.ndarray:  # INTER_AREA on an exact multiple is the cell mean
        return cv2.resize(a[:hh, :ww], (cols, rows), interpolation=cv2.INTER_AREA)

    lum = means(view.gray_f)
    return means(grad) / np.maximum(lum, 20.0), lum


def _moved(detail: np.ndarray, lum: np.ndarray, pdet: np.ndarray, plum: np.ndarray) -> np.ndarray:
    """Per cell: changed a lot since the last sample (brightness by a quarter, detail by 2x)."""
    return (np.abs(lum - plum) > np.maximum(8.0, 0.25 * plum)) | (
        np.abs(np.log(np.maximum(detail, 1e-3) / np.maximum(pdet, 1e-3))) > np.log(2.0)
    )


def _grow(mask: np.ndarray) -> np.ndarray:
    """The cells of ``mask`` and their eight neighbours."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-6 else 0.0


@register
class ObstructionCheck(Check):
    name = "obstruction"
    Config = ObstructionConfig
    config: ObstructionConfig

    def __init__(self, config: ObstructionConfig) -> None:
        super().__init__(config)
        self._detail: np.ndarray | None = None  # baseline detail per cell
        self._lum: np.ndarray | None = None
        self._first_t = 0.0
        self._last_t: float | None = None
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._recent = Layout()  # the previous sample's layout
        self._covered = np.zeros(GRID, bool)  # cells that went featureless the way a cover does
        self._detailed_at = np.full(GRID, -np.inf)  # when each cell last had detail

    def _cut(self, view: FrameView, detail: np.ndarray, moved: np.ndarray | None) -> bool:
        """A cut or a camera switch: the picture changed at once and the new one brings detail
        of its own. A cover arriving at once takes detail away, and what detail it leaves is the
        old scene, where it was."""
        c = self.config
        layout = self._recent.correlation(view.thumbnail, view.layouts)
        self._recent.learn(view.thumbnail)
        if moved is None:
            return False
        detailed = detail >= c.min_detail
        n_detailed = int(np.count_nonzero(detailed))
        cells_changed = (
            float(moved.mean()) >= c.cut_fraction
            and n_detailed >= c.cut_detail * detail.size
            and int(np.count_nonzero(detailed & moved)) >= 0.5 * n_detailed
        )
        # ...or its layout (rank correlation of thumbnails) no longer matches the last sample's,
        # and much of the new picture has detail - detail that is not the old scene carrying on
        # beside a cover that arrived between two samples.
        layout_changed = (
            layout is not None
            and layout < c.cut_correlation
            and n_detailed >= 0.25 * detail.size
            and not self._carries_on(detail, moved)
        )
        return cells_changed or layout_changed

    def _featureless(self, detail: np.ndarray) -> np.ndarray:
        return detail < self.config.min_detail * 0.5

    def _went(self, detail: np.ndarray, pdet: np.ndarray) -> np.ndarray:
        """Cells that went featureless since the last sample (``pdet``: its detail)."""
        return self._featureless(detail) & ~self._featureless(pdet)

    def _carries_on(self, detail: np.ndarray, moved: np.ndarray) -> bool:
        """The picture away from the cells that just went featureless is as it was."""
        if self._prev is None:
            return False
        # The cells beside a cover's edge are partly covered and change with it; judge the rest.
        away = ~_grow(self._went(detail, self._prev[0]))
        return bool(away.mean() >= 0.1) and float((~moved)[away].mean()) >= self.config.min_continuity

    def _onsets(self, t: float, detail: np.ndarray, moved: np.ndarray | None) -> None:
        """Track which featureless cells a cover took: a cell that had detail moments ago and
        went featureless while most of the rest of the picture stayed as it was."""
        c = self.config
        featureless = self._featureless(detail)
        if self._prev is not None and moved is not None:
            pdet, _plum = self._prev
            went = self._went(detail, pdet)
            newly = went & (t - self._detailed_at <= c.onset_window_s)
            if newly.any():
                # A cover over (nearly) everything leaves nothing to compare: it is one only if no
                # detail is left outside the graphics rows, where a camera's clock or a ticker
                # sits on top of whatever covers the lens.
                core = detail[GRAPHICS_ROWS:-GRAPHICS_ROWS] >= c.min_detail
                if not core.any() and went.sum() >= 0.5 * max(1, int((pdet >= c.min_detail).sum())):
                    onset = True
                else:
                    onset = self._carries_on(detail, moved)
                self._covered[newly] = onset
        self._covered &= featureless
        self._detailed_at[detail >= c.min_detail] = t

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        t = view.frame.stream_time
        detail, lum = cell_stats(view)
        moved = None if self._prev is None else _moved(detail, lum, *self._prev)
        self._onsets(t, detail, moved)
        cut = self._cut(view, detail, moved)
        self._prev = (detail, lum)
        if cut:
            self._covered[:] = False
        if cut or self._detail is None or self._lum is None or self._last_t is None or t < self._last_t:
            self._detail, self._lum, self._first_t, self._last_t = detail, lum, t, t
            return CheckResult(False)
        ready = t - self._first_t >= c.warmup_s
        normally = self._detail >= c.min_detail  # cells where the scene has detail
        n = int(normally.sum())
        covered_frac = float((self._covered & normally).sum()) / max(1, n)
        # Live: the rest of the scene as it was, detailed and as bright (after a cut it is not).
        kept = np.abs(lum - self._lum) < 0.3 * np.maximum(self._lum, 20.0)
        live_frac = float(((detail >= c.min_detail) & kept & normally).sum()) / max(1, n)
        layout = _correlation(lum, self._lum)
        # Partly: the rest of the scene is still there, or (a panning camera, whose scene does
        # not stay put) the covered part took on the cover's own brightness.
        partly = covered_frac >= c.min_covered and (live_frac >= c.min_live or layout < c.max_layout_correlation)
        fully = covered_frac >= c.full_cover and layout < c.max_layout_correlation
        active = (
            ready
            and n >= 0.25 * detail.size  # a scene with detail to lose
            and (partly or fully)
            and c.min_luma <= view.mean_luma < c.max_luma
        )
        dt = t - self._last_t
        self._last_t = t
        # Learn fast while warming up and on clean frames; barely at all while flagged, so a
        # lasting cover is not learned away within an episode, yet a permanent change is in time.
        tau = max(dt, min(c.baseline_tau_s, t - self._first_t)) if not active else c.baseline_tau_s * 10
        a = min(1.0, dt / tau) if dt > 0 else 0.0
        self._detail = self._detail + a * (detail - self._detail)
        self._lum = self._lum + a * (lum - self._lum)
        m: dict[str, object] = {
            "covered_fraction": round(covered_frac, 3),
            "live_fraction": round(live_frac, 3),
            "layout_correlation": round(layout, 3),
        }
        if active:
            m["cover"] = "partial" if partly else "full"
        return CheckResult(active, "critical", m)
