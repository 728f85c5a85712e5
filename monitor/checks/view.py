"""A sampled frame plus derived images computed once and shared by all checks."""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np

from monitor.checks.baseline import LAYOUT_SIZE, LayoutMemo, Tones
from monitor.frames import Frame

# Native-resolution checks (noise, 8x8 blocking) read a centred crop at most this big,
# aligned to the 16-pixel macroblock grid so codec block edges keep their phase.
NATIVE_CROP = (640, 352)
# The width at which sharpness is read (see FrameView.gray_coarse): half the analysis width.
COARSE_WIDTH = 240
# The width at which consecutive samples are registered (see FrameView.gray_registration).
REGISTRATION_WIDTH = 120
# Cameras and playout put their graphics (clock, camera name, logo, captions, ticker) in the top
# and bottom bands of the picture; checks that must see past them read the rows in between.
GRAPHICS_BAND = 0.12
# colour_spread reads only cells with a mean luma in this range: a cell crushed to black or clipped
# to white has lost its colour, and the fixed tint a decoder leaves on a grey picture with it (a
# grey photograph under a gamma of 4, its shadows crushed: tint -3 on the lit cells, 0 on the
# crushed ones, which read as colour, 0.0 -> 4.8, and restarted every baseline at the
# underexposure's onset); a dim cell's colour is lost to the codec (a pale building darkened to
# a tenth, its cells at luma 16-32, read 2.6 -> 0.0). At 16, not 32, the 754 pictures sampled
# from train's clean clips left 15 without a reading; at 32, 138 (night scenes).
SPREAD_CELL_LUMA = (32.0, 240.0)
# Studio-range luma (16-235) stretched to full range, as the decoder's scaler does for ``small``:
# noise and contrast then read the same on the Y plane as on the BGR picture.
_STUDIO_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


def _at_most(gray: np.ndarray, width: int) -> np.ndarray:
    """``gray`` scaled down by area means to ``width`` if it is wider, else itself."""
    h, w = gray.shape
    if w <= width:
        return gray
    return cv2.resize(gray, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def core_rows(height: int, band: float = GRAPHICS_BAND) -> slice:
    b = int(height * band)
    return slice(b, height - b) if height - 2 * b >= 8 else slice(0, height)


def _cumulative_histogram(gray: np.ndarray) -> np.ndarray:
    h = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel().astype(np.float64)
    return np.cumsum(h) / max(1.0, float(h.sum()))


def _masked(img: np.ndarray, masks: list[list[tuple[float, float]]], origin=(0, 0), full=None) -> np.ndarray:
    """A copy of ``img`` with the masked parts filled with the median of the rest: what the checks
    see there is plain and unchanging (no detail, no motion, no clipping), and the picture's
    brightness barely moves. ``full``: (width, height) of the picture the relative coordinates
    refer to, when ``img`` is a crop of it starting at ``origin``."""
    h, w = img.shape[:2]
    fw, fh = full if full is not None else (w, h)
    mask = np.zeros((h, w), np.uint8)
    polys = [
        np.round(np.array([(x * fw - origin[0], y * fh - origin[1]) for x, y in m])).astype(np.int32) for m in masks
    ]
    cv2.fillPoly(mask, polys, 255)
    if not mask.any():
        return img
    keep = mask == 0
    fill = np.median(img[keep], axis=0) if keep.any() else 0
    out = img.copy()
    out[~keep] = np.asarray(fill, img.dtype)
    return out


class FrameView:
    def __init__(
        self,
        frame: Frame,
        masks: list[list[tuple[float, float]]] | None = None,
        faults: frozenset[str] = frozenset(),
    ) -> None:
        """``masks``: polygons in relative coordinates that every check ignores. ``faults``: the
        checks whose fault alters the picture (see Check.alters_picture) that flagged the
        stream's previous sample, the fault not yet standing (see runtime.stream.STANDING_FAULT_S)."""
        self.frame = frame
        self.masks = masks or []
        self.faults = faults

    @cached_property
    def small(self) -> np.ndarray:
        """BGR, at most ANALYSIS_WIDTH wide (made by the decoder's scaler), masks filled in."""
        return _masked(self.frame.small, self.masks) if self.masks else self.frame.small

    @cached_property
    def gray(self) -> np.ndarray:
        """Luma of ``small`` (uint8, full range)."""
        return cv2.cvtColor(self.small, cv2.COLOR_BGR2GRAY)

    @cached_property
    def gray_f(self) -> np.ndarray:
        return self.gray.astype(np.float32)

    @cached_property
    def mean_luma(self) -> float:
        return float(self.gray.mean())

    @cached_property
    def histogram(self) -> np.ndarray:
        """Cumulative luma histogram of ``gray``: [v] is the fraction of pixels at or below v."""
        return _cumulative_histogram(self.gray)

    @cached_property
    def core_histogram(self) -> np.ndarray:
        """As ``histogram``, for the rows between the graphics bands (see core_rows)."""
        return _cumulative_histogram(self.gray[core_rows(self.gray.shape[0])])

    def luma_percentile(self, percent: float, core: bool = False) -> float:
        """The luma that ``percent`` % of the pixels (``core``: between the graphics bands) are at
        or below."""
        return float(np.searchsorted(self.core_histogram if core else self.histogram, percent / 100.0))

    def fraction_at_or_above(self, level: int) -> float:
        """The fraction of pixels with luma ``level`` or more."""
        return 1.0 - float(self.histogram[level - 1]) if level > 0 else 1.0

    @cached_property
    def thumbnail(self) -> np.ndarray:
        """16x9 block means of ``gray`` (float32, read-only): the coarse picture, free of pixel noise."""
        thumb = cv2.resize(self.gray_f, LAYOUT_SIZE, interpolation=cv2.INTER_AREA)
        thumb.flags.writeable = False
        return thumb

    @cached_property
    def colour_spread(self) -> float | None:
        """How much the picture's colour varies across it: the mean absolute deviation, over 32x18
        cells, of their blue-green and red-green differences from the picture's median ones, over
        all but the quarter of the picture's cells that deviate most, per 100 levels of their luma.
        0 for a monochrome (IR) picture, whatever fixed tint the decoder's conversion leaves on it,
        and for one under a coloured caption or logo: a day/night switch changes the colour of the
        whole picture, graphics colour a part (train: a caption coming up over a grey picture read
        0.7 -> 6.5 over all cells, taken for a switch to colour, and 0.0 -> 0.0 over these). Only
        cells that can show a colour count (see SPREAD_CELL_LUMA); None when under half of them can."""
        # From a 64x36 sample of the picture: an area mean over all of it cost 0.1 ms at 480x270,
        # and read the same to a tenth on train footage.
        sample = cv2.resize(self.small, (64, 36), interpolation=cv2.INTER_LINEAR)
        cells = cv2.resize(sample, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32).reshape(-1, 3)
        luma = cells @ np.array([0.114, 0.587, 0.299], np.float32)
        can_show = (luma >= SPREAD_CELL_LUMA[0]) & (luma <= SPREAD_CELL_LUMA[1])
        shown = cells[can_show]
        # Graphics are lit: in a dark picture they are a bigger share of the cells that count.
        least = len(shown) - len(cells) // 4
        if least < len(cells) // 4:
            return None
        spread = 0.0
        for c in (0, 2):
            d = shown[:, c] - shown[:, 1]
            median = np.partition(d, d.size // 2)[d.size // 2]
            deviation = np.abs(d - median)
            spread += float(np.partition(deviation, least - 1)[:least].mean())
        # Per 100 levels of luma: a picture darkened several times has its colour differences
        # scaled down with it, and is no monochrome picture for that.
        return spread * 100.0 / float(luma[can_show].mean())

    @cached_property
    def tones(self) -> Tones:
        """The picture's cell medians, computed only if a check asks (see Tones)."""
        return Tones(self.small, self.thumbnail)

    @cached_property
    def layouts(self) -> LayoutMemo:
        """Layout comparisons made for this sample, shared by the checks that make the same one."""
        return LayoutMemo()

    @cached_property
    def gray_median(self) -> np.ndarray:
        """``gray`` after a 3x3 median: edges kept, pixel noise gone (texture without noise)."""
        return cv2.medianBlur(self.gray, 3)

    @cached_property
    def gray_coarse(self) -> np.ndarray:
        """``gray`` at most COARSE_WIDTH wide (area means): the detail a viewer sees, with the
        sensor's noise and the codec's grain, finer than that, averaged down."""
        return _at_most(self.gray, COARSE_WIDTH)

    @cached_property
    def gray_registration(self) -> np.ndarray:
        """``gray_coarse`` at most REGISTRATION_WIDTH wide (float32, read-only): what a sample is
        registered against the previous one by, to tell a pan from a cut (see Layout.moved) and
        a still camera (see BlurCheck); phase correlation costs 0.08 ms here against 0.6 at 240."""
        out = _at_most(self.gray_coarse, REGISTRATION_WIDTH).astype(np.float32)
        out.flags.writeable = False
        return out

    @cached_property
    def gradient(self) -> np.ndarray:
        """|dx| + |dy| of ``gray`` (float32, same size, last row/column zero)."""
        g = self.gray
        out = np.zeros(g.shape, np.float32)
        out[:, :-1] += cv2.absdiff(g[:, 1:], g[:, :-1])
        out[:-1, :] += cv2.absdiff(g[1:, :], g[:-1, :])
        return out

    @cached_property
    def native_crop(self) -> np.ndarray:
        """Centred crop of the full-resolution luma, grid-aligned (see NATIVE_CROP), full range."""
        y = self.frame.luma
        h, w = y.shape
        cw, ch = min(NATIVE_CROP[0], w // 16 * 16), min(NATIVE_CROP[1], h // 16 * 16)
        x0 = ((w - cw) // 2) // 16 * 16
        y0 = ((h - ch) // 2) // 16 * 16
        crop = y[y0 : y0 + ch, x0 : x0 + cw]
        # Only the crop is stretched: the whole 1080p plane would cost ~6x more.
        crop = cv2.LUT(crop, _STUDIO_TO_FULL) if self.frame.luma_limited else crop
        return _masked(crop, self.masks, (x0, y0), (w, h)) if self.masks else crop
