"""What every picture check is: a name (the fault it reports), a config model, and evaluate()."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.checks.baseline import Baseline, Layout, has_layout
from monitor.checks.view import FrameView

Severity = Literal["warning", "critical"]
HOLD_S = 0.5  # how long a baseline check waits before taking an abrupt, off-baseline change as new content


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
    layout_tau_s: float = Field(
        1.0, gt=0, description="the scene's layout follows camera motion with this time constant"
    )
    min_layout_correlation: float = Field(
        0.6,
        ge=-1,
        le=1,
        description="the picture is the baseline's scene while its layout correlates this well; "
        "below, it is new content (a cut, a camera switch, a pan) and the baseline is learned anew",
    )


@dataclass(slots=True)
class CheckResult:
    active: bool
    severity: Severity = "warning"
    measurements: dict[str, Any] = field(default_factory=dict)


class Check(ABC):
    """One instance per stream, so a check may keep per-stream state (baselines, last frame)."""

    name: ClassVar[str]
    Config: ClassVar[type[CheckConfig]] = CheckConfig

    def __init__(self, config: CheckConfig) -> None:
        self.config = config

    @abstractmethod
    def evaluate(self, view: FrameView) -> CheckResult: ...


class BaselineCheck(Check):
    """A check that compares each frame with one running value of what is normal for the stream."""

    config: BaselineCheckConfig

    def __init__(self, config: BaselineCheckConfig) -> None:
        super().__init__(config)
        self._baseline = self.new_baseline()
        self._layout = Layout(config.layout_tau_s)
        self._flagging = False
        self._flagged_since = 0.0
        self._held_since: float | None = None

    def new_baseline(self) -> Baseline:
        return Baseline(self.config.baseline_tau_s, self.config.warmup_s)

    def same_scene(self, view: FrameView) -> tuple[bool, float | None]:
        """(is this the scene the baseline was learned on, the layout correlation)."""
        corr = self._layout.correlation(view.thumbnail)
        return corr is None or corr >= self.config.min_layout_correlation, corr

    def judge(self, view: FrameView, value: float, suspect: bool, doubtful: bool = False) -> tuple[bool, float | None]:
        """Decide a frame whose ``value`` is ``suspect`` (off the baseline the fault's way), and
        learn from it if it is not flagged. Returns (flagged, layout correlation).

        - the same scene, off its baseline: flagged; a fault flagged for longer than it takes to
          raise stays flagged across a cut (the picture is still as dark / noisy as before),
          one flagged only moments ago does not (a fade to black then a cut to a dark scene);
        - new content (a cut, a camera switch; the layout follows slow camera motion, so a pan
          is not new content): learned from scratch, with a warm-up;
        - the same scene, normal: learned slowly, unless ``doubtful`` (on the way to a fault:
          a gradual defocus must not drag the baseline down with it).
        """
        t = view.frame.stream_time
        if not has_layout(view.thumbnail):
            # A flat picture (black, a card, the bottom of a fade, a featureless scene) shows no
            # scene to compare or to learn: a flagged fault stays flagged, nothing new starts.
            self._flagging = suspect and self._flagging
            return self._flagging, None
        same, corr = self.same_scene(view)
        established = self._flagging and t - self._flagged_since >= self.config.raise_after_s
        if suspect and (same or established):
            # The fault leaves the layout as it is, so it keeps following the camera's motion.
            self._layout.learn(view.thumbnail, t, reset=not same)
            if not self._flagging:
                self._flagged_since = t
            self._flagging = True
            return True, corr
        self._flagging = False
        if not same and suspect:
            # Off the baseline and unlike the scene: a cut to new content, or a fault whose first
            # frame the encoder blended. Wait a moment before deciding which.
            if self._held_since is None:
                self._held_since = t
            if t - self._held_since < HOLD_S:
                return False, corr
        self._held_since = None
        if same and doubtful:
            return False, corr
        if not same:
            self._baseline = self.new_baseline()
        self._baseline.update(value, t)
        self._layout.learn(view.thumbnail, t, reset=not same)
        return False, corr
