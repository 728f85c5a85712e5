"""blur: the picture lost sharpness compared with what is normal for this stream.

Sharpness is how fine the detail is: per block, the Laplacian's energy over the gradient's,
which goes as 1 / edge width^2 and is blind to exposure and to how much of the block the edges
fill; and its geometric mean over the blocks that have some contrast (see `sharpness`). It is
read at two scales, and the picture is judged by the one that fell further against its own
baseline: at the analysis width on the denoised copy, where a mild defocus of a sharp picture
shows first, and at half that, where the sensor's noise and the codec's grain (which stay when
the lens defocuses, and on soft footage are most of the finest detail) are averaged away.
The baselines are learned from frames not flagged, and not while the picture is on its way down
(a gradual defocus would otherwise drag them with it). Naturally soft content has a low
baseline, so only a drop relative to it counts. New content (a cut, a camera switch) is not a
defocus: when the picture's layout jumps between two samples, the baselines are learned anew
(see BaselineCheck.judge).

A mild defocus (a quarter of the sharpness gone) is told from softer content by the view: the
coarse picture is still the one the camera showed when it was last at its normal sharpness.
A zoom into the scene, a pan onto softer content or a crowd walking up to the camera also
soften the picture, and they change the view as they do it.

A defocus right after a pan onto sharper content can land at the slow baseline; it is told by
a step down from the picture's recent sharpness (the last 2 s learned) on a view that has not
changed, and then holds against that while the camera moves on. While the camera moves, the step
is read on the part of the scene the picture shares with the one of 0.6 s before (registered),
so a pan onto softer content, which shows other content, is no step.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from monitor.checks.base import BaselineCheck, BaselineCheckConfig, CheckResult, Settling, Severity
from monitor.checks.baseline import MOVED_RESPONSE, MOVED_SHIFT, overlap, pearson, registration, shifted_within
from monitor.checks.focus import sharpness
from monitor.checks.registry import register
from monitor.checks.view import FrameView


class BlurConfig(BaselineCheckConfig):
    raise_after_s: float = Field(1.5, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    max_ratio: float = Field(0.6, gt=0, lt=1, description="blurred when sharpness < this x the stream's baseline")
    hold_ratio: float = Field(
        0.72, gt=0, lt=1, description="once blurred, stays blurred until sharpness is back above this x baseline"
    )
    doubt_ratio: float = Field(0.82, gt=0, lt=1, description="below this x baseline the baseline stops learning")
    still_max_ratio: float = Field(
        0.8,
        gt=0,
        lt=1,
        description="...or below this x baseline while the view is the one last seen at normal sharpness "
        "(on train_soak, 1 h of clean train footage, clean still views stayed above 0.88 for any 1.5 s)",
    )
    still_hold_ratio: float = Field(0.87, gt=0, lt=1, description="...and then stays blurred until above this")
    still_correlation: float = Field(
        0.95,
        ge=-1,
        le=1,
        description="the view is unchanged when its 16x9 thumbnail correlates at least this with the reference",
    )
    critical_ratio: float = Field(0.28, gt=0, lt=1, description="critical below this x baseline")
    min_baseline: float = Field(
        6.0,
        ge=0,
        description="streams whose normal sharpness (at the analysis width) is below this (a clear sky) are not judged",
    )
    baseline_tau_s: float = Field(30.0, gt=0)
    # The bottom of a fade reads sharp (the codec's grain on a dark picture: 30 against the
    # scene's 15 in the train soak), and an exposure change there starts the baseline anew: the
    # picture brightening again is no steady picture to learn the scene's normal from.
    warmup_steady: float | None = Field(0.35, gt=0)


# Sharpness is read at two scales and the picture is judged by the one that fell further. At
# the analysis width (480), on the 3x3 median. And 240 px wide (see FrameView.gray_coarse), in
# blocks of 12 px, the same part of the picture: there the sensor's noise and the codec's grain,
# which stay when the lens defocuses, are averaged down. On shaking soft footage (train study
# sets) lens and OSD blurs read 0.77-0.82 of the baseline at 480 and 0.62-0.72 at 240; with noise
# of sigma 1.5 added to every frame, 0.89-1.00 (at 480, on the measure before) against 0.71-0.83.
# On sharp footage, a mild blur (a disc of 1 px at 240) reads lower at 480: 0.55 against 0.65 on a
# pan over a street.
COARSE_BLOCK = 12

MAX_LEARN_STEP = 1.25  # the most a sample counts above the baseline when it is learned

# The view a mild softening is compared with is the last one seen at about normal sharpness.
REFERENCE_RATIO = 0.9
# A picture is measured when a quarter of its blocks have contrast: on fewer, a sparse scene's
# sharpness swings as things come and go (a slow zoom on a dark shot in train footage, 17-24 %
# of blocks, went from 78 to 30 and back). A picture already measured keeps being measured down
# to a tenth while its view stays the one last seen sharp: a defocus itself takes the contrast
# out of blocks (36 % to 24 % on a dark street in a study set), and must not hide that way.
MIN_CONTRAST_SHARE, KEEP_CONTRAST_SHARE = 0.25, 0.1
# A picture that could not be measured for this long (too little contrast) is learned anew when
# it can be again: the scene came back as another picture. On train footage a pan off a dark
# corner of a notebook (its first samples measured, then 1.4 s unmeasured) came back brighter and
# half as sharp, and the baseline from the dark corner raised a false blur on the clean picture.
UNMEASURED_RESET_S = 1.0
# A sparse picture is also measured down to a tenth while the camera stands still (registered
# against the previous sample at a shift under STILL_SHIFT_PX at FrameView.gray_registration's
# width, with a response of at least STILL_RESPONSE): a smooth apple on a plain table (15 % of
# blocks) is then a scene like any other, its blocks the same ones from sample to sample. On
# train footage a still camera's consecutive samples register at 0-0.3 px with responses of
# 0.43-0.92 (people walking through); a zoom scales the picture, and a pan shifts it. So is one
# that registers within the cut rule's bounds for the same scene moved (baseline.MOVED_RESPONSE
# at a shift of at most MOVED_SHIFT; not its lined-up correlation): a rocket on a plain sky
# (13-17 % of blocks) on a camera moving 1.5-3.5 % between samples (train footage, responses
# 0.57-1.0) read 64-71 from sample to sample, as steady as a dense scene, and 24-30 under a
# defocus that was never judged before.
STILL_SHIFT_PX, STILL_RESPONSE = 0.5, 0.3
# A defocus while the camera moves (a pan, a patrol, shake) changes the view, so the step down
# above is not judged on it; the same part of the scene is: the picture learned STEP_LAG_S before,
# registered against this one (a shift of at most STEP_SHIFT of the picture), and the sharpness of
# the part both show compared (at 240 px wide). A step under STEP_MAX (a third of the detail gone
# within 0.6 s) starts a flag, held against the recent sharpness as above. On train footage the
# onsets of lens and OSD defocuses on moving cameras read 0.28-0.66 (0.63 on a pan over the
# astronaut, missed before). Clean moving footage: whip pans and fast motion read down to 0.21,
# and are sharp again within a second; content that softens of itself for longer (an animated
# film's own soft shots, train_soak) 0.76-0.82, and raised blur five times at 0.8.
STEP_LAG_S, STEP_SHIFT, STEP_MAX = 0.6, 0.25, 0.7


# The same scene this many times brighter or darker than when it was last seen at normal
# sharpness is at another exposure (a gain or an underexposure, not a lamp flicker or an
# auto-exposure hunt, which stay within 1.3x); luma under the floor counts as the floor.
# Before a picture is seen at normal sharpness after a restart, the scene's first sample's
# brightness stands for it: a deep underexposure restarts the baselines on its first dark sample,
# and the light coming back must restart them again (train footage: a warm-up that began dark and
# ended on the returning light read the normal picture 0.8x and raised blur).
RELIT_RATIO, RELIT_FLOOR = 1.8, 16.0

# The picture's recent sharpness: the median of the samples learned in the last RECENT_S. The
# baseline follows a pan onto sharper content slowly (by design: noise must not teach it), so a
# defocus right after one can land at the baseline; against the picture of a moment before, on
# a view that has not changed, it is still a step down (train footage: an OSD defocus after a
# pan read 1.0x the baseline and 0.72-0.77x the seconds before it).
RECENT_S, RECENT_MIN_SAMPLES = 2.0, 3
# ...learned only from samples at most this x the baseline: a pixelation's block edges (2-2.6x on
# train footage) or a burst of noise is no picture to judge a defocus against, and a sample of
# either can slip past the flags (the first of a spell, a flicker in one); a pan onto sharper
# content read 1.33x.
RECENT_MAX_RATIO = 1.6


def relit(luma: float, lit: float) -> bool:
    a, b = max(luma, RELIT_FLOOR), max(lit, RELIT_FLOOR)
    return max(a / b, b / a) >= RELIT_RATIO


@register
class BlurCheck(BaselineCheck):
    name = "blur"
    alters_picture = True
    Config = BlurConfig
    config: BlurConfig
    fault_outlasts_cut = True

    def __init__(self, config: BlurConfig) -> None:
        super().__init__(config)
        self._fine = self.new_baseline()  # of the sharpness at the analysis width; _baseline: at 240
        self._settling = Settling(self.name)
        self._reference: np.ndarray | None = None  # the thumbnail last seen at normal sharpness
        self._measured = False  # the last sample was measured
        # mean luma of the picture last seen at normal sharpness (before one is, of the scene's
        # first sample measured: see RELIT_RATIO)
        self._lit: float | None = None
        # (stream time, coarse sharpness, fine sharpness, FrameView.gray_registration,
        # FrameView.gray_coarse) of the samples learned lately
        self._recent: list[tuple[float, float, float, np.ndarray, np.ndarray]] = []
        self._last_gray: np.ndarray | None = None  # the previous sample's FrameView.gray_registration
        self._unmeasured_since: float | None = None  # since when no sample could be measured

    def new_scene(self) -> None:
        super().new_scene()
        self._fine = self.new_baseline()
        self._reference, self._lit = None, None
        self._recent = []

    def _recent_sharpness(self, t: float) -> tuple[float, float] | None:
        """The median sharpness (coarse, fine) over RECENT_S up to the last sample learned: held
        while nothing is learned (a defocus is judged against the picture before it however long
        it lasts), forgotten once it is as old as the baseline's time constant."""
        if not self._recent or t - self._recent[-1][0] > self.config.baseline_tau_s:
            self._recent = []
            return None
        newest = self._recent[-1][0]
        self._recent = [r for r in self._recent if newest - r[0] <= RECENT_S]
        if len(self._recent) < RECENT_MIN_SAMPLES:
            return None
        return float(np.median([r[1] for r in self._recent])), float(np.median([r[2] for r in self._recent]))

    @staticmethod
    def _same_blocks(gray: np.ndarray, last: np.ndarray) -> bool:
        """The camera stood still or moved only a little since the last sample (see STILL_SHIFT_PX)."""
        r = registration(gray, last)
        if r is None:
            return False
        dx, dy, response = r
        if abs(dx) < STILL_SHIFT_PX and abs(dy) < STILL_SHIFT_PX and response >= STILL_RESPONSE:
            return True
        return shifted_within(dx, dy, gray.shape, MOVED_SHIFT) and response >= MOVED_RESPONSE

    def _step_on_the_same_part(self, view: FrameView, share: float) -> float | None:
        """The sharpness (at 240) of the part of the scene this sample shares with the one learned
        STEP_LAG_S before, over that one's; None when there is none to compare with."""
        t = view.frame.stream_time
        earlier = [r for r in self._recent if t - RECENT_S <= r[0] <= t - STEP_LAG_S]
        if not earlier:
            return None
        gray, coarse = earlier[-1][3:]
        r = registration(view.gray_registration, gray)
        if r is None or coarse.shape != view.gray_coarse.shape:
            return None
        if not shifted_within(r[0], r[1], gray.shape, STEP_SHIFT):
            return None
        k = coarse.shape[1] / gray.shape[1]  # registration pixels to coarse pixels
        here, there = overlap(view.gray_coarse, coarse, round(r[0] * k), round(r[1] * k))
        now = sharpness(here, block=COARSE_BLOCK, min_share=share)
        before = sharpness(there, block=COARSE_BLOCK, min_share=share)
        return None if now is None or before is None else now / max(before, 1.0)

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        if self._lit is not None and relit(view.mean_luma, self._lit):
            # Another exposure shows the scene's texture in other blocks (a dark scene's fabric
            # only has contrast once gained up): its sharpness is not comparable, learn it anew.
            self.new_scene()
        still = None if self._reference is None else pearson(view.thumbnail, self._reference)
        keep = self._measured and still is not None and still >= c.still_correlation
        share = KEEP_CONTRAST_SHARE if keep else MIN_CONTRAST_SHARE
        coarse = sharpness(view.gray_coarse, block=COARSE_BLOCK, min_share=share)
        last, self._last_gray = self._last_gray, view.gray_registration
        if coarse is None and not keep and last is not None and self._same_blocks(view.gray_registration, last):
            share = KEEP_CONTRAST_SHARE
            coarse = sharpness(view.gray_coarse, block=COARSE_BLOCK, min_share=share)
        fine = sharpness(view.gray_median, min_share=share) if coarse is not None else None
        self._measured = coarse is not None and fine is not None
        t = view.frame.stream_time
        if coarse is None or fine is None:  # nothing to judge focus on (a slate, deep darkness)
            # ...or a defocus that took the contrast out of a sparse scene's last blocks: a flag
            # on the same scene stays (train footage: a rocket on a plain sky, defocused), and
            # the scene, never left, is not learned anew when it can be measured again.
            held = self.unmeasured(view)
            if not held and self._unmeasured_since is None:
                self._unmeasured_since = t
            return CheckResult(active=held)
        if self._unmeasured_since is not None and t - self._unmeasured_since >= UNMEASURED_RESET_S:
            self.new_scene()
        self._unmeasured_since = None
        if self._lit is None:
            self._lit = view.mean_luma
        base = self._baseline.value if self._baseline.ready else None
        base_fine = self._fine.value if self._fine.ready else None
        ratios = (self._baseline.ratio(coarse, floor=1.0), self._fine.ratio(fine, floor=1.0))
        ratio = None if ratios[0] is None or ratios[1] is None else min(ratios[0], ratios[1])
        # The ratio the picture is judged by; None on a stream too soft to judge (or not yet).
        judged = ratio if base_fine is not None and base_fine >= c.min_baseline else None
        mild = c.still_hold_ratio if self._flagging else c.still_max_ratio
        recent = self._recent_sharpness(t)
        # Just after another fault (heavy noise) the encoder's picture is softer for a moment:
        # only a picture well under its baseline starts a flag then, not a mild softening.
        settled = not self._settling.update(view) or self._flagging
        still_view = settled and still is not None and still >= c.still_correlation
        # Once seen on a still view, a step down holds while the camera moves on: the recent
        # sharpness is not learned while flagged, and stays the picture's before the defocus.
        below_recent = recent is not None and min(coarse / max(recent[0], 1.0), fine / max(recent[1], 1.0)) < mild
        stepped = below_recent and (still_view or self._flagging)
        if below_recent and not stepped:  # the camera moved: compare the part of the scene still in view
            step = self._step_on_the_same_part(view, share)
            stepped = step is not None and step < STEP_MAX

        # Learn upward only gradually: noise inflates the Laplacian several times over, and a noisy
        # spell must not make the clean picture after it look blurred (at 2x, 8 s of colour noise
        # lifted a baseline by 40 % and the clean picture read 0.72).
        def learned(x: float, b: float | None) -> float:
            return x if b is None else min(x, MAX_LEARN_STEP * b)

        active, corr = self.judge(
            view,
            learned(coarse, base),
            # Hysteresis: a defocus hovering around the threshold is one episode, not several.
            suspect=judged is not None
            and (
                judged < (c.hold_ratio if self._flagging else c.max_ratio) or (still_view and judged < mild) or stepped
            ),
            doubtful=judged is not None and judged < c.doubt_ratio,
            also=((self._fine, learned(fine, base_fine)),),
        )
        if (
            not active
            and not view.faults
            and judged is not None
            and judged >= c.doubt_ratio
            and max(r for r in ratios if r is not None) <= RECENT_MAX_RATIO
        ):
            self._recent.append((t, coarse, fine, view.gray_registration, view.gray_coarse))
        if ratio is not None and ratio >= REFERENCE_RATIO and not active:
            self._reference, self._lit = view.thumbnail, view.mean_luma
        m = {"sharpness": round(coarse, 1), "sharpness_fine": round(fine, 1)}
        if base is not None and base_fine is not None:
            m["baseline"], m["baseline_fine"] = round(base, 1), round(base_fine, 1)
        if ratio is not None:
            m["ratio"] = round(ratio, 3)
        if corr is not None:
            m["layout_correlation"] = round(corr, 2)
        if still is not None:
            m["view_correlation"] = round(still, 3)
        severity: Severity = "critical" if ratio is not None and ratio < c.critical_ratio else "warning"
        return CheckResult(active=active, severity=severity, measurements=m)
