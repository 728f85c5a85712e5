"""Wires the stages: capture threads -> per-stream queues (StreamMux) -> checks -> alerts -> sinks.

The calling thread runs the analysis loop, so the alert trackers have a single owner and need
no locks. Live mode drops the oldest frames of a stream whose checks fall behind; offline mode
(``vqmon analyze``) makes capture wait instead, so every sampled frame is looked at.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.alerts import AlertEvent, AlertPolicy, StreamAlerts, Timing
from monitor.alerts.snapshots import SnapshotStore
from monitor.capture import CaptureStats, CaptureWorker, source_label
from monitor.checks import Check, FrameView, all_checks
from monitor.clock import Interval
from monitor.config import EscalationConfig, QualityConfig, ScoringConfig
from monitor.escalation.worker import EscalationRequest, EscalationResult, EscalationWorker
from monitor.frames import Frame
from monitor.quality.scorer import QualityScorer
from monitor.queues import StreamMux
from monitor.scoring.worker import ScoreResult, ScoringWorker
from monitor.sinks import Ack, Command, Sink

Incoming = ScoreResult | EscalationResult | Command

log = logging.getLogger(__name__)

STREAM_DOWN = "stream_down"
QUALITY = "quality"  # the CLIP-IQA overall score under its threshold
TICK_S = 0.25


@dataclass
class StreamSpec:
    name: str
    url: str
    settings: Any  # monitor.config.StreamSettings (sample, capture, checks, stream_down)

    @property
    def source(self) -> str:
        return source_label(self.url)


class StreamAnalyzer:
    """Runs the enabled checks on each sampled frame of one stream and tracks its alerts."""

    def __init__(
        self,
        spec: StreamSpec,
        snapshots: SnapshotStore | None = None,
        quality: QualityConfig | None = None,
        scoring: ScoringConfig | None = None,
        escalate: Callable[[AlertEvent, Frame], None] | None = None,
        iqa: QualityScorer | None = None,
    ) -> None:
        """``scoring``: this stream's CLIP scoring settings when a scorer runs and the stream
        takes part; ``escalate``: hands a raise and its frame to the VLM escalation; ``iqa``:
        the BRISQUE/NIQE scorer shared by all streams (a default one if not given)."""
        self.spec = spec
        self.quality = quality
        self.iqa = iqa if iqa is not None else QualityScorer()
        self.latest_quality: dict[str, Any] = {}
        self.escalate = escalate
        self.scoring = scoring
        self.score_interval = Interval(scoring.every_s) if scoring is not None else None
        self._report_interval = (
            Interval(quality.report_every_s, first_due_at_start=False)
            if quality is not None and quality.report_every_s
            else None
        )
        a = spec.settings.alerts
        self.alerts = StreamAlerts(spec.name, spec.source, AlertPolicy(a.cooldown_s, a.max_raises_per_minute))
        self.root_causes = tuple(a.root_causes)
        self._root_rank = {f: i for i, f in enumerate(self.root_causes)}
        self._observed_roots: set[str] = set()  # root causes seen on the latest checked frame
        self.snapshots = snapshots
        self.checks: list[Check] = []
        for name, cls in all_checks().items():
            cfg = getattr(spec.settings.checks, name)
            if cfg.enabled:
                self.checks.append(cls.build(cfg, self.iqa))
        self.frames_checked = 0

    def process(self, frame: Frame) -> list[AlertEvent]:
        view = FrameView(frame)
        results = [(check, check.evaluate(view)) for check in self.checks]
        self._observed_roots = {c.name for c, r in results if r.active and c.name in self.root_causes}
        events = []
        for check, result in results:
            ev = self.alerts.observe(
                check.name,
                Timing(check.config.raise_after_s, check.config.clear_after_s),
                result.active,
                frame.stream_time,
                result.severity,
                result.measurements,
                frame.wall_time,
                explained=self._explained(check.name),
            )
            if ev is not None:
                if ev.event == "raise":
                    self._add_evidence(ev, frame, view)
                events.append(ev)
        self._quality_report(view)
        self.frames_checked += 1
        return events

    def on_scores(self, result: ScoreResult, alerts_allowed: bool) -> list[AlertEvent]:
        """CLIP-IQA scores of one frame: the `quality` fault and the stream's quality report."""
        cfg = self.scoring
        if cfg is None:
            return []
        self.latest_quality["clip"] = {"stream_time": round(result.stream_time, 2), **result.scores}
        present = alerts_allowed and result.scores.get("quality", 1.0) < cfg.min_quality
        ev = self.alerts.observe(
            QUALITY,
            Timing(cfg.raise_after_s, cfg.clear_after_s),
            present,
            result.stream_time,
            "warning",
            dict(result.scores),
            result.wall_time,
            explained=self._explained(QUALITY),
        )
        if ev is None:
            return []
        if ev.event == "raise":
            self._add_evidence(ev, result.frame, FrameView(result.frame))
        return [ev]

    def _explained(self, fault: str) -> bool:
        """The one root-cause rule: a root cause (black picture, no-signal card, dead stream)
        explains every other symptom - a black picture is also "frozen" and "underexposed" - while
        it is seen on the latest checked frame or its alert is active. Root causes are listed by
        priority, so an earlier one also explains a later one (black explains a "covered" lens);
        a fault that is no root cause (the CLIP quality score) is explained by any of them."""
        rank = self._root_rank
        own = rank.get(fault, len(rank))
        return any(rank[r] < own and (r in self._observed_roots or self.alerts.is_active(r)) for r in self.root_causes)

    def _add_evidence(self, ev: AlertEvent, frame: Frame, view: FrameView) -> None:
        if self.escalate is not None:
            self.escalate(ev, frame)
        if self.snapshots is not None:
            ev.snapshot = self.snapshots.save(frame.image, frame.stream, ev.fault, ev.id, frame.wall_time)
        if self.quality is not None and self.quality.on_raise:
            scores = self.iqa.score(view.native_crop)
            if scores:
                ev.measurements["iqa"] = scores  # BRISQUE/NIQE; "quality" is the CLIP-IQA score

    def _quality_report(self, view: FrameView) -> None:
        """Refresh this stream's BRISQUE/NIQE every report_every_s of stream time (the stats show them)."""
        t = view.frame.stream_time
        if self._report_interval is None or not self._report_interval.due(t):
            return
        self.latest_quality["iqa"] = {"stream_time": round(t, 2), **self.iqa.score(view.native_crop)}

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
            Timing(0.0, 0.0),
            down,
            now,
            self.spec.settings.stream_down.severity,
            measurements,
            wall_time=now,
            stream_time=stats.last_stream_time or 0.0,
            rate_limited=False,  # runs on the wall clock, and an outage must always be told
        )


class Pipeline:
    def __init__(
        self,
        specs: list[StreamSpec],
        sink: Sink,
        *,
        offline: bool = False,
        stats_interval_s: float = 30.0,
        snapshots: SnapshotStore | None = None,
        quality: QualityConfig | None = None,
        scoring: ScoringConfig | None = None,
        escalation: EscalationConfig | None = None,
    ) -> None:
        if not specs:
            raise ValueError("no streams to monitor")
        self.specs = {s.name: s for s in specs}
        self.sink = sink
        self.offline = offline
        self.stats_interval_s = stats_interval_s
        queue_size = max(s.settings.capture.queue_size for s in specs)
        self.mux: StreamMux[Frame] = StreamMux(queue_size, block_when_full=offline)
        # What comes back to the analysis loop from other threads - CLIP scores, VLM diagnoses,
        # operators' commands - arrives on this one inbox and is applied in the order it came.
        self._inbox: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
        q = quality if quality is not None else QualityConfig()
        # One scorer for every stream: BRISQUE's model is loaded once.
        self.iqa = QualityScorer(q.brisque, q.niqe, q.brisque_model_dir)
        self.scorer = self._load_scorer(scoring, self._inbox.put) if scoring is not None and scoring.model_dir else None
        self.quality_alerts = self.scorer is not None and not self.scorer.model.random_init
        self.escalation = self._load_escalation(escalation) if escalation is not None and escalation.enabled else None
        self.analyzers = {
            s.name: StreamAnalyzer(
                s,
                snapshots,
                quality,
                scoring=scoring.for_stream(s.settings.scoring)
                if self.scorer is not None and scoring is not None
                else None,
                escalate=self._escalate if self.escalation is not None else None,
                iqa=self.iqa,
            )
            for s in specs
        }
        self.workers = {
            s.name: CaptureWorker(s.name, s.url, s.settings.capture, s.settings.sample, self.mux, retry=not offline)
            for s in specs
        }
        self.events_emitted = 0
        self._last_status: dict[str, tuple[str, str]] = {}
        self._stop = threading.Event()
        self.sink.subscribe(self._inbox.put)

    def _load_escalation(self, cfg: EscalationConfig) -> EscalationWorker | None:
        from pathlib import Path

        from monitor.escalation.client import SYSTEM_PROMPT, VlmClient

        if self.offline:
            log.info("VLM escalation runs in the daemon only, not for recorded files")
            return None
        prompt = SYSTEM_PROMPT
        if cfg.prompt_file:
            try:
                prompt = Path(cfg.prompt_file).read_text()
            except OSError as exc:
                log.error("escalation.prompt_file %s unreadable (%s): using the built-in prompt", cfg.prompt_file, exc)
        client = VlmClient(cfg.base_url, cfg.model, cfg.api_key_env, cfg.timeout_s, cfg.image_size, prompt)
        return EscalationWorker(
            client, self._inbox.put, cfg.queue_size, cfg.min_interval_s, cfg.max_calls_per_minute, cfg.max_concurrency
        )

    def _escalate(self, ev: AlertEvent, frame: Frame) -> None:
        assert self.escalation is not None
        analyzer = self.analyzers[ev.stream]
        from monitor.escalation.client import PROFILE_CRITERIA

        profile = analyzer.spec.settings.profile
        context = {
            "stream": ev.stream,
            "profile": profile,
            "criteria": PROFILE_CRITERIA.get(profile, PROFILE_CRITERIA["default"]),
            "fault": ev.fault,
            "severity": ev.severity,
            "measurements": ev.measurements,
            "clip_scores": analyzer.latest_quality.get("clip"),
        }
        self.escalation.submit(EscalationRequest(ev.id, ev.stream, ev.fault, ev.stream_time, frame.image, context))

    def _diagnosed(self, r: EscalationResult) -> None:
        """A VLM diagnosis (or why there is none) goes out as an update of its alert."""
        req = r.request
        analyzer = self.analyzers[req.stream]
        now = time.time()
        ev = analyzer.alerts.update_for(req.alert_id, now, req.stream_time) or AlertEvent(
            req.alert_id, req.stream, analyzer.spec.source, req.fault, "update",
            req.context["severity"], req.stream_time, now,
        )  # fmt: skip
        ev.diagnosis, ev.diagnosis_error = r.diagnosis, r.error
        self._emit([ev])

    @staticmethod
    def _load_scorer(cfg: ScoringConfig, deliver: Callable[[ScoreResult], None]) -> ScoringWorker | None:
        from monitor.errors import VqmonError
        from monitor.scoring.clip_iqa import ClipIqa, SessionOptions

        try:
            model = ClipIqa(
                cfg.model_dir,  # type: ignore[arg-type]
                SessionOptions(cfg.device, cfg.precision, cfg.threads, cfg.trt_cache_dir),
            )
        except VqmonError as exc:
            # The picture checks do not need the model: run on without CLIP scores.
            log.error("CLIP scoring off: %s", exc)
            return None
        if model.random_init:
            log.warning(
                "CLIP model %s has random weights (exported with --random-init): its scores are reported, "
                "but it raises no quality alerts; export real weights for that",
                cfg.model_dir,
            )
        return ScoringWorker(model, deliver, cfg.max_batch, cfg.max_wait_ms)

    def stats(self, name: str) -> CaptureStats:
        return self.workers[name].stats

    def stats_snapshot(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, w in self.workers.items():
            d = w.stats.as_dict()
            d["dropped"] = self.mux.dropped(name)
            d["frames_checked"] = self.analyzers[name].frames_checked
            alerts = self.analyzers[name].alerts
            d["active_alerts"] = alerts.active_faults()
            d["suppressed"] = dict(alerts.suppressed)
            d["held_back"] = alerts.held_back()
            d["quality"] = dict(self.analyzers[name].latest_quality)
            if self.scorer is not None:
                d["scoring_dropped"] = self.scorer.dropped(name)
            if self.escalation is not None:
                c = self.escalation.counters
                d["escalation"] = {
                    "sent": c.sent,
                    "diagnosed": c.diagnosed,
                    "failed": c.failed,
                    "skipped": c.skipped_queue_full + c.skipped_rate_limit + c.skipped_duplicate,
                }
            out[name] = d
        return out

    def start(self) -> None:
        if self.scorer is not None and not self.offline:
            self.scorer.start()
        if self.escalation is not None:
            self.escalation.start()
        for w in self.workers.values():
            w.start()
        log.info("monitoring %d stream(s): %s", len(self.workers), ", ".join(self.workers))

    def stop(self) -> None:
        self._stop.set()

    def run(self, on_tick: Callable[[], None] | None = None) -> None:
        """Analyse frames until stop() (live) or until every file is done (offline)."""
        last_tick = last_stats = time.monotonic()
        while not self._stop.is_set():
            item = self.mux.get(timeout=TICK_S)
            if item is not None:
                name, frame = item
                self._analyse(self.analyzers[str(name)], frame)
            self._take_inbox()
            mono = time.monotonic()
            if mono - last_tick >= TICK_S:
                last_tick = mono
                if not self.offline:
                    now = time.time()
                    for name, analyzer in self.analyzers.items():
                        ev = analyzer.watchdog(self.workers[name].stats, now)
                        if ev is not None:
                            self._emit([ev])
                if on_tick is not None:
                    on_tick()
                self._publish_status()
                if mono - last_stats >= self.stats_interval_s:
                    last_stats = mono
                    snapshot = self.stats_snapshot()
                    self._log_stats(snapshot)
                    self.sink.stats(snapshot)
            if item is None and self.offline and not any(w.is_alive() for w in self.workers.values()):
                # Workers are done; drain what they left, then finish.
                while (rest := self.mux.get(timeout=0)) is not None:
                    self._analyse(self.analyzers[str(rest[0])], rest[1])
                self._take_inbox()
                break

    def _analyse(self, analyzer: StreamAnalyzer, frame: Frame) -> None:
        self._emit(analyzer.process(frame))
        if (
            self.scorer is not None
            and analyzer.score_interval is not None
            and analyzer.score_interval.due(frame.stream_time)
        ):
            if self.offline:
                self.scorer.score_batch([frame])  # files: score every due frame, in order
            else:
                self.scorer.submit(frame)

    def _take_inbox(self) -> None:
        """Apply what the other threads sent back since the last look, without waiting."""
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, ScoreResult):
                self._emit(self.analyzers[item.stream].on_scores(item, self.quality_alerts))
            elif isinstance(item, EscalationResult):
                self._diagnosed(item)
            else:
                self._acknowledge(item)

    def shutdown(self, join_timeout_s: float = 5.0) -> list[str]:
        """Stop capture threads and close sinks. Returns names of threads that did not end in time."""
        self._stop.set()
        for w in self.workers.values():
            w.stop()
        self.mux.close()
        if self.scorer is not None:
            self.scorer.stop()
        if self.escalation is not None:
            self.escalation.stop()
        stuck = []
        deadline = time.monotonic() + join_timeout_s
        for name, w in self.workers.items():
            w.join(max(0.0, deadline - time.monotonic()))
            if w.is_alive():
                stuck.append(name)
        if stuck:
            # Blocked in a network read; the read timeout will end it, and the thread is a daemon.
            log.warning("capture thread(s) still finishing a blocked read: %s", ", ".join(stuck))
        self.sink.close()
        return stuck

    def _emit(self, events: list[AlertEvent]) -> None:
        for ev in events:
            self.events_emitted += 1
            self.sink.emit(ev)

    def _status(self, name: str) -> dict[str, Any]:
        st = self.workers[name].stats
        return {
            "state": st.state,
            "fps": round(st.fps, 2),
            "last_frame_time": st.last_frame_wall,
            "last_error": st.last_error,
            "active_alerts": self.analyzers[name].alerts.active_alerts(),
        }

    def _publish_status(self) -> None:
        """Changed stream states (retained status topics) out."""
        for name in self.workers:
            status = self._status(name)
            key = (status["state"], str(status["active_alerts"]))
            if self._last_status.get(name) != key:
                self._last_status[name] = key
                self.sink.status(name, status)

    def _acknowledge(self, ack: Ack) -> None:
        analyzer = self.analyzers.get(ack.stream)
        if analyzer is not None and analyzer.alerts.acknowledge(ack.alert_id):
            log.info("%s: alert %s acknowledged by an operator", ack.stream, ack.alert_id)
        else:
            log.warning("ack for %s/%s: no such active alert", ack.stream, ack.alert_id)

    def _log_stats(self, snapshot: dict[str, dict[str, Any]]) -> None:
        for name, s in snapshot.items():
            log.info(
                "stats %s: %s fps=%.1f decoded=%d sampled=%d checked=%d dropped=%d decode_errors=%d "
                "reconnects=%d alerts=%s quality=%s",
                name,
                s["state"],
                s["fps"],
                s["frames_decoded"],
                s["frames_sampled"],
                s["frames_checked"],
                s["dropped"],
                s["decode_errors"],
                s["reconnects"],
                ",".join(s["active_alerts"]) or "-",
                s["quality"] or "-",
            )
        if self.scorer is not None:
            sc = self.scorer
            dropped = sum(s["scoring_dropped"] for s in snapshot.values())
            log.info(
                "stats CLIP scorer: %s scored=%d batches=%d (%.1f frames per call, largest %d) dropped=%d errors=%d",
                sc.model.provider,
                sc.scored,
                sc.batches,
                sc.scored / sc.batches if sc.batches else 0.0,
                sc.largest_batch,
                dropped,
                sc.errors,
            )
