"""The escalation worker: its own thread and bounded queue, so a slow or dead VLM never delays
capture, checks, scoring or the alerts themselves. Each diagnosis comes back as an `update` of the
alert it belongs to."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.escalation.client import VlmClient, VlmError
from monitor.health import Beat
from monitor.ratelimit import RateWindow

log = logging.getLogger(__name__)

SENT_IDS_KEPT = 4096  # an alert is re-submitted within moments of its raise, never thousands of alerts later


@dataclass
class EscalationRequest:
    alert_id: str
    stream: str
    fault: str
    stream_time: float
    image: np.ndarray
    context: dict[str, Any]


@dataclass
class EscalationResult:
    request: EscalationRequest
    diagnosis: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class EscalationCounters:
    sent: int = 0
    diagnosed: int = 0
    failed: int = 0
    skipped_queue_full: int = 0
    skipped_rate_limit: int = 0
    skipped_duplicate: int = 0
    unexpected: int = 0  # failures the client did not foresee: each still becomes a diagnosis_error
    restarts: int = 0  # the worker loop itself failed and was restarted
    last_errors: deque[str] = field(default_factory=lambda: deque(maxlen=5))


class EscalationWorker:
    """`concurrency` threads take requests from one bounded queue."""

    def __init__(
        self,
        client: VlmClient,
        deliver: Callable[[EscalationResult], None],
        queue_size: int = 16,
        min_interval_s: float = 300.0,
        max_calls_per_minute: int = 10,
        concurrency: int = 1,
    ) -> None:
        """``deliver``: where each diagnosis or failure goes (the analysis loop's inbox;
        called from the worker threads, so thread-safe)."""
        self.client = client
        self._deliver = deliver
        self.concurrency = concurrency
        self._threads: list[threading.Thread] = []
        self.inbox: queue.Queue[EscalationRequest] = queue.Queue(maxsize=queue_size)
        self.min_interval_s = min_interval_s
        self.counters = EscalationCounters()
        self._last_call: dict[tuple[str, str], float] = {}
        # Alerts already escalated, newest last; bounded, since the daemon runs for months.
        self._sent_ids: OrderedDict[str, None] = OrderedDict()
        self._calls = RateWindow(max_calls_per_minute)
        self._stop_event = threading.Event()
        self._down = False
        self._in_flight: dict[int, EscalationRequest] = {}  # by thread id: the request it is on
        self.beats = [Beat() for _ in range(concurrency)]

    def submit(self, req: EscalationRequest) -> bool:
        """Queue a request; False (counted) when it is a duplicate, rate limited, or the queue is full."""
        now = time.monotonic()
        key = (req.stream, req.fault)
        if req.alert_id in self._sent_ids:
            self.counters.skipped_duplicate += 1
            return False
        last = self._last_call.get(key)
        if last is not None and now - last < self.min_interval_s:
            self.counters.skipped_rate_limit += 1
            return False
        if not self._calls.allows(now):
            self.counters.skipped_rate_limit += 1
            return False
        try:
            self.inbox.put_nowait(req)
        except queue.Full:
            self.counters.skipped_queue_full += 1
            return False
        self._last_call[key] = now
        self._calls.add(now)
        self._sent_ids[req.alert_id] = None
        if len(self._sent_ids) > SENT_IDS_KEPT:
            self._sent_ids.popitem(last=False)
        return True

    @property
    def threads(self) -> list[threading.Thread]:
        return list(self._threads)

    def start(self) -> None:
        for i in range(self.concurrency):
            t = threading.Thread(target=self.run, args=(self.beats[i],), name=f"vlm-escalation-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop_event.set()

    def drain(self, timeout_s: float) -> list[EscalationRequest]:
        """At shutdown: let queued and in-flight calls finish for up to ``timeout_s``, then stop.
        Returns the requests that did not finish (the caller records them as undiagnosed)."""
        deadline = time.monotonic() + timeout_s
        while (self.inbox.qsize() or self._in_flight) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop_event.set()
        left = list(self._in_flight.values())
        while True:
            try:
                left.append(self.inbox.get_nowait())
            except queue.Empty:
                return left

    def run(self, beat: Beat | None = None) -> None:
        """One worker thread. Whatever escapes a request's handling is logged, counted and the
        worker carries on: a dead escalation thread would leave every later alert without a
        diagnosis and without a diagnosis_error."""
        while not self._stop_event.is_set():
            try:
                self._serve(beat or Beat())
            except Exception:
                self.counters.restarts += 1
                log.exception("VLM escalation worker failed (restart %d); carrying on", self.counters.restarts)
                self._stop_event.wait(1.0)

    def _serve(self, beat: Beat) -> None:
        while not self._stop_event.is_set():
            beat()
            try:
                req = self.inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            self.counters.sent += 1
            me = threading.get_ident()
            self._in_flight[me] = req  # until its result is delivered: drain() waits for it
            try:
                self._handle(req)
            finally:
                self._in_flight.pop(me, None)

    def _handle(self, req: EscalationRequest) -> None:
        try:
            diagnosis = self.client.diagnose(req.image, req.context)
        except Exception as exc:
            self._failed(req, exc)
            return
        if self._down:
            log.info("VLM escalation working again")
            self._down = False
        self.counters.diagnosed += 1
        self._deliver(EscalationResult(req, diagnosis=diagnosis))

    def _failed(self, req: EscalationRequest, exc: Exception) -> None:
        """Any failure of one call becomes that call's diagnosis_error."""
        if isinstance(exc, VlmError):
            err = exc
        else:  # the client did not foresee it (it should have): still this alert's error
            self.counters.unexpected += 1
            log.error("VLM escalation: unexpected %s from the client: %s", type(exc).__name__, exc)
            err = VlmError(f"VLM call failed unexpectedly ({type(exc).__name__}: {exc})")
        self.counters.failed += 1
        self.counters.last_errors.append(str(err))
        if not self._down:  # once per outage, not once per alert
            log.warning("VLM escalation failing: %s; alerts go out without a diagnosis", err)
            self._down = True
        self._deliver(EscalationResult(req, error=str(err)))
        if err.retry_after_s:
            self._stop_event.wait(min(err.retry_after_s, 60.0))
