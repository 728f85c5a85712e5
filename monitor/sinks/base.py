"""A sink receives every alert event. Fanout isolates sinks from each other's failures."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from monitor.alerts.events import AlertEvent
from monitor.ratelimit import worth_logging

log = logging.getLogger(__name__)


class Sink(Protocol):
    name: str

    def emit(self, event: AlertEvent) -> None: ...

    def close(self) -> None: ...


class Fanout:
    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self.failures: dict[str, int] = {}

    def emit(self, event: AlertEvent) -> None:
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception as exc:  # one broken sink must not stop the others from getting the alert
                n = self.failures[sink.name] = self.failures.get(sink.name, 0) + 1
                if worth_logging(n):
                    log.error(
                        "sink %s failed to take alert %s (%s failures so far): %s",
                        sink.name,
                        event.id,
                        n,
                        exc,
                    )

    def _each(self, method: str, *args: Any) -> list[Any]:
        """Call an optional sink method (status, stats, take_acks) on the sinks that have it."""
        out = []
        for sink in self.sinks:
            fn = getattr(sink, method, None)
            if fn is None:
                continue
            try:
                out.append(fn(*args))
            except Exception as exc:
                log.error("sink %s failed in %s: %s", sink.name, method, exc)
        return out

    def status(self, stream: str, status: dict[str, Any]) -> None:
        """A stream's state changed (up/down, active alerts, acknowledgements)."""
        self._each("status", stream, status)

    def stats(self, snapshot: dict[str, dict[str, Any]]) -> None:
        """Periodic per-stream counters and quality scores."""
        self._each("stats", snapshot)

    def take_acks(self) -> list[tuple[str, str]]:
        """(stream, alert id) acknowledgements that operators sent since the last call."""
        return [a for acks in self._each("take_acks") for a in acks]

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                log.error("sink %s did not close cleanly: %s", sink.name, exc)
