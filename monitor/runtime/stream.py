"""One stream's analysis: its checks on each sampled frame, its alerts (one root-cause rule for
the checks and the CLIP score), its evidence and its stream_down watchdog."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.alerts import AlertEvent, AlertPolicy, StreamAlerts, Timing
from monitor.alerts.snapshots import SnapshotStore
from monitor.capture import CaptureStats, source_label
from monitor.checks import Check, FrameView, all_checks
from monitor.checks.audio_base import AudioCheck, blocks
from monitor.checks.base import AnyCheck, CheckResult
from monitor.clock import Interval
from monitor.config import IqaConfig, ScoringConfig, StreamSettings
from monitor.faults import CLIP_QUALITY, STREAM_DOWN
from monitor.frames import AudioChunk, Frame
from monitor.iqa.scorer import IqaScorer
from monitor.runtime.daynight import DayNight
from monitor.scoring.prompts import OVERALL
from monitor.scoring.worker import ScoreResult

log = logging.getLogger(__name__)

# A fault that alters the picture and stands this long is the picture the stream now has: the
# baseline checks learn it again, so a camera that stays blocky or noisy leaves blur and the
# exposure checks judging against it rather than blind.
STANDING_FAULT_S = 60.0


@dataclass
class StreamSpec:
    name: str
    url: str
    settings: StreamSettings

    @property
    def source(self) -> str:
        return source_label(self.url)


class StreamAnalyzer:
    """Runs the enabled checks on each sampled frame of one stream and tracks its alerts."""

    def __init__(
        self,
        spec: StreamSpec,
        snapshots: SnapshotStore | None = None,
        iqa: IqaConfig | None = None,
        scoring: ScoringConfig | None = None,
        escalate: Callable[[AlertEvent, Frame], None] | None = None,
        iqa_scorer: IqaScorer | None = None,
    ) -> None:
        """``scoring``: this stream's CLIP scoring settings when a scorer runs and the stream
        takes part; ``escalate``: hands a raise and its frame to the VLM escalation; ``iqa_scorer``:
        the BRISQUE/NIQE scorer shared by all streams (a default one if not given)."""
        self.spec = spec
        self.iqa = iqa
        self.iqa_scorer = iqa_scorer if iqa_scorer is not None else IqaScorer()
        self.latest_quality: dict[str, Any] = {}
        self.escalate = escalate
        self.scoring = scoring
        self.score_interval = Interval(scoring.every_s) if scoring is not None else None
        self._report_interval = (
            Interval(iqa.report_every_s, first_due_at_start=False) if iqa is not None and iqa.report_every_s else None
        )
        a = spec.settings.alerts
        self.alerts = StreamAlerts(spec.name, spec.source, AlertPolicy(a.cooldown_s, a.max_raises_per_minute))
        self.root_causes = tuple(a.root_causes)
        self._root_rank = {f: i for i, f in enumerate(self.root_causes)}
        self._observed_roots: set[str] = set()  # root causes seen on the latest checked frame
        self.snapshots = snapshots
        day = self._build(spec.settings)
        self.audio_checks = [c for c in day if isinstance(c, AudioCheck)]
        self.day_checks = [c for c in day if isinstance(c, Check)]
        # At night (schedule.night) the night profile's picture checks judge, with their own state.
        night = spec.settings.night_settings()
        self.night_checks = [c for c in self._build(night) if isinstance(c, Check)] if night is not None else None
        self.daynight = DayNight(spec.settings.schedule.night) if spec.settings.schedule.night is not None else None
        self.checks: list[Check] = self.day_checks
        self._domain = {name: cls.domain for name, cls in all_checks().items()}
        self.frames_checked = 0
        self.audio_seconds = 0.0  # sound judged (gaps without sound included)
        self._masks = [m.points() for m in spec.settings.masks]
        # Since when each fault that alters the picture (see Check.alters_picture) has been flagged.
        self._altered_since: dict[str, float] = {}

    def _build(self, settings: StreamSettings) -> list[AnyCheck]:
        out = []
        for name, cls in all_checks().items():
            cfg = getattr(settings.checks, name)
            if cfg.enabled:
                out.append(cls.build(cfg, self.iqa_scorer))
        return out

    @property
    def period(self) -> str:
        return "night" if self.daynight is not None and self.daynight.night else "day"

    def _follow_daynight(self, view: FrameView) -> None:
        """Switch the picture checks between the day and the night sets (schedule.night)."""
        if self.daynight is None or self.night_checks is None:
            return
        f = view.frame
        was = self.daynight.night
        night = self.daynight.update(f.wall_time, f.stream_time, view.mean_luma)
        if night != was:
            self.checks = self.night_checks if night else self.day_checks
            log.info("%s: %s checks from stream time %.1fs", self.spec.name, self.period, f.stream_time)

    def rebaseline(self) -> None:
        """An operator accepts what the stream shows now as its normal: every check that keeps
        a reference of the stream (the moved check's view) learns it afresh."""
        for check in self.day_checks + (self.night_checks or []):
            check.rebaseline()

    def mute_until(self, wall_time: float) -> None:
        """A maintenance window: no new alert before ``wall_time`` (a past time lifts it)."""
        self.alerts.muted_until = wall_time

    def process(self, frame: Frame) -> list[AlertEvent]:
        t = frame.stream_time
        altered = frozenset(f for f, since in self._altered_since.items() if t - since < STANDING_FAULT_S)
        view = FrameView(frame, self._masks, altered)
        self._follow_daynight(view)
        results = [(check, check.evaluate(view)) for check in self.checks]
        flagged = [c.name for c, r in results if r.active and c.alters_picture]
        self._altered_since = {f: self._altered_since.get(f, t) for f in flagged}
        events = self._observe(results, "picture", t, frame.wall_time)
        for ev in events:
            if ev.event == "raise":
                self._add_evidence(ev, frame, view)
        self._quality_report(view)
        self.frames_checked += 1
        return events

    def process_audio(self, chunk: AudioChunk) -> list[AlertEvent]:
        """A stretch of sound (or of its absence), judged block by block in stream order."""
        events = []
        for block in blocks(chunk, self.spec.settings.audio.block_s):
            results: list[tuple[AnyCheck, CheckResult]] = [(c, c.evaluate(block)) for c in self.audio_checks]
            events += self._observe(results, "audio", block.stream_time, block.wall_time)
            self.audio_seconds += block.duration
        figures = {k: v for c in self.audio_checks for k, v in c.figures().items()}
        if figures:
            self.latest_quality["audio"] = {"stream_time": round(chunk.stream_time + chunk.duration, 2), **figures}
        return events

    def _observe(
        self, results: Sequence[tuple[AnyCheck, CheckResult]], domain: str, t: float, wall_time: float
    ) -> list[AlertEvent]:
        """One sample's (or block's) results into the alert trackers. The root causes seen are
        this domain's from these results; the other domain's stay as its last sample left them."""
        self._observed_roots = {r for r in self._observed_roots if self._domain.get(r) != domain} | {
            c.name for c, r in results if r.active and c.name in self.root_causes
        }
        events = []
        for check, result in results:
            ev = self.alerts.observe(
                check.name,
                Timing(check.config.raise_after_s, check.config.clear_after_s),
                result.active,
                t,
                result.severity,
                result.measurements,
                wall_time,
                explained=self._explained(check.name),
            )
            if ev is not None:
                events.append(ev)
        return events

    def on_scores(self, result: ScoreResult) -> list[AlertEvent]:
        """CLIP-IQA scores of one frame: the `clip_quality` fault and the stream's quality report."""
        cfg = self.scoring
        if cfg is None:
            return []
        # Said in the report (and so on MQTT) so no dashboard shows a random model's score as real.
        tile = {"worst_tile": result.worst_tile} if result.worst_tile is not None else {}
        self.latest_quality["clip"] = {
            "stream_time": round(result.stream_time, 2),
            **result.scores,
            **tile,
            "random_init": result.random_init,
        }
        low_tile = (
            cfg.min_tile_quality is not None
            and result.worst_tile is not None
            and result.worst_tile["quality"] < cfg.min_tile_quality
        )
        # A random-weight model's scores are reported, never alerted on.
        present = not result.random_init and (result.scores.get(OVERALL, 1.0) < cfg.min_quality or low_tile)
        ev = self.alerts.observe(
            CLIP_QUALITY,
            Timing(cfg.raise_after_s, cfg.clear_after_s),
            present,
            result.stream_time,
            "warning",
            {**result.scores, **tile},
            result.wall_time,
            explained=self._explained(CLIP_QUALITY),
        )
        if ev is None:
            return []
        if ev.event == "raise":
            self._add_evidence(ev, result.frame, FrameView(result.frame, self._masks))
        return [ev]

    def _explained(self, fault: str) -> bool:
        """The one root-cause rule: a root cause (black picture, no-signal card, dead stream)
        explains every other symptom - a black picture is also "frozen" and "underexposed" - while
        it is seen on the latest checked frame or its alert is active. Root causes are listed by
        priority, so an earlier one also explains a later one (black explains a "covered" lens);
        a fault that is no root cause (the CLIP quality score) is explained by any of them.

        Picture and sound are judged apart: a black picture explains no silence, and a silence
        no frozen picture; only a dead stream explains both."""
        rank = self._root_rank
        own = rank.get(fault, len(rank))
        domain = self._domain.get(fault, "picture")  # the CLIP score is about the picture
        return any(
            rank[r] < own
            and self._domain.get(r, domain) == domain  # stream_down has no domain: it explains both
            and (r in self._observed_roots or self.alerts.is_active(r))
            for r in self.root_causes
        )

    def _add_evidence(self, ev: AlertEvent, frame: Frame, view: FrameView) -> None:
        if self.escalate is not None:
            self.escalate(ev, frame)
        if self.iqa is not None and self.iqa.on_raise:
            scores = self.iqa_scorer.score(view.native_crop)
            if scores:
                ev.measurements["iqa"] = scores  # BRISQUE/NIQE; "quality" is the CLIP-IQA score
        if self.snapshots is not None:
            # The alert's details go beside the picture: `vqmon ask` sends them with it.
            details = self.alert_details(ev)
            ev.snapshot = self.snapshots.save(frame.image, frame.stream, ev.fault, ev.id, frame.wall_time, details)

    def alert_details(self, ev: AlertEvent) -> dict[str, Any]:
        """What a VLM is told about an alert besides its picture (escalation, `vqmon ask`)."""
        return {
            "stream": ev.stream,
            "fault": ev.fault,
            "severity": ev.severity,
            "measurements": ev.measurements,
            "clip_scores": self.latest_quality.get("clip"),
        }

    def _quality_report(self, view: FrameView) -> None:
        """Refresh this stream's BRISQUE/NIQE every report_every_s of stream time (the stats show them)."""
        t = view.frame.stream_time
        if self._report_interval is None or not self._report_interval.due(t):
            return
        self.latest_quality["iqa"] = {"stream_time": round(t, 2), **self.iqa_scorer.score(view.native_crop)}

    def watchdog(self, stats: CaptureStats, now: float) -> AlertEvent | None:
        """stream_down, on the wall clock: the source failed, or no frame for stall_timeout_s."""
        stall = self.spec.settings.capture.stall_timeout_s
        since = stats.seconds_since_frame(now)
        stalled = stats.state == "up" and since is not None and since > stall
        down = stats.state == "down" or stalled
        measurements: dict[str, Any] = {}
        if down:
            measurements["reason"] = stats.last_error if stats.state == "down" else f"no frame for {since:.1f}s"
            if since is not None:
                measurements["seconds_since_frame"] = round(since, 1)
        return self.alerts.observe(
            STREAM_DOWN,
            Timing(self.spec.settings.stream_down.raise_after_s, 0.0),
            down,
            now,
            self.spec.settings.stream_down.severity,
            measurements,
            wall_time=now,
            stream_time=stats.last_stream_time or 0.0,
            rate_limited=False,  # runs on the wall clock, and an outage must always be told
        )
