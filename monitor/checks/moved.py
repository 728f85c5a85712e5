"""moved: the camera was turned away, knocked or re-aimed (the third tamper fault, beside a
covered lens and a dead picture).

The check keeps a reference of the view's static structure: where the picture has edges,
averaged over time, so what stays (buildings, kerbs, furniture) stands out and what passes
(people, cars, rain) averages away. Each sample's edges are compared with it after aligning the
two for shake (phase correlation): ``structure`` is how much of the reference's static
structure is still found, above what chance alone would find in a picture with as many edges
(0: an unrelated view; 1: all of it). A view whose structure stays under ``min_structure`` for
raise_after_s has moved. The reference is refreshed slowly while the view matches (leaves on a
tree, a parked car), never while it does not.

A moved camera stays moved: the alert holds until the view comes back, or an operator accepts
the new one (`vqmon rebaseline STREAM`, MQTT ``<prefix>/<stream>/rebaseline``, or an ack of the
``moved`` alert), which makes the current view the reference. A PTZ preset tour or a camera
sequencer shows several views: ``known_views`` says how many, and each new steady view is
learned as one of them until that many are known.

Edited content cuts from view to view all the time: the check is on in the ``cctv`` profile
only. A camera that pans continuously (a patrol) has no fixed view: turn it off there.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np
from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView

SIZE = (128, 72)  # edges are compared on a copy this small: the scene's structure, not its pixels
EDGE_TOP = 0.12  # a picture's edges: its strongest gradients, this fraction of the pixels
# ...and at least this steep (levels per pixel on the blurred copy): sensor noise, averaged down
# to this size, makes gradients well under 1; the floor must stay low, since a picture at night
# has less contrast and the same structure (an IR switch to 45 % contrast put a tree's edges at
# 4 levels per pixel, and a floor of 6 took most of them away).
MIN_EDGE = 2.0
STATIC = 0.5  # a reference pixel is static structure when it was an edge this often
# The view is refreshed only from pictures that match it this well: a picture half hidden by a
# passing truck, or the first seconds of a slow swing away, must not become part of it.
LEARN_STRUCTURE = 0.7
REGIONS = 3  # per side
MIN_STATIC_PER_REGION = 12  # static edge pixels a region needs to be judged
MIN_REGIONS = 3  # a view with structure in fewer regions than this is not judged
# Judged on the median of this many samples: one sample badly aligned (a jolt of shake), or one
# that happens to line up with a re-aimed view's edges, decides nothing.
SMOOTH_SAMPLES = 5


class MovedConfig(CheckConfig):
    enabled: bool = Field(False, description="on in the cctv profile; edited content cuts between views")
    # Longer than a person walking right past the lens, a truck parking in front or a PTZ move.
    raise_after_s: float = Field(8.0, ge=0)
    clear_after_s: float = Field(3.0, ge=0)
    # On train, a matching view reads 0.9-1.0 (down to 0.5-0.6 for a moment under heavy shake, a
    # crowd or a light switched off); a turned camera reads about 0, a knocked one (tilted about
    # the middle, which keeps some of the structure near it) 0.2-0.4, a zoomed one about 0.4.
    min_structure: float = Field(
        0.5,
        ge=0,
        le=1,
        description="the reference's static structure still seen (above chance; median of recent samples) below "
        "this: moved",
    )
    learn_s: float = Field(8.0, gt=0, description="stream time a steady view is watched before it is the reference")
    refresh_tau_s: float = Field(300.0, gt=0, description="time constant of the reference's refresh while it matches")
    max_shift: float = Field(0.1, ge=0, le=0.5, description="shake up to this fraction of the width is aligned away")
    known_views: int = Field(1, ge=1, le=16, description="a PTZ preset tour or a camera sequencer: how many views")
    min_edges: float = Field(
        0.03, ge=0, le=1, description="a picture (or reference) with fewer edges than this fraction is not judged"
    )


def edges(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The small blurred copy (float32) and its edge map (bool) of a grey picture."""
    small = cv2.GaussianBlur(cv2.resize(gray, SIZE, interpolation=cv2.INTER_AREA).astype(np.float32), (0, 0), 1.0)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    mag = cv2.magnitude(gx, gy) / 8.0  # Sobel's 3x3 kernel weighs 8 levels per level per pixel
    level = max(MIN_EDGE, float(np.quantile(mag, 1.0 - EDGE_TOP)))
    return small, mag >= level


class View:
    """One learned view: how often each pixel was an edge, and the mean picture (for aligning)."""

    def __init__(self, small: np.ndarray, edge: np.ndarray, since: float) -> None:
        self.edge_rate = edge.astype(np.float32)
        self.picture = small.copy()
        self.samples = 1
        self.since = since  # stream time of its first picture

    def learn(self, small: np.ndarray, edge: np.ndarray, weight: float) -> None:
        self.edge_rate += weight * (edge.astype(np.float32) - self.edge_rate)
        self.picture += weight * (small - self.picture)
        self.samples += 1

    @property
    def static(self) -> np.ndarray:
        return self.edge_rate >= STATIC


def structure_kept(view: View, small: np.ndarray, edge: np.ndarray, max_shift: float) -> float | None:
    """How much of the view's static structure this picture shows, above chance (None: the view
    has too little structure to tell)."""
    static = view.static
    if not static.any():
        return None
    h, w = small.shape
    win = cv2.createHanningWindow((w, h), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(view.picture, small, win)
    if abs(dx) > max_shift * w or abs(dy) > max_shift * w or response < 0.05:
        dx = dy = 0.0
    # The picture's edges, moved back onto the view and widened by a pixel (the alignment and
    # the edges are only so exact).
    m = np.array([[1, 0, -dx], [0, 1, -dy]], np.float32)
    moved_back = cv2.warpAffine(edge.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
    found = cv2.dilate(moved_back, np.ones((3, 3), np.uint8)).astype(bool)
    # Judged region by region (a 3x3 grid), the median taken: a camera knocked askew keeps the
    # structure near the middle it turned about, a truck parked in front hides a third of the
    # picture, but only a view that changed loses its structure in most regions.
    scores = []
    for rows in np.array_split(np.arange(h), REGIONS):
        for cols in np.array_split(np.arange(w), REGIONS):
            st = static[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            if st.sum() < MIN_STATIC_PER_REGION:
                continue
            fo = found[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            chance = float(fo.mean())
            if chance < 1.0:
                scores.append((float(fo[st].mean()) - chance) / (1.0 - chance))
    return float(np.median(scores)) if len(scores) >= MIN_REGIONS else None


@register
class Moved(Check):
    name = "moved"
    Config = MovedConfig
    config: MovedConfig

    def __init__(self, config: MovedConfig) -> None:
        super().__init__(config)
        self.views: list[View] = []
        self._candidate: View | None = None  # a new view being watched before it is learned
        self._last_t: float | None = None
        self._recent: deque[float] = deque(maxlen=SMOOTH_SAMPLES)  # recent best scores against the views

    def rebaseline(self) -> None:
        """An operator accepted the current view (or a new set of views): learn afresh."""
        self.views, self._candidate = [], None
        self._recent.clear()

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        t = view.frame.stream_time
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        small, edge = edges(view.gray)
        if edge.mean() < c.min_edges:
            return CheckResult(False)  # a flat picture (black, covered, fog): the other checks' business
        scores = [structure_kept(v, small, edge, c.max_shift) for v in self.views]
        known = [(s, i) for i, s in enumerate(scores) if s is not None]
        best, index = max(known, default=(None, -1))
        if best is not None:
            self._recent.append(best)
        typical = float(np.median(self._recent)) if self._recent else None
        if best is not None and typical is not None and typical >= c.min_structure:
            self._candidate = None
            if best >= LEARN_STRUCTURE:
                v = self.views[index]
                # A running mean while the view is young, a slow refresh once it is known.
                v.learn(small, edge, max(1.0 / (v.samples + 1), min(1.0, dt / c.refresh_tau_s)))
            return CheckResult(False, measurements={"structure": round(typical, 3)})
        if self.views and not known:
            return CheckResult(False)  # the learned views have too little structure to judge by
        # A view none of the learned ones matches: learned, while fewer than known_views are known...
        if len(self.views) < c.known_views:
            if self._watch(small, edge, t):
                self._recent.clear()
            return CheckResult(False)
        # ...otherwise the camera points elsewhere.
        return CheckResult(
            True,
            "critical",
            {"structure": round(typical, 3) if typical is not None else None, "known_views": len(self.views)},
        )

    def _watch(self, small: np.ndarray, edge: np.ndarray, t: float) -> bool:
        """Watch a new view; True once it has been steady for learn_s and is learned."""
        cand = self._candidate
        if cand is not None:
            s = structure_kept(cand, small, edge, self.config.max_shift)
            if s is None or s < self.config.min_structure:
                cand = None  # not steady: start watching again from this picture
        if cand is None:
            self._candidate = View(small, edge, t)
            return False
        cand.learn(small, edge, 1.0 / (cand.samples + 1))
        if t - cand.since >= self.config.learn_s:
            self.views.append(cand)
            self._candidate = None
            return True
        return False
