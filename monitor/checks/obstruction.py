"""obstruction: something covers much of the lens.

The analysis copy is split into a grid of cells. A cell is *featureless* when the denoised
picture has almost no detail there relative to its brightness: whatever sits on a lens is far
out of focus, whatever its colour or brightness, while a darker or brighter picture of the same
scene keeps its detail in proportion. Each cell remembers whether the scene normally has detail
there (a baseline, learned slowly and not while flagged).

A cover arrives over the scene: the cells it takes go featureless while the rest of the picture
carries on as it was (continuity). On a camera that moves (a pan, a patrol, shake), "as it was"
means as the scene was where the camera's motion (phase correlation of coarse copies) brought it
from, and a cell only went featureless if what moved into it had detail: a plain wall or sky
coming into view is no loss of detail. Nor is a plain area growing across a zoom: the cell
takes the colour a plain neighbour had, where a cover brings its own. A cut or a camera
switch to a plainer scene (a table top, a wall) takes detail away at once with the rest of the
picture changing too; cells that went featureless that way are not counted as covered. The
rest is judged away from the cover's edge (the cells beside it are partly covered and change
with it, and the next ones too where they changed toward its shade) and away from plain cells
that took another shade at the same time (a cover over a white wall brings its own shade
without taking any detail). Those plain cells, joined to the covered ones, count as the
cover's too, so a hand over a bare desk (few cells with detail to lose) is still a cover big
enough to see. On a scene with hardly any detail (a plain close-up, a bare wall) a cover takes
little or none at all: there it is a quarter of the picture or more taking a new shade within
the onset window while the rest carries on, and staying plain at that shade. Only a cover of
the whole picture at once (a lens cap) leaves nothing to compare, and then no detail is left
outside the graphics rows (a camera's clock stays on top of the cover). Obstruction is:

- partial: a large part of the normally detailed cells went featureless while some of them
  keep their detail and brightness (the rest of the scene is still there), or, on a camera
  that moves, while the brightness layout no longer matches the scene's (the cover has its own);
- full: almost every normally detailed cell went featureless and the brightness layout no
  longer matches the scene's (a blurred or badly exposed picture keeps its layout).

A cover brings its own brightness: where it sits, the scene's pattern of light and dark is
gone and the cells are lighter or darker than they were. Once seen, a cover stays seen while it
holds most of what it took (hysteresis), and a covered cell is released when it shows clear
detail again or the scene's own brightness comes back there (the end of a fade through black).

Three things that also take detail away are not a cover:
- a cut or a camera switch (to a slate, say): nearly every cell changes between two samples and
  the new picture has some detail of its own; the baseline is learned anew;
- a defocus, which keeps each part of the scene about as bright as it was;
- a black picture, which the black check reports.
"""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult, out_of_black
from monitor.checks.baseline import Layout, has_layout, pearson
from monitor.checks.focus import sharpness
from monitor.checks.registry import register
from monitor.checks.view import FrameView

# Cells small enough that a cover's soft edge and the thin structures of a sparse scene (a mast,
# a gantry against the sky) take few of them: 6x8 missed 3 of 10 covers on train, 12x16 1.
GRID = (12, 16)  # rows, columns
GRAPHICS_ROWS = GRID[0] // 6  # top and bottom rows where a camera's clock or a ticker sits


class ObstructionConfig(CheckConfig):
    # Its own cut rule (below), not the baseline checks' layout one: only their learning times.
    # A cover stays; content that merely looks featureless for a moment (a cross-fade, a slate)
    # does not. It was 4 s while soft scenes after a cut were flagged up to 3 s; since a cover
    # must be one even shade (max_cover_spread), no clean flag on train footage (2.7 clean
    # hours, the train soak hour among them) lasts 1 s. Paint builds up over 1-2 s before it
    # is flagged, and covers of 5 s were missed at 4.
    raise_after_s: float = Field(2.0, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    min_detail: float = Field(
        0.04, gt=0, description="a cell has detail when its denoised mean gradient is this x its brightness"
    )
    min_covered: float = Field(0.35, gt=0, le=1, description="partial: fraction of detailed cells gone featureless")
    hold_covered: float = Field(
        0.28,
        gt=0,
        le=1,
        description="partial: once flagged, stays flagged down to this covered fraction (a marked cover, see "
        "min_covered_marked, down to the same share of its own)",
    )
    min_covered_marked: float = Field(
        0.25,
        gt=0,
        le=1,
        description="partial: ...or this fraction, when the covered cells took a shade of their own "
        "(their brightness moved by a median of marked_shift or more, their pattern gone)",
    )
    marked_shift: float = Field(0.3, ge=0, description="see min_covered_marked")
    min_live: float = Field(0.08, ge=0, le=1, description="partial: ...while this fraction keeps its detail")
    full_cover: float = Field(0.8, gt=0, le=1, description="full: fraction of detailed cells gone featureless")
    max_layout_correlation: float = Field(
        0.5, ge=-1, le=1, description="full: ...and the brightness layout correlates less than this with the scene's"
    )
    max_covered_layout: float = Field(
        0.8,
        ge=-1,
        le=1,
        description="...and the covered cells' brightness correlates less than this with the scene's there "
        "(on train footage covers read 0.72 at most, a defocus 0.85-0.9)",
    )
    min_covered_shift: float = Field(
        0.1,
        ge=0,
        description="...and their brightness moved by a median of at least this x the scene's there "
        "(on train footage covers moved it by 0.17 or more, a defocus on an even texture by 0.03)",
    )
    max_cover_spread: float = Field(
        20.0,
        ge=0,
        description="luma levels: what a cover took spans no more than this between its cells' quartiles "
        "(an object on the lens is out of focus, one even shade; on train footage covers spread 4-18, "
        "soft scenes that lost their detail at a cut, an apple close-up or dim infrared fruit, 24-62)",
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
    min_tone_concordance: float = Field(
        0.75,
        ge=-1,
        le=1,
        description="a whole picture losing its detail while its cells keep their order at least this well "
        "(see Layout.concordance) is re-toned (washed out, darkened), not covered",
    )
    min_luma: float = Field(
        0.0,
        ge=0,
        description="darker pictures are not judged; 0: a dark cover is judged like any other, and black "
        "explains it when the picture is black by black's rule (it was 12, which left dark covers beside a "
        "visible scene unreported)",
    )
    max_luma: float = Field(245.0, ge=0, le=255, description="brighter pictures are clipped white: overexposed")
    baseline_tau_s: float = Field(20.0, gt=0, description="time constant of the per-cell detail baseline")
    warmup_s: float = Field(
        1.0, ge=0, description="stream time (after a start or a cut) before the baseline is trusted"
    )


# A cell a quarter clipped to white lost its detail to exposure (a washout, a gain ramp): a
# cover is out of focus, not saturated.
CLIPPED_WHITE = 250
MAX_CLIPPED = 0.25

# A plain scene's cover (see ObstructionCheck._veil): a quarter of the picture, the least a cover
# takes to be seen at all (see lost_from in evaluate); once seen, held while this much is left.
PLAIN_COVER, PLAIN_COVER_HOLD = 0.25, 0.2

MIN_PATTERN_CELLS = 8  # covered cells enough to tell whether the scene's light and dark pattern is kept
# A picture this soon after a flat, dark one and brighter than it by base's fade-in rule
# (out_of_black) came up out of black (an edit's fade through black): new content.
FADE_IN_S = 2.0

# The picture the camera's own motion (a pan, a patrol, shake) is estimated on: coarse enough to
# be cheap (~0.2 ms), fine enough for a fraction of a cell.
MOTION_SIZE = (96, 54)
MIN_MOTION_RESPONSE = 0.2  # weaker phase-correlation peaks are no estimate: assume no motion
MIN_MOTION_PX = 2


class Cells:
    """One sample's grid: per cell the detail (mean gradient of the denoised picture over
    brightness), mean luma and mean colour. Sub-cell means are kept so the same sample can be
    read again on a grid moved with the camera."""

    def __init__(self, view: FrameView) -> None:
        rows, cols = GRID
        # Detail at a scale above pixel noise: the sensor noise on a cover is not detail.
        m = cv2.GaussianBlur(view.gray_median, (0, 0), 1.2)
        self.height, self.width = m.shape  # of the analysis copy
        self._ch, self._cw = self.height // rows, self.width // cols
        grad = np.zeros(m.shape, np.float32)
        grad[:, :-1] += cv2.absdiff(m[:, 1:], m[:, :-1])
        grad[:-1, :] += cv2.absdiff(m[1:, :], m[:-1, :])
        self._gray: np.ndarray | None = view.gray_f
        self._small = view.small
        self._hh, self._ww = self._ch * rows, self._cw * cols
        # Means over sub-cells: a cell is the mean of its sub-cells, and a grid moved with the
        # camera is read from them at once (interpolated, see read). Whole pixels
        # per sub-cell keep the resize on OpenCV's fast path.
        self._sub = (_divisions(self._ch), _divisions(self._cw))
        fine = (cols * self._sub[1], rows * self._sub[0])
        self._fine_lum = cv2.resize(view.gray_f[: self._hh, : self._ww], fine, interpolation=cv2.INTER_AREA)
        self._fine_grad = cv2.resize(grad[: self._hh, : self._ww], fine, interpolation=cv2.INTER_AREA)
        self.lum = _cell_means(self._fine_lum)
        self.detail = _cell_means(self._fine_grad) / np.maximum(self.lum, 20.0)

    @cached_property
    def colour(self) -> np.ndarray:
        """Mean colour per cell from 8x8 interpolated samples: enough for the plain cells it is
        asked about, at a fraction of a full area mean's cost."""
        rows, cols = GRID
        samples = cv2.resize(self._small[: self._hh, : self._ww], (cols * 8, rows * 8), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(samples, (cols, rows), interpolation=cv2.INTER_AREA).astype(np.float32)

    @cached_property
    def clipped(self) -> np.ndarray:
        """Per cell, the fraction of its pixels clipped to white."""
        rows, cols = GRID
        white = (self._full_gray()[: self._hh, : self._ww] >= CLIPPED_WHITE).astype(np.float32)
        return cv2.resize(white, (cols, rows), interpolation=cv2.INTER_AREA)

    @cached_property
    def motion(self) -> np.ndarray:
        return cv2.resize(self._full_gray(), MOTION_SIZE, interpolation=cv2.INTER_AREA)

    def settle(self) -> None:
        """Keep only what the next sample compares with (the motion copy, the cell means): the
        full-size grey copy (0.5 MB at 480x270) is let go, on every stream, between samples."""
        _ = self.motion
        self._gray = None

    def _full_gray(self) -> np.ndarray:
        if self._gray is None:
            raise RuntimeError("Cells.settle() let the grey copy go: only the current sample reads it")
        return self._gray

    def read(self, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detail and luma per cell on the grid moved by (dx, dy) pixels, and whether each moved
        cell still lies inside the picture (outside, the edge repeats). The sub-cell means are
        interpolated to the pixel: rounded to whole sub-cells (10-11 px at 480x270), a slow
        patrol's 4-5 px a sample mostly rounded to none, the motion explained the scene no better
        than no motion, and cells the camera moved off their texture were taken for covered."""
        rows, cols = GRID
        sub_y, sub_x = self._sub
        fx, fy = dx * sub_x / self._cw, dy * sub_y / self._ch  # in sub-cells
        fine_h, fine_w = self._fine_lum.shape
        shift = np.array([[1.0, 0.0, fx], [0.0, 1.0, fy]], np.float32)

        def moved(a: np.ndarray) -> np.ndarray:
            out = cv2.warpAffine(
                a,
                shift,
                (fine_w, fine_h),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
            return _cell_means(out)

        y0 = np.arange(rows)[:, None] * sub_y + fy
        x0 = np.arange(cols)[None, :] * sub_x + fx
        inside = (y0 >= 0) & (y0 + sub_y <= fine_h) & (x0 >= 0) & (x0 + sub_x <= fine_w)
        lum = moved(self._fine_lum)
        return moved(self._fine_grad) / np.maximum(lum, 20.0), lum, np.broadcast_to(inside, GRID)


def _divisions(cell_px: int) -> int:
    """Sub-cells per cell side: the most, up to 4, that split it into whole pixels."""
    return next(k for k in (4, 3, 2, 1) if cell_px % k == 0)


def _cell_means(fine: np.ndarray) -> np.ndarray:
    rows, cols = GRID
    return cv2.resize(np.ascontiguousarray(fine), (cols, rows), interpolation=cv2.INTER_AREA)


_MOTION_WINDOW = cv2.createHanningWindow(MOTION_SIZE, cv2.CV_32F)


def camera_motion(prev: Cells, cur: Cells) -> tuple[int, int]:
    """How far (pixels of the analysis copy) the scene moved from ``prev`` to ``cur``."""
    if prev.motion.shape != cur.motion.shape:
        return 0, 0
    (dx, dy), response = cv2.phaseCorrelate(prev.motion, cur.motion, _MOTION_WINDOW)
    dx, dy = round(dx * cur.width / MOTION_SIZE[0]), round(dy * cur.height / MOTION_SIZE[1])
    # A pixel or so is jitter of the estimate (a cover growing on a still camera pulls it).
    if response < MIN_MOTION_RESPONSE or max(abs(dx), abs(dy)) < MIN_MOTION_PX:
        return 0, 0
    return dx, dy


class Change:
    """How each cell changed since the last sample: compared with what was there before and,
    on a moving camera, with the part of the scene that moved into it. The camera's motion is
    estimated only when a cell changed where it is."""

    def __init__(self, prev: Cells, cur: Cells, featureless: float, min_continuity: float) -> None:
        self._prev, self._cur, self._featureless = prev, cur, featureless
        self._min_continuity = min_continuity
        self.moved_here = _moved(cur.detail, cur.lum, prev.detail, prev.lum)
        self._went_here = (cur.detail < featureless) & (prev.detail >= featureless)

    @cached_property
    def _moved_in(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """For what the camera's motion brought into each cell: its detail, whether the cell
        changed a lot against it, and whether it came from inside the picture (see Cells.read).
        None without motion, or when the motion does not explain the scene's detailed cells
        better than no motion does (then what moved is in front of a still camera: a cover
        sliding in)."""
        dx, dy = camera_motion(self._prev, self._cur)
        if dx == dy == 0:
            return None
        cur = self._cur
        pdet, plum, inside = self._prev.read(-dx, -dy)
        moved = _moved(cur.detail, cur.lum, pdet, plum)
        scene = inside & (cur.detail >= 2 * self._featureless)
        still = int(np.count_nonzero(self.moved_here & scene))
        return (pdet, moved, inside) if int(np.count_nonzero(moved & scene)) < still else None

    @cached_property
    def moved(self) -> np.ndarray:
        """Changed a lot, both where it is and against what moved into it."""
        if not self.moved_here.any() or self._moved_in is None:
            return self.moved_here
        _pdet, moved, inside = self._moved_in
        return self.moved_here & (~inside | moved)

    @cached_property
    def went(self) -> np.ndarray:
        """Went featureless: what was here had detail, and so did the part of the scene that
        moved here (a plain wall or sky coming into view on a pan is no loss of detail)."""
        if not self._went_here.any() or self._moved_in is None:
            return self._went_here
        pdet, _moved_too, inside = self._moved_in
        return self._went_here & (~inside | (pdet >= self._featureless))

    @cached_property
    def edge(self) -> np.ndarray:
        """The cells that went featureless, their neighbours (partly under whatever took them),
        and those next to these that changed toward the shade they took: a cover is far out of
        focus and its edge blurs over more than a cell (a slide over a squirrel close-up darkened
        the second column beside it by a quarter). Cells there that changed otherwise, or not at
        all, are the rest of the picture (a cut changes them every way)."""
        near = _grow(self.went)
        if not self.went.any():
            return near
        shade = float(np.median(self._cur.lum[self.went]))
        toward = np.abs(self._cur.lum - shade) < np.abs(self._prev.lum - shade)
        return near | (_grow(near) & self.moved & toward)

    @cached_property
    def carries_on(self) -> bool:
        """The picture away from the cells that just went featureless is as it was."""
        # The cells beside a cover's edge are partly covered and change with it; judge the rest.
        # Plain cells that took another shade are the cover's own, not the scene moving on.
        # A cover that takes most of the picture between two samples (paint sprayed in a second)
        # leaves little away from its edge: a twentieth of the picture (ten cells) is enough.
        away = ~(self.edge | self.restyled)
        return bool(away.mean() >= 0.05) and float((~self.moved)[away].mean()) >= self._min_continuity

    @cached_property
    def restyled(self) -> np.ndarray:
        """Plain before and plain now, at another brightness: a cover over a plain part of the
        scene (a white wall) brings its own shade without taking any detail."""
        plain = (self._cur.detail < self._featureless) & (self._prev.detail < self._featureless)
        return plain & self.moved


def _moved(detail: np.ndarray, lum: np.ndarray, pdet: np.ndarray, plum: np.ndarray) -> np.ndarray:
    """Per cell: changed a lot since the last sample (brightness by a quarter, detail by 2x)."""
    return (np.abs(lum - plum) > np.maximum(8.0, 0.25 * plum)) | (
        np.abs(np.log(np.maximum(detail, 1e-3) / np.maximum(pdet, 1e-3))) > np.log(2.0)
    )


# A plain close-up in focus (a cut to an apple filling the frame) has hardly a cell with detail
# and so looks like a cover by detail alone, but what edges it has are sharp, where a cover on
# the lens is far out of focus, edges and all. Judged between the graphics rows: a camera's
# clock stays sharp on top of a cover.
CLOSE_UP_MAX_DETAILED = 0.03  # of the cells between the graphics rows
CLOSE_UP_MIN_SHARPNESS = 10.0  # blur's sharpness (x100 Laplacian / gradient energy) of its edges


def _plain_close_up(view: FrameView, detailed: np.ndarray) -> bool:
    if float(detailed[GRAPHICS_ROWS:-GRAPHICS_ROWS].mean()) >= CLOSE_UP_MAX_DETAILED:
        return False
    band = view.gray_median.shape[0] * GRAPHICS_ROWS // GRID[0]
    sharp = sharpness(view.gray_median[band:-band], min_share=0.0)
    return sharp is not None and sharp >= CLOSE_UP_MIN_SHARPNESS


# A gain or an exposure ramp (auto-exposure, an iris opening over seconds) brightens or darkens
# every part of the picture from one sample to the next, the parts not yet clipped to white or
# crushed to black included; a cover changes only the part it takes.
RAMP_STEP = 1.05  # the least brightness ratio per sample that counts as the picture ramping
RAMP_SHARE = 0.9  # ...in this share of the cells still able to move (not clipped nor crushed)


def _ramping(plum: np.ndarray, lum: np.ndarray) -> bool:
    free = (np.minimum(plum, lum) >= 8.0) & (np.maximum(plum, lum) <= 235.0)
    if int(np.count_nonzero(free)) < MIN_PATTERN_CELLS:
        return False
    ratio = lum[free] / plum[free]
    return max(float((ratio >= RAMP_STEP).mean()), float((ratio <= 1.0 / RAMP_STEP).mean())) >= RAMP_SHARE


def _spread(lum: np.ndarray) -> float | None:
    """Interquartile range of the cells' brightness; None for too few cells to say."""
    if lum.size < MIN_PATTERN_CELLS:
        return None
    q75, q25 = np.percentile(lum, [75, 25])
    return float(q75 - q25)


def _grow(mask: np.ndarray) -> np.ndarray:
    """The cells of ``mask`` and their eight neighbours."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


_NEIGHBOURS = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])


def _matches_neighbour(cells: np.ndarray, colour: np.ndarray, plain: np.ndarray, pcolour: np.ndarray) -> np.ndarray:
    """Per cell of ``cells``: its colour now matches what a ``plain`` neighbour showed before."""
    out = np.zeros(cells.shape, bool)
    ys, xs = np.nonzero(cells)
    if ys.size == 0:
        return out
    # Padded by one cell, so each cell's eight neighbours are at +1 +- 1.
    nb_y = ys[None, :] + _NEIGHBOURS[:, :1] + 1
    nb_x = xs[None, :] + _NEIGHBOURS[:, 1:] + 1
    nb_plain = np.pad(plain, 1)[nb_y, nb_x]
    nb_colour = np.pad(pcolour, ((1, 1), (1, 1), (0, 0)))[nb_y, nb_x]
    own = colour[ys, xs]
    tol = 6.0 + 0.06 * own.max(axis=1)
    close = np.abs(nb_colour - own[None]).max(axis=2) <= tol[None]
    out[ys, xs] = (nb_plain & close).any(axis=0)
    return out


def _attached(cells: np.ndarray, to: np.ndarray) -> np.ndarray:
    """The cells of ``cells`` that connect (through each other, eight ways) to a cell of ``to``."""
    n, labels = cv2.connectedComponents((cells | to).astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(cells.shape, bool)
    keep = np.unique(labels[to])
    return cells & np.isin(labels, keep[keep > 0])


@register
class ObstructionCheck(Check):
    name = "obstruction"
    alters_picture = True
    Config = ObstructionConfig
    config: ObstructionConfig

    def __init__(self, config: ObstructionConfig) -> None:
        super().__init__(config)
        self._detail: np.ndarray | None = None  # baseline detail per cell
        self._lum: np.ndarray | None = None
        self._first_t = 0.0
        self._last_t: float | None = None
        self._prev: Cells | None = None
        self._recent = Layout()  # the previous sample's layout
        self._covered = np.zeros(GRID, bool)  # cells that went featureless the way a cover does
        self._shaded = np.zeros(GRID, bool)  # plain cells a cover took (its own shade over them)
        self._off_scene = np.zeros(GRID, bool)  # covered cells seen off the scene's brightness since covered
        self._detailed_at = np.full(GRID, -np.inf)  # when each cell last had detail
        self._veil_cells = np.zeros(GRID, bool)  # shaded cells that took their shade as a plain scene's cover
        self._shade_taken_at = np.full(GRID, -np.inf)  # when each plain cell last took a new shade at once
        self._retoned_at = -np.inf  # when the picture was last re-toned as a whole (see _note_retone)
        self._flagging = False
        self._darkest_flat: tuple[float, float] | None = None  # (mean luma, stream time) of the last dip

    def _drop_taken(self) -> None:
        """Forget the cells taken as a cover's (covered, shaded, veiled): they were not one."""
        self._covered[:] = False
        self._shaded[:] = False
        self._veil_cells[:] = False

    def _came_up(self, view: FrameView) -> bool:
        """The picture came up out of black: an edit faded through black to a new scene. What
        went featureless on the way down went with the old scene (a new scene that is dark and
        soft brings back neither the old detail nor the old brightness)."""
        t, luma = view.frame.stream_time, view.mean_luma
        if not has_layout(view.thumbnail):
            if self._darkest_flat is None or luma <= self._darkest_flat[0] or t - self._darkest_flat[1] > FADE_IN_S:
                self._darkest_flat = (luma, t)
            return False
        dip = self._darkest_flat
        if dip is None or t - dip[1] > FADE_IN_S or not out_of_black(luma, dip[0]):
            return False
        self._darkest_flat = None
        return True

    def _cut(self, view: FrameView, cells: Cells, change: Change | None) -> bool:
        """A cut or a camera switch: the picture changed at once and the new one brings detail
        of its own. A cover arriving at once takes detail away, and what detail it leaves is the
        old scene, where it was."""
        c = self.config
        layout = self._recent.correlation(view.thumbnail, view.layouts)
        self._recent.learn(view.thumbnail, view.tones, view.gray_registration)
        if change is None:
            return False
        detailed = cells.detail >= c.min_detail
        n_detailed = int(np.count_nonzero(detailed))
        cells_changed = (
            # Nearly every cell changed where it is, and also against what the camera brought
            # into it (a pan changes cells where they are, not the scene).
            float(change.moved_here.mean()) >= c.cut_fraction
            and float(change.moved.mean()) >= c.cut_fraction
            and (
                (
                    n_detailed >= c.cut_detail * detailed.size
                    # ...with detail of its own. Where the picture away from the cells that just
                    # lost their detail is as it was, a cover took most of it at once and the cells
                    # along its edge are partly under it: their change is no new detail.
                    and int(np.count_nonzero(detailed & change.moved & ~(change.edge & change.carries_on)))
                    >= 0.5 * n_detailed
                )
                # A plain close-up has hardly a cell with detail, but its edges are sharp where a
                # cover's are not (train footage: a cut from an aloe plant to an apple, 1 % of
                # cells detailed, read as a cover of 90 % of the scene and raised for 7 s).
                or _plain_close_up(view, detailed)
            )
        )
        # ...or its layout (rank correlation of thumbnails) no longer matches the last sample's,
        # and much of the new picture has detail - detail that is not the old scene carrying on
        # beside a cover that arrived between two samples.
        layout_changed = (
            layout is not None
            and layout < c.cut_correlation
            and not change.carries_on
            # Last: the close-up's sharpness is read only when it decides.
            and (n_detailed >= 0.25 * detailed.size or _plain_close_up(view, detailed))
        )
        return cells_changed or layout_changed

    def _featureless(self, detail: np.ndarray) -> np.ndarray:
        return detail < self._featureless_below

    @property
    def _featureless_below(self) -> float:
        return self.config.min_detail * 0.5

    def _scene_brightness(self, lum: np.ndarray) -> np.ndarray:
        """Per cell: as bright as the scene normally is there (within a tenth)."""
        if self._lum is None:
            return np.zeros(GRID, bool)
        return np.abs(lum - self._lum) < 0.1 * np.maximum(self._lum, 20.0)

    def _note_retone(self, view: FrameView, prev: Cells, cells: Cells, change: Change) -> None:
        """Note when the whole picture changed brightness at once, or is on its way in a ramp
        (see _ramping), and kept its order (see Layout.concordance): washed out, gained or
        darkened. The detail that a re-tone takes relative to the brightness (a washout lifts
        the darks and flattens the rest) goes over the next samples too, as the encoder catches
        up, and none of it is a cover."""
        c = self.config
        before, now = float(prev.lum.mean()), float(cells.lum.mean())
        step = abs(now - before) >= max(8.0, 0.25 * before) and float(change.moved_here.mean()) >= c.cut_fraction
        if not step and not _ramping(prev.lum, cells.lum):
            return
        order = self._recent.concordance(view.tones, view.layouts, enough=c.min_tone_concordance)
        if order is not None and order >= c.min_tone_concordance:
            self._retoned_at = view.frame.stream_time

    def _veil(self, t: float, prev: Cells, cells: Cells, change: Change) -> None:
        """A cover over a plain scene (an apple on a table, a bare wall) takes no detail, for
        there is none: it shows as a large part of the picture taking a new shade within the
        onset window (a cover slides in over a few samples) while the rest carries on as it was,
        and staying plain at that shade. A cell's shade is new when the cell changed a lot (see
        Change.restyled) and its brightness by min_covered_shift or more - a plain cell's detail
        is small enough to double from one sample to the next, and a hand over an apple close-up
        changes its brightness by a sixth only."""
        c = self.config
        if change.carries_on:
            shift = np.abs(cells.lum - prev.lum) >= c.min_covered_shift * np.maximum(prev.lum, 20.0)
            self._shade_taken_at[change.restyled & shift] = t
        veil = (
            (t - self._shade_taken_at <= c.onset_window_s)
            # A shade taken as the whole picture was re-toned is the re-tone's: a sparse scene
            # (a rocket on a plain sky) darkened over 2.6 s had a third of its cells take a new
            # shade one ramp step after another (study clip on train footage), and the cover
            # flagged kept its underexposure from being raised (see AlertsConfig.root_causes).
            & (self._shade_taken_at > self._retoned_at)
            & self._featureless(cells.detail)
            & ~self._scene_brightness(cells.lum)
        )
        if float(veil.mean()) >= PLAIN_COVER:
            veil &= cells.clipped < MAX_CLIPPED
            self._shaded |= veil
            self._veil_cells |= veil

    def _veiled(self, least: float) -> bool:
        """Shaded cells make a cover of at least ``least`` of the picture: alone (no detail
        taken), or those that took their shade the way a plain scene's cover does (see _veil)
        whatever detail a few cells beside them lost (a hand over a dark apple close-up took 76
        cells to its shade and the detail of 1-3 of the apple's 18 detailed ones)."""
        if float((self._veil_cells & self._shaded).mean()) >= least:
            return True
        return not self._covered.any() and float(self._shaded.mean()) >= least

    def _onsets(self, view: FrameView, cells: Cells, change: Change | None) -> None:
        """Track which featureless cells a cover took: a cell that had detail moments ago and
        went featureless while most of the rest of the picture stayed as it was."""
        c = self.config
        t = view.frame.stream_time
        detail = cells.detail
        newly = np.zeros(GRID, bool)
        if self._prev is not None and change is not None:
            if not self._flagging and not change.carries_on and float(change.went.mean()) >= PLAIN_COVER:
                # A quarter of the picture lost its detail at once and the rest changed too: the
                # picture changed as a whole, to one too plain for a cut (see _cut) or to a cover
                # over nearly all of it. What was taken before, by no cover yet, was taken from a
                # scene now gone (train footage: a defocus left 30 cells featureless, a cut to a
                # soft close-up kept them, and a zoom into it added to them until they read as a
                # cover).
                self._drop_taken()
            pdet = self._prev.detail
            self._note_retone(view, self._prev, cells, change)
            # A cell last seen with detail before the picture was re-toned lost it to the re-tone.
            newly = change.went & (t - self._detailed_at <= c.onset_window_s) & (self._detailed_at > self._retoned_at)
            if newly.any():
                # A cover over (nearly) everything leaves nothing to compare: it is one only if no
                # detail is left outside the graphics rows, where a camera's clock or a ticker
                # sits on top of whatever covers the lens.
                core = detail[GRAPHICS_ROWS:-GRAPHICS_ROWS] >= c.min_detail
                if not core.any() and change.went.sum() >= 0.5 * max(1, int((pdet >= c.min_detail).sum())):
                    # ...and the scene's layout is gone with it: a picture washed out or darkened
                    # as a whole loses detail relative to its brightness too, but its cells keep
                    # their order (re-toned, see Layout.concordance). A cap or a palm has its own.
                    order = self._recent.concordance(view.tones, view.layouts, enough=c.min_tone_concordance)
                    # ...and what edges are left are soft: a cut to a plain close-up (an apple on
                    # a table) that leaves a camera's clock unchanged keeps 14 % of the cells as
                    # they were, too few for a cut, and its edges are as sharp as any.
                    onset = (order is None or order < c.min_tone_concordance) and not _plain_close_up(
                        view, detail >= c.min_detail
                    )
                else:
                    onset = change.carries_on
                # A plain area growing (a zoom onto sky or a wall): the cell now shows what a
                # plain, uncovered neighbour showed. A cover brings its own colour.
                plain = self._featureless(pdet) & ~self._covered
                if self._detail is not None:  # plain in the scene, not where detail just went
                    plain &= self._featureless(self._detail)
                grows = _matches_neighbour(newly, cells.colour, plain, self._prev.colour)
                # Detail lost to clipping is overexposure's (see MAX_CLIPPED).
                washed = cells.clipped >= MAX_CLIPPED
                self._covered[newly] = onset & ~grows[newly] & ~washed[newly]
                if onset:
                    self._shaded |= _attached(change.restyled & ~washed, self._covered)
            elif self._shaded.any():
                self._shaded &= ~change.restyled  # it took another shade again: the cover moved on
            self._veil(t, self._prev, cells, change)
        # Hysteresis: a covered cell stays covered until it shows clear detail again (a cover's
        # soft edge over a moving scene lets some detail through now and then), or the scene's
        # own brightness comes back there (what a fade through black took comes back as it
        # was). Comes back: a cover as dark as the dark scene it hides never left its brightness,
        # and stays a cover.
        scene = self._scene_brightness(cells.lum)
        back = scene & self._off_scene & ~newly
        self._covered &= (detail < c.min_detail) & ~back
        self._shaded &= self._featureless(detail) & (self._covered.any() or self._veiled(PLAIN_COVER_HOLD)) & ~back
        self._off_scene = (self._covered | self._shaded) & (self._off_scene | ~scene)
        self._veil_cells &= self._shaded
        self._detailed_at[detail >= c.min_detail] = t

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        t = view.frame.stream_time
        cells = Cells(view)
        detail, lum = cells.detail, cells.lum
        change = None if self._prev is None else Change(self._prev, cells, self._featureless_below, c.min_continuity)
        self._onsets(view, cells, change)
        came_up = self._came_up(view)
        cut = self._cut(view, cells, change) or came_up
        cells.settle()
        self._prev = cells
        if cut:
            self._drop_taken()
            self._off_scene[:] = False
            self._shade_taken_at[:] = -np.inf
        if cut or self._detail is None or self._lum is None or self._last_t is None or t < self._last_t:
            self._detail, self._lum, self._first_t, self._last_t = detail, lum, t, t
            self._flagging = False
            return CheckResult(False)
        ready = t - self._first_t >= c.warmup_s
        normally = self._detail >= c.min_detail  # cells where the scene has detail
        n = int(normally.sum())
        covered = self._covered & normally
        covered_frac = float(covered.sum()) / max(1, n)
        # Live: the rest of the scene as it was, detailed and as bright (after a cut it is not),
        # wherever it shows: on a camera that moves over sparse texture (a brick wall) the
        # baseline holds few cells as detailed, yet the part beside a cover carries on.
        kept = np.abs(lum - self._lum) < 0.3 * np.maximum(self._lum, 20.0)
        live_frac = min(1.0, float(((detail >= c.min_detail) & kept & ~self._covered).sum()) / max(1, n))
        # A scene with detail to lose: detailed in the baseline, or detailed until a cover took it,
        # or a cover big enough to see on a sparse scene (a hand over a bare desk) - the plain
        # cells it took count as its own.
        lost_from = int(np.count_nonzero(normally | self._covered | self._shaded))
        layout = pearson(lum, self._lum)
        # A cover brings its own brightness: the scene's pattern of light and dark is gone where
        # it sits, and those parts are lighter or darker than they were. A defocus loses the
        # detail too but keeps each part of the scene about as bright as it was.
        pattern, shift = None, 0.0
        if covered.sum() >= MIN_PATTERN_CELLS:
            was = self._lum[covered]
            pattern = pearson(lum[covered], was)
            shift = float(np.median(np.abs(lum[covered] - was) / np.maximum(was, 20.0)))
        scene_kept = pattern is not None and (pattern >= c.max_covered_layout or shift < c.min_covered_shift)
        # A cover is one even shade; a soft scene (a close-up, a dim picture) keeps its light and
        # dark parts, whose cells may all have lost their detail at a cut.
        spread = _spread(lum[self._covered | self._shaded])
        uneven = spread is not None and spread > c.max_cover_spread
        # The layout judged where the cover sits, when there are cells enough: the uncovered
        # rest matches the scene by definition and says nothing about the cover.
        gone = (pattern if pattern is not None else layout) < c.max_layout_correlation
        # Partly: the rest of the scene is still there, or (a panning camera, whose scene does
        # not stay put) the covered part took on the cover's own brightness.
        # Hysteresis: a cover seen stays seen while it holds most of what it took (paint that
        # hovers around min_covered is one episode, not several).
        # A cover that plainly brings its own shade (paint darkening what it hides by a third)
        # needs less of the picture to be told from a scene that changed. (Its pattern must be
        # gone too: with the pattern kept, scene_kept holds it back whatever the fraction.)
        marked = pattern is not None and shift >= c.marked_shift
        least = c.min_covered_marked if marked else c.min_covered
        if self._flagging:
            # ...in proportion: a marked cover is held down to as large a share of what raised it.
            least *= c.hold_covered / c.min_covered
        # With nothing of the scene live, a partial cover still shows its own edge: a picture gone
        # flat all over (washed out to white) is no partial cover, and only a full one can be.
        partly = covered_frac >= least and (live_frac >= c.min_live or (gone and has_layout(view.thumbnail)))
        fully = covered_frac >= c.full_cover and gone
        veiled = self._veiled(PLAIN_COVER_HOLD if self._flagging else PLAIN_COVER)
        if uneven and (partly or fully or veiled):
            # A picture large enough to be a cover that is not one even shade is a soft scene
            # (a cut to a defocused close-up took the detail of 106 cells at once): what it took
            # is no cover, nor becomes one as some of its cells show detail again and the rest
            # happen to span less (train footage: 21 luma levels, then 19.9 and raised).
            self._drop_taken()
        active = (
            ready
            and not scene_kept
            and not uneven
            and lost_from >= 0.25 * detail.size
            and (partly or fully or veiled)
            # By default no darkness rule of its own: a dark cover leaves a dark picture, and when
            # that is black by black's rule (monitor/checks/black.py), black explains the cover.
            and c.min_luma <= view.mean_luma < c.max_luma
        )
        self._flagging = active
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
        if pattern is not None:
            m["covered_layout"] = round(pattern, 3)
            m["covered_shift"] = round(shift, 3)
        if spread is not None:
            m["cover_spread"] = round(spread, 1)
        if active:
            m["cover"] = "full" if fully and not partly else "partial"
        return CheckResult(active, "critical", m)
