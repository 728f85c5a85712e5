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
from pathlib import Path
from typing import Any

import cv2

from monitor.alerts import AlertEvent
from monitor.alerts.snapshots import SnapshotStore
from monitor.capture import CaptureStats, CaptureWorker
from monitor.capture.evidence import EvidenceClip, EvidenceRecorder
from monitor.checks.moved import Moved
from monitor.config import EscalationConfig, EvidenceConfig, IqaConfig, ScoringConfig
from monitor.cores import usable_cores
from monitor.escalation.worker import EscalationRequest, EscalationResult
from monitor.frames import AudioChunk, Frame
from monitor.health import Beat, Loop, health
from monitor.iqa.scorer import IqaScorer
from monitor.metrics import ALERT_EVENTS, CHECK_SECONDS
from monitor.queues import StreamMux
from monitor.runtime.assemble import load_escalation, load_scorer
from monitor.runtime.report import log_stats, stats_snapshot, stream_status
from monitor.runtime.stream import StreamAnalyzer, StreamSpec
from monitor.scoring.worker import ScoreResult
from monitor.sinks import Ack, Command, Mute, Rebaseline, Sink


@dataclass(frozen=True)
class Reconfigure:
    """A reloaded config's streams, for the analysis loop to apply."""

    specs: list[StreamSpec]


Incoming = ScoreResult | EscalationResult | Command | Reconfigure | EvidenceClip


def item_stream(item: ScoreResult | EscalationResult) -> str:
    return item.stream if isinstance(item, ScoreResult) else item.request.stream


log = logging.getLogger(__name__)

DRAIN_S = 5.0  # at shutdown, how long diagnoses in flight may take to come back
ANALYSIS_SILENCE_S = 15.0  # the loop turns every TICK_S; a check this slow is a hang
SCORER_SILENCE_S = 120.0  # a full batch with tiles of a large model on a CPU takes seconds
TICK_S = 0.25


def many_streams(n: int) -> bool:
    """As many streams as CPU cores or more: the defaults turn to saving threads and memory."""
    return n >= usable_cores()


def crowded(n: int) -> bool:
    """8 streams a core or more: past its decode limit a box keeps every queue full (the queue
    defaults below hold fewer sampled frames)."""
    return n >= 8 * usable_cores()


def default_queue_size(n: int) -> int:
    """Sampled frames buffered per stream when capture.queue_size is 0. Each holds its full-size
    picture (1.8 MB at 720p), and a box past its limit keeps every queue full: 4 a stream were 7
    of the 20 MB each of 32 720p streams on 2 cores. With 8 streams a core or more, 3: a capture
    thread catching up after a lag hands on 2 samples at once, and with 2 a stream 26 and 28
    streams dropped 1-81 samples in 20 s (4 runs), with 3 none in the runs whose decode limit
    was above 26 streams."""
    return 8 if not many_streams(n) else 3 if crowded(n) else 4


def default_queue_total(n: int) -> int | None:
    """Sampled frames buffered over all streams when capture.queue_size is 0 (see StreamMux):
    with 8 streams a core or more, one a stream and a quarter more for streams handing on a
    burst. Past its limit (32 720p streams on 2 cores) the box kept every queue full, 3 frames
    and 4 MB a stream, seconds old, and dropped no fewer samples for it."""
    return n + max(2, n // 4) if crowded(n) else None


class Pipeline:
    def __init__(
        self,
        specs: list[StreamSpec],
        sink: Sink,
        *,
        offline: bool = False,
        stats_interval_s: float = 30.0,
        snapshots: SnapshotStore | None = None,
        iqa: IqaConfig | None = None,
        scoring: ScoringConfig | None = None,
        escalation: EscalationConfig | None = None,
        evidence: EvidenceConfig | None = None,
        evidence_dir: Path | None = None,
    ) -> None:
        """``evidence``/``evidence_dir``: clips around raises (live only; see capture/evidence.py)."""
        if not specs:
            raise ValueError("no streams to monitor")
        self.specs = {s.name: s for s in specs}
        self.sink = sink
        self.offline = offline
        self.stats_interval_s = stats_interval_s
        queue_size = max(s.settings.capture.queue_size or default_queue_size(len(specs)) for s in specs)
        if many_streams(len(specs)):
            # OpenCV splits each call of the checks across the cores: on a box whose cores are
            # busy decoding that costs 30 % more CPU per sample (8.4 against 6.5 ms on 720p key
            # frames) for no gain, as the decoders use every core already.
            cv2.setNumThreads(1)
        # Sampled frames under each stream's name, its sound under (name, "audio"): served in turn.
        total = self._queue_total(specs)
        self.mux: StreamMux[Frame | AudioChunk] = StreamMux(queue_size, block_when_full=offline, total=total)
        # What comes back to the analysis loop from other threads - CLIP scores, VLM diagnoses,
        # operators' commands - arrives on this one inbox and is applied in the order it came.
        self._inbox: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
        q = iqa if iqa is not None else IqaConfig()
        # One scorer for every stream: BRISQUE's model is loaded once.
        self.iqa_scorer = IqaScorer(q.brisque, q.niqe, q.brisque_model_dir)
        self.scorer = load_scorer(scoring, self._inbox.put) if scoring is not None and scoring.model_dir else None
        self.escalation = (
            load_escalation(escalation, self._inbox.put, offline)
            if escalation is not None and escalation.enabled
            else None
        )
        self._snapshots, self._iqa, self._scoring = snapshots, iqa, scoring
        self._evidence = evidence if evidence is not None and evidence.clip and not offline else None
        self._evidence_dir = evidence_dir or Path("clips")
        self.recorders: dict[str, EvidenceRecorder] = {}
        self.analyzers: dict[str, StreamAnalyzer] = {}
        self.workers: dict[str, CaptureWorker] = {}
        for spec in specs:
            self._add_stream(spec)
        self.events_emitted = 0
        self._last_status: dict[str, tuple[str, str, str, str | None]] = {}
        self._stop = threading.Event()
        self.beat = Beat()  # the analysis loop's
        self.sink.subscribe(self._inbox.put)

    def _add_stream(self, s: StreamSpec) -> None:
        self.specs[s.name] = s
        scoring = self._scoring
        self.analyzers[s.name] = StreamAnalyzer(
            s,
            self._snapshots,
            self._iqa,
            scoring=scoring.for_stream(s.settings.scoring) if self.scorer is not None and scoring is not None else None,
            escalate=self._escalate if self.escalation is not None else None,
            iqa_scorer=self.iqa_scorer,
        )
        recorder = None
        if self._evidence is not None:
            e = self._evidence
            recorder = EvidenceRecorder(s.name, self._evidence_dir, e.pre_s, e.post_s, e.max_mb, self._inbox.put)
            self.recorders[s.name] = recorder
        capture = s.settings.capture
        if capture.threads == 0 and many_streams(len(self.specs)):
            # Many streams: one thread per decoder. ffmpeg's frame threading would start a thread
            # per core for every stream, each holding frames of its own: on 16 720p streams on 2
            # cores that cost 12 % more CPU and 10 MB more per stream (vqmon bench pipeline).
            capture = capture.model_copy(update={"threads": 1})
        self.workers[s.name] = CaptureWorker(
            s.name,
            s.url,
            capture,
            s.settings.sample,
            self.mux,
            retry=not self.offline,
            evidence=recorder,
            audio=s.settings.audio,
        )

    def reconfigure(self, specs: list[StreamSpec]) -> None:
        """Apply a new set of streams (SIGHUP), from the analysis loop: streams added are started,
        removed ones stopped, changed ones restarted with their new settings; every other stream
        keeps its connection, baselines and alerts. Asked for from another thread with
        ``request(Reconfigure(...))``."""
        new = {s.name: s for s in specs}
        removed = [n for n in self.specs if n not in new]
        changed = [n for n in self.specs if n in new and new[n] != self.specs[n]]
        added = [n for n in new if n not in self.specs]
        for name in removed + changed:
            self.workers[name].stop()
            self._retire(name)
        self.mux.set_total(self._queue_total(specs))  # the budget follows the number of streams
        for name in changed + added:
            self._add_stream(new[name])
            self.workers[name].start()
        log.info(
            "config reloaded: %d added (%s), %d removed (%s), %d changed (%s), %d unchanged",
            len(added), ", ".join(added) or "-", len(removed), ", ".join(removed) or "-",
            len(changed), ", ".join(changed) or "-", len(new) - len(added) - len(changed),
        )  # fmt: skip

    def _queue_total(self, specs: list[StreamSpec]) -> int | None:
        """The mux's budget over all streams (see default_queue_total); none offline, where
        nothing is dropped, nor where an operator set a queue_size, which is kept as set."""
        if self.offline or any(s.settings.capture.queue_size for s in specs):
            return None
        return default_queue_total(len(specs))

    def _retire(self, name: str) -> None:
        """A stream leaves: its open alerts are cleared (nobody watches it any more, so nobody
        would ever clear them) and its status says so."""
        analyzer = self.analyzers.pop(name)
        self.workers.pop(name)
        self.specs.pop(name)
        self.recorders.pop(name, None)
        self._last_status.pop(name, None)
        self._emit(analyzer.alerts.close_all(time.time(), "stream removed from the config"))
        self.sink.status(name, {"state": "removed", "active_alerts": []})
        self.mux.discard(name)
        self.mux.discard((name, "audio"))

    def request(self, item: Incoming) -> None:
        """Hand the analysis loop something to apply (thread-safe)."""
        self._inbox.put(item)

    def _escalate(self, ev: AlertEvent, frame: Frame) -> None:
        assert self.escalation is not None
        analyzer = self.analyzers[ev.stream]
        from monitor.escalation.client import PROFILE_CRITERIA

        profile = analyzer.spec.settings.profile
        context = {
            **analyzer.alert_details(ev),
            "profile": profile,
            "criteria": PROFILE_CRITERIA.get(profile, PROFILE_CRITERIA["default"]),
        }
        self.escalation.submit(EscalationRequest(ev.id, ev.stream, ev.fault, ev.stream_time, frame.image, context))

    def _clip_written(self, clip: EvidenceClip) -> None:
        """The evidence clip of an alert goes out as an update of it (even if it has cleared)."""
        analyzer = self.analyzers.get(clip.stream)
        if analyzer is None:
            return
        now = time.time()
        ev = analyzer.alerts.update_for(clip.alert_id, now, 0.0) or AlertEvent(
            clip.alert_id,
            clip.stream,
            analyzer.spec.source,
            clip.fault,
            "update",
            clip.severity,
            0.0,
            now,
        )
        ev.clip = clip.path
        ev.measurements = {"clip_duration_s": clip.duration_s}
        self._emit([ev])

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

    def loops(self) -> list[Loop]:
        """Every long-running loop with how long it may be silent (see monitor/health.py)."""
        out = [Loop("analysis", self.beat, ANALYSIS_SILENCE_S)]
        # Read from other threads (HTTP, systemd): a copy, as a reload may change the streams.
        for name, w in dict(self.workers).items():
            if w.is_alive():  # an ended capture thread is a finished file or a reported failure
                c = w.cfg
                allowed = c.open_timeout_s + c.read_timeout_s + c.stall_timeout_s + c.reconnect.max_s + 30.0
                out.append(Loop(f"capture-{name}", w.beat, allowed))
        if self.scorer is not None and not self.offline:
            out.append(Loop("clip-scorer", self.scorer.beat, SCORER_SILENCE_S, self.scorer.is_alive()))
        if self.escalation is not None:
            allowed = 2 * self.escalation.client.timeout_s + 30.0  # a call and its repair request
            for i, t in enumerate(self.escalation.threads):
                out.append(Loop(t.name, self.escalation.beats[i], allowed, t.is_alive()))
        return out + self.sink.loops()

    def health(self) -> dict[str, Any]:
        return health(self.loops())

    def status(self) -> dict[str, Any]:
        """/api/status: each stream's state and active alerts, and the daemon's health."""
        analyzers = dict(self.analyzers)  # copies: a reload may change the streams meanwhile
        streams = {
            name: stream_status(w, analyzers[name]) for name, w in dict(self.workers).items() if name in analyzers
        }
        return {"ok": self.health()["ok"], "streams": streams, "events_emitted": self.events_emitted}

    def stats(self, name: str) -> CaptureStats:
        return self.workers[name].stats

    def stats_snapshot(self) -> dict[str, dict[str, Any]]:
        workers, analyzers = dict(self.workers), dict(self.analyzers)  # /metrics reads it from its own thread
        workers = {n: w for n, w in workers.items() if n in analyzers}
        return stats_snapshot(workers, self.mux, analyzers, self.scorer, self.escalation)

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
            self.beat()
            item = self.mux.get(timeout=TICK_S)
            if item is not None:
                self._analyse(item[1])
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
                    log_stats(snapshot, self.scorer)
                    self.sink.stats(snapshot)
            if item is None and self.offline and not any(w.is_alive() for w in self.workers.values()):
                # Workers are done; drain what they left, then finish.
                while (rest := self.mux.get(timeout=0)) is not None:
                    self._analyse(rest[1])
                self._take_inbox()
                break

    def _analyse(self, item: Frame | AudioChunk) -> None:
        analyzer = self.analyzers.get(item.stream)
        if analyzer is None:
            return  # its stream was removed by a reload
        if isinstance(item, AudioChunk):
            self._emit(analyzer.process_audio(item))
            return
        frame = item
        t0 = time.perf_counter()
        events = analyzer.process(frame)
        CHECK_SECONDS.labels(analyzer.spec.name).observe(time.perf_counter() - t0)
        self._emit(events)
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
            if isinstance(item, Reconfigure):
                self.reconfigure(item.specs)
            elif isinstance(item, EvidenceClip):
                self._clip_written(item)
            elif isinstance(item, ScoreResult | EscalationResult) and item_stream(item) not in self.analyzers:
                continue  # its stream was removed by a reload while the result was on its way
            elif isinstance(item, ScoreResult):
                self._emit(self.analyzers[item.stream].on_scores(item))
            elif isinstance(item, EscalationResult):
                self._diagnosed(item)
            elif isinstance(item, Mute):
                self._mute(item)
            elif isinstance(item, Rebaseline):
                self._rebaseline(item.stream)
            else:
                self._acknowledge(item)

    def shutdown(self, join_timeout_s: float = 5.0, drain_s: float = DRAIN_S) -> list[str]:
        """Stop capture, finish what is already in hand, close sinks. Returns the names of capture
        threads that did not end in time.

        Nothing already captured is dropped silently: frames waiting in the queue are still
        checked (a fault seen in them is raised), diagnoses in flight get up to ``drain_s`` to
        come back, and those that do not go out as an update with diagnosis_error."""
        self._stop.set()
        for w in self.workers.values():
            w.stop()
        if self.scorer is not None:
            self.scorer.stop()
        drained = 0
        while (rest := self.mux.get(timeout=0)) is not None:
            self._analyse(rest[1])
            drained += 1
        self.mux.close()
        self._take_inbox()
        if self.escalation is not None:
            unfinished = self.escalation.drain(drain_s)
            self._take_inbox()
            for req in (r for r in unfinished if r.stream in self.analyzers):
                self._diagnosed(EscalationResult(req, error="not diagnosed: vqmon stopped before the VLM answered"))
            if unfinished:
                log.warning("%d diagnosis request(s) unfinished at shutdown, published as such", len(unfinished))
        if drained:
            log.info("checked %d queued frame(s) before stopping", drained)
        stuck = []
        deadline = time.monotonic() + join_timeout_s
        for name, w in self.workers.items():
            if w.ident is None:
                continue  # never started
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
            spec = self.specs.get(ev.stream)
            if spec is not None and spec.settings.schedule.quiet_at(ev.wall_time):
                ev.quiet = True  # recorded and published as usual; the notify sink keeps quiet
            ALERT_EVENTS.labels(ev.stream, ev.fault, ev.event).inc()
            self.sink.emit(ev)
            if ev.event == "raise" and (recorder := self.recorders.get(ev.stream)) is not None:
                recorder.request(ev.id, ev.fault, ev.severity)

    def _publish_status(self) -> None:
        """Changed stream states (retained status topics) out."""
        for name in self.workers:
            status = stream_status(self.workers[name], self.analyzers[name])
            key = (status["state"], str(status["active_alerts"]), str(status.get("muted_until")), status.get("period"))
            if self._last_status.get(name) != key:
                self._last_status[name] = key
                self.sink.status(name, status)

    def _mute(self, mute: Mute) -> None:
        analyzer = self.analyzers.get(mute.stream)
        if analyzer is None:
            log.debug("mute for %s: not a stream of this daemon", mute.stream)
            return
        analyzer.mute_until(time.time() + mute.seconds)
        if mute.seconds > 0:
            log.info("%s: muted for %.0fs (maintenance): no new alerts until then", mute.stream, mute.seconds)
        else:
            log.info("%s: mute lifted", mute.stream)
        self._last_status.pop(mute.stream, None)  # the status (with muted_until) goes out again

    def _rebaseline(self, stream: str) -> None:
        analyzer = self.analyzers.get(stream)
        if analyzer is None:
            log.debug("rebaseline for %s: not a stream of this daemon", stream)
            return
        analyzer.rebaseline()
        log.info("%s: an operator accepted the current picture as the stream's normal (rebaseline)", stream)

    def _acknowledge(self, ack: Ack) -> None:
        analyzer = self.analyzers.get(ack.stream)
        if analyzer is None:
            # Another daemon's stream (a shard of the same camera list, on the same broker).
            log.debug("ack for %s/%s: not a stream of this daemon", ack.stream, ack.alert_id)
        elif analyzer.alerts.acknowledge(ack.alert_id):
            log.info("%s: alert %s acknowledged by an operator", ack.stream, ack.alert_id)
            if analyzer.alerts.fault_of(ack.alert_id) == Moved.name:
                self._rebaseline(ack.stream)  # acknowledging a re-aimed camera accepts its new view
        else:
            log.warning("ack for %s/%s: no such active alert", ack.stream, ack.alert_id)
