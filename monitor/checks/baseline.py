"""What is normal for a stream: slow running statistics that checks compare a frame against."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property, lru_cache, partial

import cv2
import numpy as np

_STEADY_FLOOR = 16.0  # below this, changes are judged against this (a dark picture's small steps)


class Baseline:
    """What is normal for one measurement of a stream: the median of the warm-up's samples (one
    odd frame at a cut or a flash does not set it), then an exponential moving average on
    stream time.

    ``tau_s`` is the time constant: after a step change the baseline has moved 63 % of the way
    in ``tau_s`` seconds of stream time. Checks update it only with frames they do not flag,
    so a fault does not teach the baseline that the fault is normal.
    """

    def __init__(self, tau_s: float, warmup_s: float, steady: float | None = None) -> None:
        self.tau_s = tau_s
        self.warmup_s = warmup_s
        # With ``steady``, the warm-up only counts a steady picture: a sample this far (relative)
        # from the warm-up's median starts it again. A fade or a camera's auto-exposure settling
        # right after a cut would otherwise become the new scene's normal.
        self.steady = steady
        self.value: float | None = None
        self._first_t: float | None = None
        self._last_t: float | None = None
        self._warmup: list[float] = []

    @property
    def ready(self) -> bool:
        return (
            self.value is not None
            and self._first_t is not None
            and self._last_t is not None
            and self._last_t - self._first_t >= self.warmup_s
        )

    def update(self, x: float, t: float) -> None:
        if self.value is None or self._first_t is None or self._last_t is None or t < self._last_t:
            self.value, self._first_t, self._last_t, self._warmup = x, t, t, [x]
            return
        dt = t - self._last_t
        self._last_t = t
        if self._warmup:
            if self.steady is not None and abs(x - self.value) > self.steady * max(abs(self.value), _STEADY_FLOOR):
                self.value, self._first_t, self._warmup = x, t, [x]
                return
            self._warmup.append(x)
            self.value = float(np.median(self._warmup))
            if t - self._first_t >= self.warmup_s:
                self._warmup = []  # warmed up: the moving average takes over
            return
        alpha = min(1.0, dt / self.tau_s) if dt > 0 else 0.0
        self.value += alpha * (x - self.value)

    def ratio(self, x: float, floor: float = 1e-6) -> float | None:
        if not self.ready or self.value is None:
            return None
        return x / max(self.value, floor)


LAYOUT_SIZE = (16, 9)  # thumbnail (w, h) whose pattern is the picture's layout

# Two samples whose small luma (FrameView.gray_registration) registers by phase correlation with
# at least this response, at a shift of at most this share of the picture's width and height, are
# the same scene moved a little, not a cut. On train_soak (1 h of clean train footage), cuts
# between other footage read at most 0.29; the camera panning, patrolling or shaking over one
# scene 0.5-1.0 (the brick wall a pan crosses, whose even texture reorders its 16x9 cells at
# every sample, 0.93-1.0); a whip pan 0.2-0.9 but shifted 13-45 %: it stays a cut, its blur no
# picture to learn.
MOVED_RESPONSE, MOVED_SHIFT = 0.5, 0.07
# ...and whose pictures, lined up by that shift, correlate at least this well: a dark or sparse
# picture can register by chance (a cut from a bright apple to a dark notebook in train footage
# read a response of 0.51 at a shift of 5 %). Lined up, cuts in train_soak and that one read 0.32
# at most; the same scene moved 0.40-0.98 (a noisy brick wall panned over, 0.47-0.55).
MOVED_CORRELATION = 0.4


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally sized arrays; 0 when either is flat."""
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-6 else 0.0


def has_layout(thumb: np.ndarray) -> bool:
    """False for a picture with no layout to speak of (flat: black, a plain card)."""
    return float(thumb.std()) >= 3.0


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks of the values of x to a tenth (ties share their average rank), as float64, flattened."""
    v = np.round(x.ravel(), 1)
    order = np.argsort(v, kind="stable")
    ordered = v[order]
    first = np.empty(v.size, bool)  # the first of each run of equal values
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, v.size))
    ranks = np.empty(v.size, np.float64)
    ranks[order] = np.repeat(starts + (counts - 1) / 2.0, counts)
    return ranks


# Cells crushed to black or clipped to white in either picture have lost their order (they tie):
# an exposure fault clips much of a picture, and ranking the ties would read as new content.
_CRUSHED, _CLIPPED = 8.0, 247.0


def _rank_correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    keep = (x > _CRUSHED) & (x < _CLIPPED) & (y > _CRUSHED) & (y < _CLIPPED)
    if int(keep.sum()) >= keep.size // 3:
        x, y = x[keep], y[keep]
    a, b = _ranks(x), _ranks(y)
    a -= a.mean()
    b -= b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-6 else None


# Pairs of cells closer than this (luma levels, or this share of the picture's 5-95 % range) are
# ties: pixel noise and compression, not order. A cell's percentile over its ~900 pixels moves by
# well under a level with the noise; at 4 levels a street darkened to a tenth (its cells packed
# into a few dozen levels) had too few pairs left to judge, and its underexposure read as a cut
# (train footage; at 2 the same train and study sets raised nothing new).
_TIE_LEVELS, _TIE_SHARE = 2.0, 0.03
# Of all pairs, the share that must differ clearly in both pictures for their order to tell. At
# 0.2 a washout's few clear pairs were judged (train: one more washout found), but so were a
# near-flat picture's: its faint left-to-right shading matched the last scene's by chance and a
# cut read as a re-tone (2 false alarms in train's clean clips).
_MIN_PAIRS = 0.5


def _tie_margins(x: np.ndarray) -> np.ndarray:
    """Per column of ``x`` (cells, channels): how far apart two cells must be to differ clearly."""
    lo, hi = _percentiles(np.sort(x, axis=0), (5.0, 95.0))
    return np.maximum(_TIE_LEVELS, _TIE_SHARE * (hi - lo))


def _percentiles(ordered: np.ndarray, percentiles: tuple[float, ...]) -> list[np.ndarray]:
    """np.percentile's linear method, to the last bit, over the first axis of an array sorted
    along it: np.percentile costs about 0.1 ms a call, most of the concordance's time."""
    out = []
    for p in percentiles:
        lower, upper, frac = _around(ordered.shape[0], p)
        out.append(_between(ordered[lower], ordered[upper], frac))
    return out


def _around(n: int, percentile: float) -> tuple[int, int, float]:
    """numpy's linear method: the order statistics (0-based) the percentile of n values lies
    between, and how far it lies from the lower one."""
    position = (n - 1) * (percentile / 100)
    lower = int(position)
    return lower, min(lower + 1, n - 1), position - lower


def _between(a: np.ndarray, b: np.ndarray, frac: float) -> np.ndarray:
    """numpy's linear interpolation between two order statistics, to the last bit (it starts
    from the nearer one)."""
    return b - (b - a) * (1 - frac) if frac >= 0.5 else a + (b - a) * frac


def _concordance(x: np.ndarray, y: np.ndarray) -> float | None:
    """Kendall's concordance of two pictures' cells over the pairs that differ clearly in both
    (+1: every such pair keeps its order, 0: order at random), pooled over the colour channels
    when the cells have them (rows, columns, channels) that have enough such pairs of their own
    (see _MIN_PAIRS). None when none has (a flat card, black, a picture clipped nearly all over):
    no order left to judge by."""
    channels = x.shape[2] if x.ndim == 3 else 1
    xs = x.reshape(-1, channels).astype(np.float64)
    ys = y.reshape(-1, channels).astype(np.float64)
    # Each pair that differs clearly in a picture is +1 or -1 by its order there, else 0: their
    # product is +1 for a pair that keeps its order, -1 for one that swaps, 0 for a tie in either.
    kept = (_clear_order(xs, _tie_margins(xs)) * _clear_order(ys, _tie_margins(ys))).reshape(channels, -1)
    clear_pairs = np.count_nonzero(kept, axis=1)
    pairs = xs.shape[0] * (xs.shape[0] - 1)  # a cell paired with itself is no pair
    # A channel crushed or clipped nearly all over keeps clear pairs only among what it did not
    # lose (graphics keyed on top, a few highlights): too few to judge the scene's order by, and
    # pooled with the others they outvote them (a fruit bowl under a gamma of 6: red kept its
    # order at 0.94-0.997 with blue and green crushed, 0.71 pooled with their few pairs).
    judged = clear_pairs >= max(1, _MIN_PAIRS * pairs)
    if not judged.any():
        return None
    return int(kept[judged].sum(dtype=np.int64)) / int(clear_pairs[judged].sum())


def _clear_order(cells: np.ndarray, margins: np.ndarray) -> np.ndarray:
    """(channels, cells, cells) int8: +1 where cell i is clearly above cell j, -1 clearly below,
    0 within the channel's tie margin."""
    by_channel = np.ascontiguousarray(cells.T)
    diff = by_channel[:, :, None] - by_channel[:, None, :]
    margin = margins[:, None, None]
    return (diff > margin).view(np.int8) - (diff < -margin).view(np.int8)


# A picture re-toned by at least this factor (the median cell's, either way) may have graphics on
# top that kept theirs (see _retoned_under_graphics).
_RETONE_STEP = 1.5
# ...and the cells that went its way keep their order at least this well. Cells picked for going
# the picture's way agree better by that choice alone: a cut between two street scenes, the new
# one dark, read 0.51 over all cells and 0.755 over those (test footage); clean train cuts with a
# step this big read up to 0.63. Scenes darkened under graphics read 0.95-1.0.
_RETONE_ORDER = 0.9


def _retoned_under_graphics(tones: Tones, ref_tones: Tones, enough: float) -> float | None:
    """The concordance of the cells that went the picture's way when it was re-toned as a whole,
    the best over percentiles and shifts of up to one cell; None when the picture was not re-toned
    that much (see _RETONE_STEP) or that order is not kept near perfectly (see _RETONE_ORDER).
    A broadcaster's caption, ticker and logo are keyed on top of the camera's picture: they keep
    their brightness while the scene behind them darkens or brightens, which swaps them in order
    with every scene cell and reads as new content (train: a painting darkened to a fifth under
    a caption and a ticker read 0.71 over all cells, 0.95 over the 118 of 144 that went darker
    by at least half the picture's step; of 364 suspected cuts in the clean train soak hour, the
    100 with a step this big read at most 0.63 over such cells)."""
    medians, ref_medians = tones.cells[-1], ref_tones.cells[-1]

    def log_step(cur: np.ndarray, ref: np.ndarray) -> np.ndarray:
        if cur.ndim == 3:
            cur, ref = cur.mean(axis=2), ref.mean(axis=2)
        return np.log((cur + 4.0) / (ref + 4.0))

    step = float(np.median(log_step(medians, ref_medians)))
    if abs(step) < np.log(_RETONE_STEP):
        return None
    enough = max(enough, _RETONE_ORDER)
    best: float | None = None
    for dy in (0, -1, 1):
        for dx in (0, -1, 1):
            cur_m, ref_m = overlap(medians, ref_medians, dx, dy)
            went = log_step(cur_m, ref_m) * np.sign(step) >= abs(step) / 2
            if int(went.sum()) < went.size // 2:
                continue
            for cur, ref in zip(tones.cells, ref_tones.cells, strict=True):
                a, b = overlap(cur, ref, dx, dy)
                r = _concordance(a[went][:, None], b[went][:, None])
                if r is not None and (best is None or r > best):
                    best = r
                    if best >= enough:
                        return best
    return best if best is not None and best >= _RETONE_ORDER else None


class Tones:
    """A picture's 16x9 cells per colour channel, as their 10th, 25th and 50th percentiles
    (float32, read-only), computed on first use: the pictures a suspected cut is re-checked by.
    A change of tone (gain, offset, gamma, white balance, clipping to white, crushing to black)
    maps each channel's pixels through one rising curve, and every percentile of a cell goes
    through it with them, so the cells keep their order in every channel. Cell means do not (a
    cell that is half highlights loses more of its mean to clipping than a plain one), nor does
    luma (a red cell and a blue one clip in different channels, and their lumas can swap). The
    lower percentiles still tell cells apart where a gain has clipped the medians of most of
    them to white."""

    PERCENTILES = (10, 25, 50)

    def __init__(self, picture: np.ndarray, means: np.ndarray) -> None:
        self._picture = picture  # BGR or grey
        self.means = means  # the cells' mean luma (the sample's thumbnail)

    @cached_property
    def cells(self) -> tuple[np.ndarray, ...]:
        """One (rows, columns[, channels]) array per percentile in PERCENTILES."""
        cols, rows = LAYOUT_SIZE
        pic = self._picture
        h, w = pic.shape[:2]
        ch, cw = h // rows, w // cols
        if ch == 0 or cw == 0:
            small = cv2.resize(pic, LAYOUT_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
            out = [small] * len(self.PERCENTILES)
        else:
            out = _cell_percentiles(pic[: ch * rows, : cw * cols], self.PERCENTILES)
            out = [q[..., 0] if q.shape[2] == 1 else q for q in out]
        for q in out:
            q.flags.writeable = False
        return tuple(out)


def _cell_percentiles(pic: np.ndarray, percentiles: tuple[int, ...]) -> list[np.ndarray]:
    """Per 16x9 cell and channel of a uint8 picture (cropped to whole cells), the percentiles
    exactly as numpy's linear method gives them, read from per-cell histograms: 5x faster than
    np.percentile over the cells' pixels (0.9 against 4.9 ms at 480x270)."""
    cols, rows = LAYOUT_SIZE
    h, w = pic.shape[:2]
    channels = 1 if pic.ndim == 2 else pic.shape[2]
    bins = _histogram_bins(h, w, channels)
    counts = np.bincount((bins + pic.reshape(h, w, channels)).ravel(), minlength=rows * cols * channels * 256)
    below = np.cumsum(counts.reshape(rows, cols, channels, 256), axis=-1)  # pixels at or below each level
    out = []
    for p in percentiles:
        lower, upper, frac = _around((h // rows) * (w // cols), p)
        # The k-th smallest value (0-based) is the number of levels with at most k pixels at or below.
        a = np.count_nonzero(below <= lower, axis=-1).astype(np.float64)
        b = np.count_nonzero(below <= upper, axis=-1).astype(np.float64)
        out.append(_between(a, b, frac).astype(np.float32))
    return out


@lru_cache(maxsize=8)  # one per analysis size in use (1.6 MB at 480x270)
def _histogram_bins(h: int, w: int, channels: int) -> np.ndarray:
    """Per pixel and channel, the first of its cell's and channel's 256 histogram bins."""
    cols, rows = LAYOUT_SIZE
    cell = (np.arange(h) // (h // rows))[:, None] * cols + (np.arange(w) // (w // cols))[None, :]
    return ((cell[..., None] * channels + np.arange(channels)) * 256).astype(np.int32)


@lru_cache(maxsize=8)  # one per registration size in use
def _hanning(h: int, w: int) -> np.ndarray:
    return cv2.createHanningWindow((w, h), cv2.CV_32F)


def registration(gray: np.ndarray, reference: np.ndarray) -> tuple[float, float, float] | None:
    """How far ``gray`` is shifted from ``reference`` (x, y, in pixels) by phase correlation, and
    the correlation's response (1: the same picture moved; near 0: nothing in common). None when
    they are not comparable (another size)."""
    if gray.shape != reference.shape or min(gray.shape) < 8:
        return None
    h, w = gray.shape
    (dx, dy), response = cv2.phaseCorrelate(reference, gray, _hanning(h, w))
    return float(dx), float(dy), float(response) if np.isfinite(response) else 0.0


def shifted_within(dx: float, dy: float, shape: tuple[int, ...], share: float) -> bool:
    """A registration's shift (dx, dy) is at most ``share`` of a picture of ``shape`` (h, w) each way."""
    return abs(dx) <= share * shape[1] and abs(dy) <= share * shape[0]


def _moved_response(gray: np.ndarray, reference: np.ndarray) -> float | None:
    """The registration's response, or 0 when the shift is more than MOVED_SHIFT or the two
    pictures, lined up by it, do not correlate at least MOVED_CORRELATION."""
    r = registration(gray, reference)
    if r is None:
        return None
    dx, dy, response = r
    if not shifted_within(dx, dy, gray.shape, MOVED_SHIFT):
        return 0.0
    here, there = overlap(gray, reference, round(dx), round(dy))
    return response if pearson(here, there) >= MOVED_CORRELATION else 0.0


def overlap(picture: np.ndarray, reference: np.ndarray, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """The parts of two equally sized pictures that show the same place when ``picture`` is
    ``reference`` moved by (dx, dy) cells or pixels."""
    h, w = picture.shape[:2]
    return (
        picture[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)],
        reference[max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)],
    )


class Layout:
    """The previous sample's picture layout: tells "the same scene, only darker / brighter /
    softer / noisier" (an exposure, focus or noise fault) and "the same scene, moved a little"
    (a pan, a patrol, shake) from "other content" (a cut, a camera switch), which is no fault
    and should be learned instead.

    The comparison is a rank correlation of 16x9 thumbnails, the best over shifts of up to one
    cell: gain, offset, gamma and clipping keep the cells' order, camera motion moves it a
    little between two samples, new content changes it."""

    def __init__(self) -> None:
        self._ref: np.ndarray | None = None
        self._ref_tones: Tones | None = None
        self._ref_gray: np.ndarray | None = None

    def correlation(self, thumb: np.ndarray, memo: LayoutMemo | None = None) -> float | None:
        """Rank correlation of this frame's thumbnail with the previous one (None: nothing to
        compare). With a ``memo`` (one per sample), checks that compare the same two pictures
        pay for it once."""
        if self._ref is None or not has_layout(thumb):
            return None
        if memo is None:
            return _best_shift_correlation(thumb, self._ref)
        return memo.correlation(thumb, self._ref)

    def concordance(self, tones: Tones, memo: LayoutMemo | None = None, enough: float = 1.0) -> float | None:
        """How well this frame's cell percentiles (see Tones) keep the previous one's order, the
        best over the percentiles and over shifts of up to one cell (see _concordance): unlike
        the rank correlation, ties are no evidence either way, so a picture re-toned (gain, gamma,
        clipped to white or crushed to black over much of it) still reads as the same scene. Only
        computed for a suspected cut; with a ``memo``, once per sample for every check that
        compares the same two pictures. A caller that only asks whether the order is kept at
        least ``enough`` gets the first comparison that shows it: the search for the best goes on
        only below it (each comparison weighs all 10,296 pairs of cells per channel). Below it,
        a picture re-toned as a whole is also judged without the cells that kept their tone
        (graphics on top, see _retoned_under_graphics)."""
        ref_tones = self._ref_tones
        if ref_tones is None:
            return None

        def measure(cur: np.ndarray, ref: np.ndarray) -> float | None:
            return _best_shift_concordance(cur, ref, enough) if memo is None else memo.concordance(cur, ref, enough)

        # On suspected cuts in train footage, the best of the three percentiles kept 3 of 4 tone
        # steps (the median alone: 1) and read 28 of 453 other changes as re-toned (before: 24).
        best: float | None = None
        for cur, ref in zip(tones.cells, ref_tones.cells, strict=True):
            r = measure(cur, ref)
            if r is not None and (best is None or r > best):
                best = r
                if best >= enough:
                    break
        if best is None:
            # A low-contrast picture's percentiles tie in whole levels where its means still differ.
            best = measure(tones.means, ref_tones.means)
        if best is not None and best >= enough:
            return best
        below = (
            _retoned_under_graphics(tones, ref_tones, enough)
            if memo is None
            else memo.retoned_under_graphics(tones, ref_tones, enough)
        )
        return below if below is not None and (best is None or below > best) else best

    def moved(self, gray: np.ndarray, memo: LayoutMemo | None = None) -> bool:
        """This sample (its FrameView.gray_registration) is the previous one's scene moved a
        little (see MOVED_RESPONSE): only computed for a suspected cut."""
        if self._ref_gray is None:
            return False
        ref = self._ref_gray
        r = _moved_response(gray, ref) if memo is None else memo.moved_response(gray, ref)
        return r is not None and r >= MOVED_RESPONSE

    def change(self, thumb: np.ndarray) -> float:
        """How much the coarse picture changed since the previous one, whatever the exposure: the
        mean absolute difference of the two thumbnails, each divided by its own mean brightness."""
        if self._ref is None:
            return 0.0
        a = thumb / max(float(thumb.mean()), 1.0)
        b = self._ref / max(float(self._ref.mean()), 1.0)
        return float(np.abs(a - b).mean())

    def copy(self) -> Layout:
        other = Layout()
        other._ref, other._ref_tones, other._ref_gray = self._ref, self._ref_tones, self._ref_gray
        return other

    def learn(self, thumb: np.ndarray, tones: Tones, gray: np.ndarray | None = None) -> None:
        """``gray``: the sample's FrameView.gray_registration (None: the next sample is never
        taken as this one moved)."""
        if has_layout(thumb):
            # A read-only thumbnail (a sample's, shared by its checks) is kept as is: every check
            # then holds the same reference picture, which is what lets the memo find it.
            self._ref = thumb if not thumb.flags.writeable else thumb.copy()
            self._ref_tones = tones
            self._ref_gray = gray


def _best_shift_correlation(thumb: np.ndarray, reference: np.ndarray) -> float | None:
    # Above 0.9 it is clearly the same scene: no shift could change a decision.
    return best_shift(thumb, reference, _rank_correlation, good_enough=0.9)


def _best_shift_concordance(thumb: np.ndarray, reference: np.ndarray, enough: float = 1.0) -> float | None:
    # Its callers only ask whether the order is kept at least ``enough``: any shift that shows
    # it answers them.
    return best_shift(thumb, reference, _concordance, good_enough=enough, any_enough=True)


def best_shift(
    thumb: np.ndarray,
    reference: np.ndarray,
    measure: Callable[[np.ndarray, np.ndarray], float | None],
    good_enough: float,
    any_enough: bool = False,
) -> float | None:
    """The best of ``measure`` over shifts of up to one cell, unshifted first; ``good_enough``
    unshifted ends the search, and with ``any_enough`` so does any shift reaching it."""
    best = measure(thumb, reference)
    if best is not None and best >= good_enough:
        return best
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dx == dy == 0:
                continue
            r = measure(*overlap(thumb, reference, dx, dy))
            if r is not None and (best is None or r > best):
                best = r
                if any_enough and best >= good_enough:
                    return best
    return best


class LayoutMemo:
    """Layout comparisons already made for one sample, by measure and by the pair of pictures
    compared (the very same arrays: identity, not equal values)."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, float, int, int], tuple[np.ndarray, np.ndarray, float | None]] = {}

    def correlation(self, thumb: np.ndarray, ref: np.ndarray) -> float | None:
        return self._once("correlation", 0.0, thumb, ref, _best_shift_correlation)

    def moved_response(self, gray: np.ndarray, ref: np.ndarray) -> float | None:
        return self._once("moved", 0.0, gray, ref, _moved_response)

    def concordance(self, thumb: np.ndarray, ref: np.ndarray, enough: float = 1.0) -> float | None:
        return self._once("concordance", enough, thumb, ref, partial(_best_shift_concordance, enough=enough))

    def retoned_under_graphics(self, tones: Tones, ref_tones: Tones, enough: float) -> float | None:
        # Keyed by the two pictures' cell medians: one Tones each, shared by every check.
        return self._once(
            "graphics",
            enough,
            tones.cells[-1],
            ref_tones.cells[-1],
            lambda _cur, _ref: _retoned_under_graphics(tones, ref_tones, enough),
        )

    def _once(
        self,
        measure: str,
        enough: float,
        thumb: np.ndarray,
        ref: np.ndarray,
        compute: Callable[[np.ndarray, np.ndarray], float | None],
    ) -> float | None:
        key = (measure, enough, id(thumb), id(ref))
        hit = self._done.get(key)
        if hit is not None and hit[0] is thumb and hit[1] is ref:
            return hit[2]
        r = compute(thumb, ref)
        self._done[key] = (thumb, ref, r)  # holding both keeps their ids from being reused
        return r
