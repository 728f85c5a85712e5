"""One kind for every outbound channel (console, JSONL, MQTT, ...): what the pipeline may call on
a sink, and the commands a sink that listens (MQTT) hands back to the pipeline.

Fanout is itself a Sink: it isolates the sinks from each other's failures."""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from monitor.alerts.events import AlertEvent
from monitor.health import Loop
from monitor.ratelimit import worth_logging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ack:
    """An operator acknowledged an active alert of a stream (MQTT ``<prefix>/<stream>/ack``)."""

    stream: str
    alert_id: str


@dataclass(frozen=True)
class Mute:
    """A maintenance window: the stream raises no new alert for ``seconds`` (0 ends it early).
    MQTT ``<prefix>/<stream>/mute`` with a duration ("30m", "2h", "90", "0"), or `vqmon mute`."""

    stream: str
    seconds: float


@dataclass(frozen=True)
class Rebaseline:
    """An operator accepts what a stream shows now as its normal (a camera re-aimed on purpose):
    MQTT ``<prefix>/<stream>/rebaseline``, `vqmon rebaseline STREAM`, or an ack of its ``moved`` alert."""

    stream: str


def parse_duration(text: str) -> float:
    """'90', '90s', '30m', '2h', '1d' -> seconds. ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise ValueError(f"{text!r}: a duration such as 90s, 30m, 2h or 0")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


# What operators can send in through a sink: a dataclass here and a branch where the pipeline
# handles commands.
Command = Ack | Mute | Rebaseline


class Sink(ABC):
    """An outbound channel. ``emit`` gets every alert event; the rest is optional (a file sink
    has no use for status), so it defaults to nothing."""

    name: ClassVar[str]

    @abstractmethod
    def emit(self, event: AlertEvent) -> None: ...

    # The optional hooks below do nothing unless a sink overrides them (B027: on purpose).
    def status(self, stream: str, status: dict[str, Any]) -> None:  # noqa: B027
        """A stream's state changed (up/down, active alerts, acknowledgements)."""

    def stats(self, snapshot: dict[str, dict[str, Any]]) -> None:  # noqa: B027
        """Periodic per-stream counters and quality scores."""

    def subscribe(self, deliver: Callable[[Command], None]) -> None:  # noqa: B027
        """Hand operators' commands to ``deliver`` from now on (called from the sink's own
        thread: ``deliver`` must be thread-safe). Sinks that cannot receive ignore it."""

    def close(self) -> None:  # noqa: B027
        """Flush and release; called once at shutdown."""

    def loops(self) -> list[Loop]:
        """The sink's own threads, for the daemon's health check (none by default)."""
        return []

    def backlog(self) -> dict[str, int]:
        """Messages waiting to go out, by sink name (sinks without an outbox have none)."""
        return {}


class Fanout(Sink):
    name = "fanout"

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

    def _each(self, what: str, call: Callable[[Sink], None]) -> None:
        for sink in self.sinks:
            try:
                call(sink)
            except Exception as exc:
                log.error("sink %s failed in %s: %s", sink.name, what, exc)

    def status(self, stream: str, status: dict[str, Any]) -> None:
        self._each("status", lambda sink: sink.status(stream, status))

    def stats(self, snapshot: dict[str, dict[str, Any]]) -> None:
        self._each("stats", lambda sink: sink.stats(snapshot))

    def subscribe(self, deliver: Callable[[Command], None]) -> None:
        self._each("subscribe", lambda sink: sink.subscribe(deliver))

    def loops(self) -> list[Loop]:
        return [lp for s in self.sinks for lp in s.loops()]

    def backlog(self) -> dict[str, int]:
        return {k: v for s in self.sinks for k, v in s.backlog().items()}

    def close(self) -> None:
        self._each("close", lambda sink: sink.close())
