"""obstruction: something covers much of the lens while the rest of the picture stays live.

The analysis copy is split into a grid of cells; each cell has a baseline of its texture (mean
gradient) and brightness. A cell is covered when it loses most of its texture and becomes
uniform; it is live when it keeps its texture and brightness. Obstruction needs a large covered
part *and* some live cells: when every cell goes soft or dark at once it is blur, black or
exposure instead, which have their own checks. The exception is a lens covered almost
completely: then no cell is live, but unlike under- or overexposure and blur, which keep the
picture's layout (the cells' brightness pattern still correlates with the baseline), a cover
replaces it. A cover is physical, in front of the sensor, so it still carries sensor noise: a
picture that is mostly exactly flat is a digital graphic (a slate, a card), not a cover.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import BaselineCheckConfig, Check, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView

GRID = (6, 8)  # rows, columns
FINE = 4  # each cell's pattern is compared as FINE x FINE block means


def cell_patterns(view: FrameView) -> np.ndarray:
    """Per cell, its FINE x FINE block means, zero-mean and unit-norm: the cell's content, free of
    brightness and contrast (rows, cols, FINE*FINE); all zero where the cell is flat."""
    rows, cols = GRID
    g = view.gray_f
    h, w = g.shape
    small = cv2.resize(
        g[: h // rows * rows, : w // cols * cols], (cols * FINE, rows * FINE), interpolation=cv2.INTER_AREA
    )
    p = small.reshape(rows, FINE, cols, FINE).transpose(0, 2, 1, 3).reshape(rows, cols, FINE * FINE)
    p = p - p.mean(axis=2, keepdims=True)
    norm = np.sqrt((p * p).sum(axis=2, keepdims=True))
    return np.where(norm > 2.0, p / np.maximum(norm, 1e-6), 0.0).astype(np.float32)


class ObstructionConfig(BaselineCheckConfig):
    raise_after_s: float = Field(1.5, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    # Cells on the cover's soft edge are neither covered nor live, so a 50 % cover covers ~45 %.
    min_covered: float = Field(0.35, gt=0, le=1, description="fraction of cells covered")
    min_live: float = Field(0.06, ge=0, le=1, description="fraction of cells that must stay live")
    full_cover: float = Field(0.75, gt=0, le=1, description="covered this much with no live cells...")
    max_layout_correlation: float = Field(
        0.5, ge=-1, le=1, description="...counts when the brightness layout no longer correlates with the baseline"
    )
    texture_loss: float = Field(
        0.3, gt=0, lt=1, description="covered: texture relative to brightness below this x baseline"
    )
    # A cover is close and out of focus, so it is far more uniform than scene content, though a
    # blotchy one (spray paint, a hand) keeps some slow shading.
    uniform_ratio: float = Field(0.5, gt=0, lt=1, description="covered: luma std below this x baseline")
    uniform_floor: float = Field(3.0, ge=0, description="...or below this many percent of the cell's brightness")
    live_pattern_correlation: float = Field(
        0.7, ge=-1, le=1, description="live: the cell's content pattern correlates this well with its baseline"
    )
    cut_fraction: float = Field(
        0.9, gt=0, le=1, description="this fraction of cells changing at once is a cut: the baseline starts again"
    )
    max_digital_flat: float = Field(
        0.6, gt=0, le=1, description="a picture with this much exactly flat (a graphic) is no cover"
    )
    featureless_gradient: float = Field(
        2.0, gt=0, description="a cell is featureless when its denoised mean gradient is below this (luma levels)"
    )
    full_featureless: float = Field(
        0.95, gt=0, le=1, description="a full cover leaves this much of the picture featureless (a slate has text)"
    )
    baseline_tau_s: float = Field(20.0, gt=0)


def cell_stats(view: FrameView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: mean gradient of the denoised picture (texture: sensor noise on a cover is not
    texture), mean luma, luma std (arrays of GRID shape)."""
    g = view.gray_f
    m = view.gray_median
    grad = np.zeros(m.shape, np.float32)
    grad[:, :-1] += cv2.absdiff(m[:, 1:], m[:, :-1])
    grad[:-1, :] += cv2.absdiff(m[1:, :], m[:-1, :])
    rows, cols = GRID
    h, w = g.shape
    hh, ww = h // rows * rows, w // cols * cols

    def means(a: np.ndarray) -> np.ndarray:  # INTER_AREA on an exact multiple is the cell mean
        return cv2.resize(a[:hh, :ww], (cols, rows), interpolation=cv2.INTER_AREA)

    lum = means(g)
    var = np.maximum(means(g * g) - lum * lum, 0.0)
    return means(grad), lum, np.sqrt(var)


def _contrast(tex: np.ndarray, lum: np.ndarray) -> np.ndarray:
    """Texture relative to brightness: unchanged when the exposure changes, lost under a cover."""
    return np.maximum(tex, 0.3) / np.maximum(lum, 10.0)


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
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._pat: np.ndarray | None = None

    def _cut(self, tex: np.ndarray, lum: np.ndarray) -> bool:
        """Nearly every cell changed since the previous sample: a cut or a camera switch. A
        cover moves in over a few samples, or leaves part of the picture as it was."""
        prev, self._prev = self._prev, (tex, lum)
        if prev is None:
            return False
        ptex, plum = prev
        moved = (
            (np.abs(lum - plum) > np.maximum(8.0, 0.25 * plum))
            | (np.maximum(tex, 0.5) / np.maximum(ptex, 0.5) > 2.0)
            | (np.maximum(ptex, 0.5) / np.maximum(tex, 0.5) > 2.0)
        )
        # New content brings texture of its own; a cover (or a defocus) takes it away.
        keeps_texture = float(np.median(_contrast(tex, lum) / _contrast(ptex, plum))) >= 0.7
        return float(moved.mean()) >= self.config.cut_fraction and keeps_texture

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        t = view.frame.stream_time
        tex, lum, std = cell_stats(view)
        pat = cell_patterns(view)
        cut = self._cut(tex, lum)
        if cut or self._tex is None or self._last_t is None or t < self._last_t or self._first_t is None:
            # A new scene (or the first frame): learn it from scratch, with a warm-up.
            self._tex, self._lum, self._std, self._first_t, self._last_t = tex, lum, std, t, t
            self._pat = pat
            return CheckResult(False)
        assert self._lum is not None and self._std is not None and self._pat is not None
        ready = t - self._first_t >= c.warmup_s
        textured = self._tex >= max(1.0, float(np.median(self._tex)) * 0.3)
        tex_ratio = _contrast(tex, lum) / _contrast(self._tex, self._lum)
        # Uniform relative to brightness too, so a scene that only went darker keeps its cells.
        uniform = std / np.maximum(lum, 10.0) < np.maximum(
            c.uniform_floor / 100.0, c.uniform_ratio * self._std / np.maximum(self._lum, 10.0)
        )
        covered = (tex_ratio < c.texture_loss) & uniform & textured
        # Live: the same content at the same place (a pan or a cut moves it), as textured and bright.
        same_content = (pat * self._pat).sum(axis=2) >= c.live_pattern_correlation
        live = (
            same_content & (tex_ratio >= 0.6) & (np.abs(lum - self._lum) < 0.3 * np.maximum(self._lum, 20.0)) & textured
        )
        n = max(1, int(textured.sum()))
        covered_frac, live_frac = float(covered.sum()) / n, float(live.sum()) / n
        layout = _correlation(lum, self._lum)
        featureless = float(np.count_nonzero(tex < c.featureless_gradient)) / tex.size
        partly = covered_frac >= c.min_covered and live_frac >= c.min_live
        fully = covered_frac >= c.full_cover and layout < c.max_layout_correlation and featureless >= c.full_featureless
        # Whatever covers a lens is in front of the sensor, so it carries the sensor's noise; a
        # digital graphic (a programme slate, a caption card) is exactly flat.
        digital = float(np.count_nonzero(view.gradient == 0)) / view.gradient.size
        active = ready and (partly or fully) and digital < c.max_digital_flat
        dt = t - self._last_t
        self._last_t = t
        # Learn fast while warming up and on clean frames; barely at all while flagged, so a
        # lasting cover is not learned away within an episode, yet a permanent change is in time.
        tau = max(dt, min(c.baseline_tau_s, t - self._first_t)) if not active else c.baseline_tau_s * 10
        a = min(1.0, dt / tau) if dt > 0 else 0.0
        self._tex = self._tex + a * (tex - self._tex)
        self._lum = self._lum + a * (lum - self._lum)
        self._std = self._std + a * (std - self._std)
        self._pat = self._pat + a * (pat - self._pat)
        m = {
            "covered_fraction": round(covered_frac, 3),
            "live_fraction": round(live_frac, 3),
            "layout_correlation": round(layout, 3),
            "featureless_fraction": round(featureless, 3),
            "digital_flat": round(digital, 3),
        }
        if active:
            m["cover"] = "partial" if partly else "full"
        return CheckResult(active, "critical", m)
