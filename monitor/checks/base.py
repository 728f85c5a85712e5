"""What every picture check is: a name (the fault it reports), a config model, and evaluate()."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.checks.baseline import Baseline, Layout, has_layout
from monitor.checks.view import FrameView

if TYPE_CHECKING:
    from monitor.iqa.scorer import IqaScorer

Severity = Literal["warning", "critical"]
HOLD_S = 0.5  # how long a baseline check waits before taking an abrupt, off-baseline change as new content
# The coarse picture from before a cut is back when it changed by less than this (see
# track_layout): on train footage a zooming camera after a whip pan came back changed by 0.105,
# while a dark notebook cut to after a smooth apple, whose cells ranked alike by chance (0.61),
# had changed by 0.43.
BACK_CHANGE = 0.2
# A flat picture this much brighter than the darkest one in the same run of flat pictures (mean
# luma: x ratio + levels) has come up out of black: a fade-in.
FADE_IN_RATIO, FADE_IN_LEVELS = 2.0, 8.0
# A picture whose colour spread (FrameView.colour_spread) is at most MONO is monochrome, one at
# least COLOUR is in colour; between, it stays what it was. On train footage IR pictures read
# 0.0-0.1 (up to 1.8 with lit movers in a scene), colour scenes 3-80 (a grey CGI render 1.3-1.5:
# neither, so no switch is seen on it). Measured over all cells then; over the three quarters
# that deviate least and per 100 levels of luma (session 30), of 754 pictures sampled from
# train's clean clips 154 read at most 0.3 (IR, grey photographs under coloured graphics), 521
# from 3 up to 77, and 79 between; over the lit cells only (session 31, see
# view.SPREAD_CELL_LUMA) 103, 471 and 42, and 138 dark pictures (night scenes) no reading.
MONO_SPREAD, COLOUR_SPREAD = 0.3, 3.0
# A picture that reads the other way while under this x as bright as the last one that read the
# way it was has not switched: a colour picture darkened several times loses its weak colours to
# the codec (train footage: a pale building at x0.1 read 2.6 -> 0.0), a grey one crushed by a
# gamma takes the decoder's tint to black in its shadows only; either restarted every baseline
# at an underexposure's onset, which was then learned as normal. A camera switches to IR as the
# light fails, and its illuminator keeps the picture lit.
SWITCH_MIN_LUMA_RATIO = 0.5


def out_of_black(luma: float, darkest: float) -> bool:
    """A picture of mean ``luma`` has come up out of black after a flat one of ``darkest``."""
    return luma >= FADE_IN_RATIO * darkest + FADE_IN_LEVELS


# After another check's picture-altering fault, the encoder takes a moment to settle back to the
# stream's normal picture. Train footage: a board close-up at CRF 30 read noise sigma 0.51 before
# a defocus and 1.47 (2.9x) for the 1.5 s after it until the shot changed; an apple after 7 s of
# sigma-34 noise at CRF 28 read 0.68-0.87 of its sharpness for 1.5 s. SETTLE_S after a fault...
SETTLE_S = 3.0
# ...flagged for this long without a break: a single sample flagged (a patrol softening for a
# moment read as a mild defocus) changed nothing for the encoder, and settling after it held back
# a noise fault starting a second later (train study set: raised 2.5 s late).
SETTLE_SPELL_S = 1.0


class Settling:
    """Whether a stream's picture is settling after another check's fault that altered it (see
    SETTLE_S): a check then judges only what that cannot explain."""

    def __init__(self, own: str) -> None:
        self._own = own
        self._altered_at: float | None = None  # when another fault last altered the picture
        self._spell_from: float | None = None  # since when another fault has been flagged without a break

    def update(self, view: FrameView) -> bool:
        t = view.frame.stream_time
        if view.faults - {self._own}:
            self._spell_from = t if self._spell_from is None else self._spell_from
            if t - self._spell_from >= SETTLE_SPELL_S:
                self._altered_at = t
        else:
            self._spell_from = None
        return self._altered_at is not None and 0.0 <= t - self._altered_at < SETTLE_S


class CheckConfig(BaseModel):
    """Keys every check has; a check's own Config subclasses this and adds its thresholds."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    enabled: bool = True
    raise_after_s: float = Field(2.0, ge=0, description="condition must hold this long before a raise")
    clear_after_s: float = Field(5.0, ge=0, description="condition must be absent this long before a clear")


class BaselineCheckConfig(CheckConfig):
    """For checks that judge a frame against what is normal for the stream (see baseline.py)."""

    baseline_tau_s: float = Field(60.0, gt=0, description="time constant of the stream's baseline")
    warmup_s: float = Field(
        1.0, ge=0, description="stream time (after a start or a cut) before the baseline is trusted"
    )
    warmup_steady: float | None = Field(
        None,
        gt=0,
        description="...and only from a steady picture: a sample this far (relative) from the warm-up's median "
        "starts it again. None: any picture",
    )
    min_layout_correlation: float = Field(
        0.8,
        ge=-1,
        le=1,
        description="consecutive samples whose layouts correlate less than this are a cut (a camera switch, "
        "new content): the baseline is learned anew; a moving camera keeps its layout from sample to sample",
    )
    # A gain or gamma step clips or crushes much of a picture at once, which shuffles the ranks of
    # its near-white or near-black cells: where the two pictures still tell cells apart, their
    # order is the same scene's. On cell medians per channel (see Tones), train's exposure steps
    # read 0.87 (median; 11 of 20 reach 0.75, 3 have too few clear pairs); of 952 suspected cuts
    # in clean train footage 51 reach it, mostly pans and fades of one scene.
    min_tone_concordance: float | None = Field(
        0.75,
        ge=-1,
        le=1,
        description="...unless their cells keep their order at least this well where both pictures tell them "
        "apart (see Layout.concordance): the same scene re-toned, not a cut. None: not used",
    )
    min_cut_change: float = Field(
        0.06,
        ge=0,
        description="...and whose coarse picture (16x9 cell means, each picture divided by its mean brightness) "
        "changed by at least this on average: a pan over fine, even texture (brick, gravel, foliage) reorders the "
        "cells by a few percent only",
    )


@dataclass(slots=True)
class CheckResult:
    active: bool
    severity: Severity = "warning"
    measurements: dict[str, Any] = field(default_factory=dict)


class AnyCheck(ABC):
    """What picture and audio checks share: a fault name, a config model, one instance per
    stream (so a check may keep per-stream state: baselines, the last frame, a loudness window)."""

    name: ClassVar[str]
    Config: ClassVar[type[CheckConfig]] = CheckConfig
    domain: ClassVar[Literal["picture", "audio"]]

    @classmethod
    def build(cls, config: CheckConfig, iqa_scorer: IqaScorer) -> AnyCheck:
        """The check for one stream, given what the pipeline shares between streams (the
        BRISQUE/NIQE scorer, its model loaded once); most checks need only their config."""
        return cls(config)

    def __init__(self, config: CheckConfig) -> None:
        self.config = config

    def rebaseline(self) -> None:  # noqa: B027  (most checks keep no reference an operator could reset)
        """Forget the stream's learned normal and learn it from what comes next (`vqmon rebaseline`)."""


class Check(AnyCheck):
    """A picture check: judges each sampled frame."""

    domain = "picture"
    # Whether its fault changes what the other checks measure (brightness, detail, noise): while
    # it is flagged, no baseline check learns the picture as the stream's normal. A blur or a
    # pixelation spell learned by the noise baseline made the clean picture after it read as
    # noise; the checks whose fault leaves the picture as it was (a freeze, decode errors, a
    # moved camera, whose new view is the new normal) say no.
    alters_picture: ClassVar[bool] = False

    @abstractmethod
    def evaluate(self, view: FrameView) -> CheckResult: ...


class BaselineCheck(Check):
    """A check that compares each frame with one running value of what is normal for the stream."""

    config: BaselineCheckConfig
    # Whether a picture gone flat while off the baseline the fault's way may start a flag: a
    # flat picture shows no scene to tell a cut from a fault by, so only a check whose fault
    # itself flattens the picture (a white-out) says yes.
    flat_is_symptom: ClassVar[bool] = False
    # Whether a flag just begun carries across a cut while the new picture is still off the old
    # baseline the fault's way. A darkening just begun then a cut is a fade to black and a cut to
    # a dark scene; a focus check's fault does not end at a cut (the lens is as soft on the next
    # shot), and a cut right after a defocus's first sample had the new scene learned blurred.
    fault_outlasts_cut: ClassVar[bool] = False

    def __init__(self, config: BaselineCheckConfig) -> None:
        super().__init__(config)
        self._baseline = self.new_baseline()
        self._previous = Layout()
        self._flagging = False
        self._flagged_since = 0.0
        self._cut_at: float | None = None  # a cut seen since the baseline was learned
        self._before_cut: Layout | None = None  # the picture just before it
        self._darkest_flat: float | None = None  # mean luma of the darkest flat picture in a row of them
        self._mono: bool | None = None  # the picture is monochrome (see MONO_SPREAD); None: not known yet
        self._mono_luma = 0.0  # the mean luma of the last picture that read as _mono says

    def new_baseline(self) -> Baseline:
        return Baseline(self.config.baseline_tau_s, self.config.warmup_s, self.config.warmup_steady)

    def new_scene(self) -> None:
        """New content after a cut: what is normal is learned afresh (a check that keeps more than
        one running value of the scene renews the others here too)."""
        self._baseline = self.new_baseline()
        self._mono = None  # a dark new scene's colour is not judged against the old one's brightness

    def track_layout(self, view: FrameView) -> float | None:
        """Compare this sample's layout with the previous one's and note a cut (every sample with
        a layout, or the scene after a gap is compared with a stale one)."""
        corr = self._previous.correlation(view.thumbnail, view.layouts)
        c = self.config
        cut = (
            corr is not None
            and corr < c.min_layout_correlation
            and self._previous.change(view.thumbnail) >= c.min_cut_change
            and not self._previous.moved(view.gray_registration, view.layouts)
            and not self._retoned(view)
        )
        if cut and self._cut_at is None:
            self._cut_at = view.frame.stream_time
            self._before_cut = self._previous.copy()
        elif self._cut_at is not None and self._before_cut is not None:
            # The picture from before the cut is back: one sample's layout was disturbed (a burst
            # of noise, a flash), the scene never changed. Back in its coarse picture too, not
            # only in the order of its cells (see BACK_CHANGE).
            back = self._before_cut.correlation(view.thumbnail, view.layouts)
            if (
                back is not None
                and back >= self.config.min_layout_correlation
                and self._before_cut.change(view.thumbnail) < BACK_CHANGE
            ):
                self._cut_at = self._before_cut = None
        self._previous.learn(view.thumbnail, view.tones, view.gray_registration)
        return corr

    def _switched_colour(self, view: FrameView) -> bool:
        """The picture went from colour to monochrome or back since the last sample with a layout."""
        spread = view.colour_spread
        luma = view.mean_luma
        if spread is None:
            return False  # too dark (or too bright) to tell
        if MONO_SPREAD < spread < COLOUR_SPREAD:
            return False  # neither: it stays what it was
        mono = spread <= MONO_SPREAD
        switched = self._mono is not None and mono != self._mono
        if switched and luma < SWITCH_MIN_LUMA_RATIO * self._mono_luma:
            return False
        self._mono, self._mono_luma = mono, luma
        return switched

    def _retoned(self, view: FrameView) -> bool:
        """The same scene with its tones changed (brighter, darker, clipped): its cells kept
        their order wherever both pictures still tell them apart."""
        least = self.config.min_tone_concordance
        if least is None:
            return False
        concordance = self._previous.concordance(view.tones, view.layouts, enough=least)
        return concordance is not None and concordance >= least

    def unmeasured(self, view: FrameView) -> bool:
        """A sample the check has no value for (a slate with too little contrast to judge focus
        on): nothing new is flagged, and its layout is still the one the next sample is compared
        with. A flag already up stays on the same scene (no cut): the value may be gone as the
        fault's own symptom (a defocus takes the contrast focus is judged by). Returns whether a
        flag stays."""
        held = self._flagging
        if has_layout(view.thumbnail):
            self.track_layout(view)
            held = held and self._cut_at is None
        self._flagging = held
        return held

    def judge(
        self,
        view: FrameView,
        value: float,
        suspect: bool,
        doubtful: bool = False,
        baseline: Baseline | None = None,
        also: Sequence[tuple[Baseline, float]] = (),
    ) -> tuple[bool, float | None]:
        """Decide a frame whose ``value`` is ``suspect`` (off the baseline the fault's way), and
        learn from it if it is not flagged. Returns (flagged, layout correlation with the
        previous sample).

        - the same scene, off its baseline: flagged; a fault flagged for longer than it takes to
          raise stays flagged across a cut (the picture is still as dark / noisy as before),
          one flagged only moments ago does not (a fade to black then a cut to a dark scene);
        - after a cut (the layout jumped between two samples; a pan or a patrol moves it only a
          little from one sample to the next): new content, learned from scratch with a
          warm-up; if it is off the old baseline, after a moment's wait (the encoder may have
          blended a fault's first frame);
        - the same scene, normal: learned slowly, unless ``doubtful`` (on the way to a fault:
          a gradual defocus must not drag the baseline down with it), or another check flagged
          a fault that alters the picture on the previous sample (``view.faults``).

        ``baseline``: the running value this frame is learned into, when the check keeps more
        than one (noise keeps one for key frames); the check's own by default. ``also``: more
        (running value, value) pairs learned from this frame when it is learned (blur reads
        sharpness at two scales).
        """
        t = view.frame.stream_time
        if not has_layout(view.thumbnail):
            # A flat picture (black, a card, the bottom of a fade, a featureless scene) shows no
            # scene to compare or to learn: a flagged fault stays flagged, nothing new starts...
            luma = view.mean_luma
            self._darkest_flat = luma if self._darkest_flat is None else min(self._darkest_flat, luma)
            if out_of_black(luma, self._darkest_flat):
                # ...unless the picture comes up out of black again: a fade-in, and an edit that
                # fades through black cuts at the bottom. What was flagged was the old picture's.
                if self._cut_at is None:
                    self._cut_at, self._before_cut = t, None
                self._flagging = False
                return False, None
            # ...unless flatness is the fault's own symptom (a scene washed out to a flat white).
            if suspect and self.flat_is_symptom and not self._flagging and self._cut_at is None:
                self._flagging, self._flagged_since = True, t
            self._flagging = suspect and self._flagging
            return self._flagging, None
        self._darkest_flat = None
        corr = self.track_layout(view)
        if self._switched_colour(view) and self._cut_at is None:
            # A day/night switch (colour to IR or back): the same scene, another picture of it
            # (its noise, its sharpness, its brightness), learned anew as at a cut. Its layout
            # stays, so nothing can take it back as a disturbed sample.
            self._cut_at, self._before_cut = t, None
        established = self._flagging and (
            t - self._flagged_since >= self.config.raise_after_s or self.fault_outlasts_cut
        )
        if suspect and (self._cut_at is None or established):
            self._cut_at = self._before_cut = None
            if not self._flagging:
                self._flagged_since = t
            self._flagging = True
            return True, corr
        self._flagging = False
        if self._cut_at is not None:
            if suspect and t - self._cut_at < HOLD_S:
                return False, corr
            self.new_scene()
            self._cut_at = self._before_cut = None
        elif doubtful:
            return False, corr
        if view.faults - {self.name}:
            return False, corr  # another fault has altered the picture: it is not the stream's normal
        (baseline or self._baseline).update(value, t)
        for other, x in also:
            other.update(x, t)
        return False, corr
