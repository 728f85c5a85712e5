"""obstruction: something covers much of the lens while the rest of the picture stays live.

The analysis copy is split into a grid of cells; each cell has a baseline of its texture (mean
gradient) and brightness. A cell is covered when it loses most of its texture and becomes
uniform; it is live when it keeps its texture and brightness. Obstruction needs a large covered
part *and* some live cells: when every cell goes soft or dark at once it is blur, black or
exposure instead, which have their own checks. The exception is a lens covered almost
completely: then no cell is live, but unlike under- or overexposure and blur, which keep the
picture's layout (the cells' brightness pattern still correlates with the baseline), a cover
replaces it.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import BaselineCheckConfig, Check, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView

GRID = (6, 8)  # rows, columns


class ObstructionConfig(BaselineCheckConfig):
    raise_after_s: float = Field(1.5, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    # Cells on the cover's soft edge are neither covered nor live, so a 50 % cover covers ~45 %.
    min_covered: float = Field(0.4, gt=0, le=1, description="fraction of cells covered")
    min_live: float = Field(0.04, ge=0, le=1, description="fraction of cells that must stay live")
    full_cover: float = Field(0.8, gt=0, le=1, description="covered this much with no live cells...")
    max_layout_correlation: float = Field(
        0.5, ge=-1, le=1, description="...counts when the brightness layout no longer correlates with the baseline"
    )
    texture_loss: float = Field(0.35, gt=0, lt=1, description="covered: texture below this x baseline")
    # A cover is close and out of focus, so it is far more uniform than any scene content:
    # in the dev clips covered cells keep 3-7 % of their luma spread, a cut to soft content 13-18 %.
    uniform_ratio: float = Field(0.12, gt=0, lt=1, description="covered: luma std below this x baseline")
    uniform_floor: float = Field(2.5, ge=0, description="...or below this many luma levels")
    baseline_tau_s: float = Field(20.0, gt=0)


def cell_stats(view: FrameView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: mean gradient, mean luma, luma std (arrays of GRID shape)."""
    g, grad = view.gray_f, view.gradient
    rows, cols = GRID
    h, w = g.shape
    hh, ww = h // rows * rows, w // cols * cols

    def means(a: np.ndarray) -> np.ndarray:  # INTER_AREA on an exact multiple is the cell mean
        return cv2.resize(a[:hh, :ww], (cols, rows), interpolation=cv2.INTER_AREA)

    lum = means(g)
    var = np.maximum(means(g * g) - lum * lum, 0.0)
    return means(grad), lum, np.sqrt(var)


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
        self._tex: np.ndarray | None = None
        self._lum: np.ndarray | None = None
        self._std: np.ndarray | None = None
        self._first_t: float | None = None
        self._last_t: float | None = None

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        t = view.frame.stream_time
        tex, lum, std = cell_stats(view)
        if self._tex is None or self._last_t is None or t < self._last_t or self._first_t is None:
            self._tex, self._lum, self._std, self._first_t, self._last_t = tex, lum, std, t, t
            return CheckResult(False)
        assert self._lum is not None and self._std is not None
        ready = t - self._first_t >= c.warmup_s
        textured = self._tex >= max(1.0, float(np.median(self._tex)) * 0.3)
        tex_ratio = tex / np.maximum(self._tex, 0.5)
        uniform = std < np.maximum(c.uniform_floor, c.uniform_ratio * self._std)
        covered = (tex_ratio < c.texture_loss) & uniform & textured
        live = (tex_ratio >= 0.6) & (np.abs(lum - self._lum) < 0.3 * np.maximum(self._lum, 20.0)) & textured
        n = max(1, int(textured.sum()))
        covered_frac, live_frac = float(covered.sum()) / n, float(live.sum()) / n
        layout = _correlation(lum, self._lum)
        partly = covered_frac >= c.min_covered and live_frac >= c.min_live
        fully = covered_frac >= c.full_cover and layout < c.max_layout_correlation
        active = ready and (partly or fully)
        dt = t - self._last_t
        self._last_t = t
        # Learn fast while warming up and on clean frames; barely at all while flagged, so a
        # lasting cover is not learned away within an episode, yet a permanent change is in time.
        tau = max(dt, min(c.baseline_tau_s, t - self._first_t)) if not active else c.baseline_tau_s * 10
        a = min(1.0, dt / tau) if dt > 0 else 0.0
        self._tex = self._tex + a * (tex - self._tex)
        self._lum = self._lum + a * (lum - self._lum)
        self._std = self._std + a * (std - self._std)
        m = {
            "covered_fraction": round(covered_frac, 3),
            "live_fraction": round(live_frac, 3),
            "layout_correlation": round(layout, 3),
        }
        return CheckResult(active, "critical", m)
