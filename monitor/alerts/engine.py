"""Per (stream, fault) hysteresis: raise after a condition holds, clear after it is gone.

Time is whatever clock the caller passes: stream time for picture faults (so recorded files
analysed faster than real time behave like live streams), wall time for ``stream_down``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from monitor.alerts.events import AlertEvent, EventKind, Severity


@dataclass(slots=True)
class Timing:
    raise_after_s: float
    clear_after_s: float


class FaultTracker:
    """States: idle -> pending (condition seen) -> active (raised) -> clearing -> idle."""

    def __init__(self, stream: str, source: str, fault: str, timing: Timing) -> None:
        self.stream, self.source, self.fault, self.timing = stream, source, fault, timing
        self.alert_id: str | None = None
        self.severity: Severity = "warning"
        self._pending_since: float | None = None
        self._absent_since: float | None = None
        self._last_t: float | None = None

    @property
    def active(self) -> bool:
        return self.alert_id is not None

    def observe(
        self,
        present: bool,
        t: float,
        severity: Severity = "warning",
        measurements: dict[str, Any] | None = None,
        wall_time: float | None = None,
        stream_time: float | None = None,
    ) -> AlertEvent | None:
        """Feed one observation at time t (the clock the timings use). stream_time, when the
        clock is not the stream's own (stream_down runs on wall time), is what events report."""
        if self._last_t is not None and t < self._last_t:
            # The clock went backwards (a new session of the source): restart the timers.
            self._pending_since = t if self._pending_since is not None else None
            self._absent_since = t if self._absent_since is not None else None
        self._last_t = t
        m = measurements or {}
        st = t if stream_time is None else stream_time
        if not self.active:
            if not present:
                self._pending_since = None
                return None
            if self._pending_since is None:
                self._pending_since = t
            if t - self._pending_since >= self.timing.raise_after_s:
                self.alert_id = str(uuid.uuid4())
                self.severity = severity
                self._absent_since = None
                return self._event("raise", st, m, wall_time)
            return None
        if present:
            self._absent_since = None
            if severity != self.severity:
                self.severity = severity
                return self._event("update", st, m, wall_time)
            return None
        if self._absent_since is None:
            self._absent_since = t
        if t - self._absent_since >= self.timing.clear_after_s:
            event = self._event("clear", st, m, wall_time)
            self.alert_id = None
            self._pending_since = None
            self._absent_since = None
            return event
        return None

    def _event(self, kind: EventKind, t: float, m: dict[str, Any], wall_time: float | None) -> AlertEvent:
        assert self.alert_id is not None
        return AlertEvent(
            id=self.alert_id,
            stream=self.stream,
            source=self.source,
            fault=self.fault,
            event=kind,
            severity=self.severity,
            stream_time=t,
            wall_time=wall_time if wall_time is not None else time.time(),
            measurements=dict(m),
        )


class StreamAlerts:
    """All fault trackers of one stream."""

    def __init__(self, stream: str, source: str) -> None:
        self.stream, self.source = stream, source
        self._trackers: dict[str, FaultTracker] = {}

    def tracker(self, fault: str, timing: Timing) -> FaultTracker:
        tr = self._trackers.get(fault)
        if tr is None:
            tr = self._trackers[fault] = FaultTracker(self.stream, self.source, fault, timing)
        return tr

    def active_faults(self) -> list[str]:
        return [f for f, tr in self._trackers.items() if tr.active]
