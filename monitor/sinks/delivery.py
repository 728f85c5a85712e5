"""Zero-loss delivery for sinks that send one message at a time (webhook, notifications): every
message is written to a persistent outbox first (monitor/sinks/outbox.py), then a thread sends
them in order and removes each only once it went through. A failure that may pass (a timeout,
HTTP 5xx or 429, a refused connection) is retried with capped exponential backoff, across
restarts if need be; one that cannot (HTTP 4xx: a wrong URL or secret) is dropped, counted and
logged, so one bad message does not block the rest forever."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from monitor.health import Beat, Loop
from monitor.ratelimit import Backoff, worth_logging
from monitor.sinks.base import Sink
from monitor.sinks.outbox import Outbox, OutboxMessage

log = logging.getLogger(__name__)

BACKOFF_S = (1.0, 60.0)  # first retry, cap


class DeliveryError(Exception):
    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class OutboxDelivery:
    def __init__(
        self, name: str, path: Path, send: Callable[[OutboxMessage], None], max_messages: int, timeout_s: float
    ) -> None:
        """``send`` delivers one message or raises DeliveryError."""
        self.name = name
        self.outbox = Outbox(path, max_messages, name)
        self._send = send
        self._timeout_s = timeout_s
        self.sent = 0
        self.failed = 0  # attempts that failed (each retried or dropped)
        self.dropped = 0  # messages given up on (permanent errors)
        self.beat = Beat()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._backoff = Backoff(BACKOFF_S[0], BACKOFF_S[1], 0.2)
        if len(self.outbox):
            log.info("%s: %d message(s) from before the restart waiting to go out", name, len(self.outbox))
        self._thread = threading.Thread(target=self._run, name=f"{name}-delivery", daemon=True)
        self._thread.start()

    def add(self, topic: str, payload: bytes) -> None:
        self.outbox.add(topic, payload)  # on disk before anything else happens
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.beat()
            batch = self.outbox.pending(0, 1)
            if not batch:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            msg = batch[0]
            try:
                self._send(msg)
            except Exception as exc:  # a bug in a sender must not end delivery: retried like a failure
                self._failed(msg, exc)
                continue
            if self._backoff.attempt:
                log.info("%s: delivering again", self.name)
            self._backoff.reset()
            self.sent += 1
            self.outbox.remove(msg.seq)

    def _failed(self, msg: OutboxMessage, exc: Exception) -> None:
        self.failed += 1
        if isinstance(exc, DeliveryError) and not exc.retry:
            self.dropped += 1
            self.outbox.remove(msg.seq)
            log.error("%s: message dropped, it cannot be delivered: %s", self.name, exc)
            return
        delay = self._backoff.next_delay()
        if not isinstance(exc, DeliveryError):
            log.error("%s: unexpected delivery error", self.name, exc_info=exc)
        elif worth_logging(self.failed):
            log.warning("%s: delivery failing (%s); retrying in %.0fs, %d waiting",
                        self.name, exc, delay, len(self.outbox))  # fmt: skip
        self._stop.wait(delay)

    def loops(self) -> list[Loop]:
        # One delivery may take its timeout; a backoff wait is at most the cap.
        allowed = self._timeout_s + self._backoff.max_s + 30
        return [Loop(f"{self.name}-delivery", self.beat, allowed, self._thread.is_alive())]

    def close(self, flush_s: float = 5.0) -> None:
        """Give what is waiting a moment to go out; the rest stays in the outbox for next time."""
        deadline = time.monotonic() + flush_s
        while len(self.outbox) and self._backoff.attempt == 0 and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._thread.join(self._timeout_s + 1)
        if len(self.outbox):
            log.info("%s: %d message(s) kept for the next start", self.name, len(self.outbox))
        self.outbox.close()


class DeliveringSink(Sink):
    """A sink that sends through an OutboxDelivery (``self.delivery``): its thread is in the
    health check, its outbox depth in /metrics, and closing flushes it."""

    delivery: OutboxDelivery

    def loops(self) -> list[Loop]:
        return self.delivery.loops()

    def backlog(self) -> dict[str, int]:
        return {self.name: len(self.delivery.outbox)}

    def close(self) -> None:
        self.delivery.close()
