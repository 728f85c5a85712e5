"""overexposed: much brighter than this stream normally is, and clipped, washed out or gained.

Over-exposure shows three ways: highlights clipped to white over much of the frame (too much
gain), the whole picture lifted so that nothing in it is dark any more (a washed-out, milky
picture: a wrong black level, a lens flare's veil, fog on the glass; it clips little, so it is
judged by the picture's black level, its darkest 2 % of pixels between the graphics bands,
where a clock's box keeps its own black), or a scene several times as bright as its normal,
which neither clips much nor loses all its darks (a dark scene gained up, a partial lift).

Clipping is counted in any colour, not in luma only: a gain blows a saturated colour's strongest
channel long before its luma reaches white (a red cup at R 255, G 40, B 40 has luma 104), so a colourful
scene gained 2.2x can blow three quarters of its pixels and still read 5 % clipped and a mean
luma of 142. There, the picture's brightness is its pixels' strongest channel (HSV value), and
its gain is read on the pixels that blew in no colour (a cat's orange fur 1.5x brighter, an
auto-exposure hunt, blows a third of its pixels in red but is no gain of 1.8).

A washout lifts the darks at least as much as the rest (an offset, a veil); a camera turning its
gain up (an IR switch, auto-exposure) lifts them less than the mid-tones, and a low-contrast
scene can then show a light black level without being washed out: the black level must have
risen by a good share of the picture's rise, against its own baseline.

A dark scene gained up several times can stay under the brightness that is overexposed for most
scenes (a black notebook x3.6: mean luma 43 -> 129); it is told from a light coming on by how
evenly it brightened: a gain multiplies every part of the picture by the same factor, a lamp or
the sun lights some parts more than others. The scene last seen at normal brightness is one
reference; on a camera that moves on (a patrol), the sample just before the step is the other."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from monitor.checks.base import BaselineCheck, BaselineCheckConfig, CheckResult
from monitor.checks.baseline import has_layout
from monitor.checks.registry import register
from monitor.checks.view import FrameView


class OverexposedConfig(BaselineCheckConfig):
    # Longer than a camera flash or a fade through white.
    raise_after_s: float = Field(2.0, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    clip_level: int = Field(250, ge=128, le=255, description="luma at or above this counts as clipped")
    min_clipped: float = Field(0.10, gt=0, le=1, description="fraction of clipped pixels that is overexposed")
    min_black_level: float = Field(
        100.0, ge=0, le=255, description="...or the darkest 2 % of the picture is this light: washed out"
    )
    min_black_share: float = Field(
        0.8,
        ge=0,
        description="washed out only if the black level rose by at least this x the mean's rise over their "
        "baselines (an offset lifts both alike, a gain the darks less)",
    )
    min_gain: float = Field(
        1.8, gt=1, description="...or the same scene is this many times as bright as its baseline, nothing else"
    )
    min_mean: float = Field(
        150.0,
        ge=0,
        le=255,
        description="...with a mean luma at least this high (for pixels blown in some colour: a mean value, "
        "max(B, G, R), this high)",
    )
    # A gain multiplies every part of the picture by one factor; a light coming on (a lamp, the
    # sun out of a cloud, an IR lamp on foliage) brightens some parts more than others. In train
    # footage a dark notebook gained 3.6x read 0.015; of 137 clean samples 1.8x over their
    # baseline and under the 150 mean (2.5 h of clean train footage) none read under 0.2, 96 %
    # 0.5 or more.
    max_gain_spread: float = Field(
        0.1,
        ge=0,
        description="...or, at any mean, brightened min_gain times evenly: the cells' log2 brightness ratios to "
        "the scene last seen at normal brightness within this interquartile range (a gain, not a light)",
    )
    min_rise: float = Field(40.0, ge=0, description="and at least this much brighter than the stream's baseline")
    critical_clipped: float = Field(0.5, gt=0, le=1)
    whiteout: float = Field(
        0.9, gt=0, le=1, description="this fraction clipped is a white-out: no scene left to compare, flagged as is"
    )
    # A camera that never holds still (a patrol in the rain) jumps its layout at every sample
    # and learns no baseline, and one whose washout starts with such a jump learns the washout as
    # its normal. In 2.5 h of clean train footage no picture kept its darkest 2 % at
    # 140 or lighter for 2 s; the ones that came closest were plain slates, which show no scene.
    washed_black_level: float = Field(
        160.0,
        ge=0,
        le=255,
        description="a scene whose darkest 2 % is this light is washed out whatever the stream's normal",
    )
    # Clipping to white / crushing to black ties much of the picture, which shuffles the ranks
    # the layout is compared by: only a bigger jump is a cut.
    min_layout_correlation: float = Field(0.6, ge=-1, le=1)
    # A fade through black (or white) just after a cut must not become the new scene's normal.
    warmup_steady: float | None = Field(0.25, gt=0)


# The scene at its normal brightness: within this factor of its baseline either way.
NORMAL_RATIO = 1.25
# An IR switch turns a colour picture grey as the camera brightens it; a gain keeps (and
# multiplies) its colour. Under this colourfulness a picture shows no colour to keep.
MIN_COLOUR = 4.0
# The share of pixels that must have blown in no colour for a gain to be read on them.
MIN_UNBLOWN = 0.1


def sparse(bgr: np.ndarray) -> np.ndarray:
    """Every 8th pixel each way: enough to tell a colour picture from a grey one (a resize to a
    small copy cost ten times as much)."""
    return bgr[::8, ::8]


def blown(strongest: np.ndarray, level: int) -> tuple[float, float]:
    """(fraction of pixels with some channel at or above ``level``, mean of max(B, G, R)), from
    each pixel's strongest channel, max(B, G, R)."""
    return float(np.count_nonzero(strongest >= level)) / max(1, strongest.size), float(strongest.mean())


def unblown_gain(strongest: np.ndarray, scene: np.ndarray, level: int) -> float | None:
    """How many times brighter than in ``scene`` the pixels that blew in no colour are (the median
    of their max(B, G, R) ratios; ``strongest``: each pixel's max(B, G, R) now); None when too few
    are left, or were lit, to tell."""
    was = scene.max(axis=2)
    ok = (strongest < level) & (was >= 16)
    if np.count_nonzero(ok) < MIN_UNBLOWN * ok.size:
        return None
    return float(np.median(strongest[ok].astype(np.float32) / was[ok]))


def colourfulness(pixels: np.ndarray) -> float:
    """Mean of max(B, G, R) - min(B, G, R): about 0 for a grey picture."""
    return float(np.mean(pixels.max(axis=2) - pixels.min(axis=2)))


def gain_spread(thumb: np.ndarray, scene: np.ndarray) -> float | None:
    """How unevenly the picture brightened, cell by cell, from ``scene``: the interquartile range of
    the cells' log2 brightness ratios over cells neither black before nor clipped now."""
    ok = (scene >= 8.0) & (thumb <= 235.0)
    if int(ok.sum()) < 0.5 * ok.size:
        return None
    r = np.log2(np.maximum(thumb[ok], 1.0) / scene[ok])  # a cell gone black is a ratio, not -inf
    q75, q25 = np.percentile(r, [75, 25])
    return float(q75 - q25)


@register
class OverexposedCheck(BaselineCheck):
    name = "overexposed"
    alters_picture = True
    Config = OverexposedConfig
    config: OverexposedConfig
    # A low-contrast scene (brick, a wall, fog) washed out or gained up goes flat near white.
    flat_is_symptom = True

    def __init__(self, config: OverexposedConfig) -> None:
        super().__init__(config)
        self._black = self.new_baseline()  # the scene's normal black level
        self._scene: np.ndarray | None = None  # the coarse picture last seen at its normal brightness
        self._scene_pixels: np.ndarray | None = None  # ...and a sparse copy of its colours (see sparse)
        # The previous sample's coarse picture and colours, while it was not gained: a camera that
        # moves (a patrol) leaves the scene last seen at normal brightness behind, but between two
        # samples a gain step shows as one factor over the picture all the same.
        self._before: tuple[np.ndarray, np.ndarray] | None = None

    def new_scene(self) -> None:
        super().new_scene()
        self._black = self.new_baseline()
        self._scene = self._scene_pixels = None
        self._before = None

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        clipped = view.fraction_at_or_above(c.clip_level)
        mean = view.mean_luma
        pixels = sparse(view.small)
        strongest = pixels.max(axis=2)
        blown_share, value = blown(strongest, c.clip_level)
        # A camera's clock box or a channel logo sits on top of the picture in the graphics
        # bands and keeps its own black: the picture's black level is read between them.
        black_level = view.luma_percentile(2.0, core=True)
        base = self._baseline.value if self._baseline.ready else None
        # A lifted or brightened picture need not clip much: a scene cannot double its brightness
        # and stay normal (an IR switch or auto-exposure hunting moves it by well under 1.5x).
        ratio = self._baseline.ratio(mean, floor=1.0)
        gained = ratio is not None and ratio >= c.min_gain
        spread = self._spread(view, pixels, self._scene, self._scene_pixels) if gained else None
        if gained and self._before is not None:
            step = self._spread(view, pixels, *self._before)
            if step is not None and (spread is None or step < spread):
                spread = step
        self._before = None if gained else (view.thumbnail, pixels.copy())
        washed = black_level >= c.min_black_level and self._lifted(black_level, mean, base)
        # A picture brightened evenly is gained whatever its mean; once flagged, it stays so while
        # it stays that bright (the camera may move away from the scene it was compared with).
        even = gained and (self._flagging or (spread is not None and spread <= c.max_gain_spread))
        # A colourful scene gained: blown in some colour and bright by its strongest channels,
        # by a gain read where it blew nothing (only then: it is no cost on most samples).
        colour_gain = None
        if blown_share >= c.min_clipped and value >= c.min_mean and self._scene_pixels is not None:
            colour_gain = unblown_gain(strongest, self._scene_pixels, c.clip_level)
        colour_gained = colour_gain is not None and colour_gain >= c.min_gain
        bright = ((clipped >= c.min_clipped or washed or gained) and mean >= c.min_mean) or colour_gained or even
        # The same scene gone brighter than its baseline; a stream that is this bright from the
        # start (snow, a white studio), or a cut or pan to bright content, is its own normal.
        active, corr = self.judge(view, mean, bright and base is not None and mean - base >= c.min_rise)
        if not active:
            self._black.update(black_level, view.frame.stream_time)
            if ratio is not None and 1 / NORMAL_RATIO < ratio < NORMAL_RATIO:
                self._scene, self._scene_pixels = view.thumbnail, pixels.copy()
        # Nothing in a white-out to tell a fault from new content by, and no scene is this white;
        # nor does any scene, lit however brightly, show nothing darker than a light grey.
        active = active or clipped >= c.whiteout or (black_level >= c.washed_black_level and has_layout(view.thumbnail))
        m = {
            "clipped_fraction": round(clipped, 3),
            "blown_fraction": round(blown_share, 3),
            "mean_luma": round(mean, 1),
            "mean_value": round(value, 1),
            "black_level": round(black_level),
        }
        if corr is not None:
            m["layout_correlation"] = round(corr, 2)
        if base is not None:
            m["baseline_luma"] = round(base, 1)
        if spread is not None:
            m["gain_spread"] = round(spread, 3)
        if colour_gain is not None:
            m["unblown_gain"] = round(colour_gain, 2)
        if self._black.ready and self._black.value is not None:
            m["baseline_black_level"] = round(self._black.value)
        return CheckResult(active, "critical" if clipped >= c.critical_clipped else "warning", m)

    def _spread(
        self, view: FrameView, now: np.ndarray, thumb: np.ndarray | None, pixels: np.ndarray | None
    ) -> float | None:
        """gain_spread from the picture ``thumb`` showed; None when the picture went grey since
        (an IR switch, whose lamp may light the scene evenly) or there is nothing to compare.
        ``now`` and ``pixels``: the sparse colours of this picture and of that one (see sparse)."""
        if thumb is None:
            return None
        spread = gain_spread(view.thumbnail, thumb)
        if spread is not None and pixels is not None:
            # Read only here, when the picture has brightened: the colours' copy is all that is
            # kept on the way (a few kB, a hundredth of a millisecond).
            was = colourfulness(pixels)
            if was >= MIN_COLOUR and colourfulness(now) < 0.5 * was:
                return None
        return spread

    def _lifted(self, black_level: float, mean: float, base: float | None) -> bool:
        """The darks rose by a good share of the picture's rise (see the module doc); unknown
        before the scene's black level is learned."""
        black_base = self._black.value if self._black.ready else None
        if base is None or black_base is None:
            return True
        return black_level - black_base >= self.config.min_black_share * (mean - base)
