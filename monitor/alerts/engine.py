"""Per (stream, fault) hysteresis: raise after a condition holds, clear after it is gone.

Time is whatever clock the caller passes: stream time for picture faults (so recorded files
analysed faster than real time behave like live streams), wall time for ``stream_down``.

On top of the hysteresis, two guards keep a flapping stream from flooding operators: a cooldown
after each clear before the same fault may raise again, and a per-stream cap on raises per
minute. A raise held back by either is not lost: the condition stays pending and raises as soon
as the guard allows, if it still holds. Held-back raises are counted.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from monitor.alerts.events import AlertEvent, EventKind, Severity
from monitor.ratelimit import RateWindow

_RANK = {"warning": 0, "critical": 1}


@dataclass(slots=True)
class Timing:
    raise_after_s: float
    clear_after_s: float


@dataclass(slots=True)
class AlertPolicy:
    cooldown_s: float = 5.0
    max_raises_per_minute: int = 12


class FaultTracker:
    """States: idle -> pending (condition seen) -> active (raised) -> clearing -> idle."""

    def __init__(self, stream: str, source: str, fault: str, timing: Timing, cooldown_s: float = 0.0) -> None:
        self.stream, self.source, self.fault, self.timing = stream, source, fault, timing
        self.cooldown_s = cooldown_s
        self.alert_id: str | None = None
        self.severity: Severity = "warning"
        self.held_back = 0  # raises deferred by cooldown or rate limit
        self.acknowledged = False
        self._pending_since: float | None = None
        self._absent_since: float | None = None
        self._cleared_at: float | None = None
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
        may_raise: bool = True,
        explained: bool = False,
    ) -> AlertEvent | None:
        """Feed one observation at time t (the clock the timings use). stream_time, when the
        clock is not the stream's own (stream_down runs on wall time), is what events report.
        may_raise=False defers a due raise (rate limit, counted as held back); explained=True
        defers it because a root cause present on this frame explains the condition: the wait
        pauses (neither runs nor restarts)."""
        if self._last_t is not None and t < self._last_t:
            # The clock went backwards (a new session of the source): restart the timers.
            self._pending_since = t if self._pending_since is not None else None
            self._absent_since = t if self._absent_since is not None else None
            self._cleared_at = None
        previous_t, self._last_t = self._last_t, t
        m = measurements or {}
        st = t if stream_time is None else stream_time
        if not self.active:
            if not present:
                self._pending_since = None
                return None
            if self._pending_since is None:
                self._pending_since = t
            elif explained and previous_t is not None and t >= previous_t:
                # Time a root cause explains does not count toward the raise (a fade through
                # black is dark partly *because* it is black), nor does it restart the wait.
                self._pending_since += t - previous_t
            if t - self._pending_since < self.timing.raise_after_s:
                return None
            cooling = self._cleared_at is not None and t - self._cleared_at < self.cooldown_s
            if explained:
                return None
            if cooling or not may_raise:
                self.held_back += 1
                return None
            self.alert_id = str(uuid.uuid4())
            self.severity = severity
            self._absent_since = None
            return self._event("raise", st, m, wall_time)
        if present:
            self._absent_since = None
            # Severity only escalates within an episode: a measurement wavering around the
            # critical line must not send an update every frame.
            if _RANK[severity] > _RANK[self.severity]:
                self.severity = severity
                return self._event("update", st, m, wall_time)
            return None
        if self._absent_since is None:
            self._absent_since = t
        if t - self._absent_since >= self.timing.clear_after_s:
            event = self._clear(st, m, wall_time)
            self._cleared_at = t
            return event
        return None

    def close(self, wall_time: float, reason: str) -> AlertEvent | None:
        """End an active alert now, whatever the condition (its stream stops being monitored)."""
        return self._clear(self._last_t or 0.0, {"reason": reason}, wall_time) if self.active else None

    def _clear(self, t: float, m: dict[str, Any], wall_time: float | None) -> AlertEvent:
        event = self._event("clear", t, m, wall_time)
        self.alert_id = None
        self.acknowledged = False
        self._pending_since = None
        self._absent_since = None
        return event

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
            acknowledged=self.acknowledged,
        )


class StreamAlerts:
    """All fault trackers of one stream, with its rate limit and suppression counters."""

    def __init__(self, stream: str, source: str, policy: AlertPolicy | None = None) -> None:
        self.stream, self.source = stream, source
        self.policy = policy or AlertPolicy()
        self._trackers: dict[str, FaultTracker] = {}
        self._raises = RateWindow(self.policy.max_raises_per_minute)
        self.suppressed: dict[str, int] = {}  # observations hidden by a root cause, per fault
        self.muted_until = 0.0  # wall clock: a maintenance window holds new raises back until then

    def tracker(self, fault: str, timing: Timing) -> FaultTracker:
        tr = self._trackers.get(fault)
        if tr is None:
            tr = self._trackers[fault] = FaultTracker(self.stream, self.source, fault, timing, self.policy.cooldown_s)
        return tr

    def is_active(self, fault: str) -> bool:
        tr = self._trackers.get(fault)
        return tr is not None and tr.active

    def active_faults(self) -> list[str]:
        return [f for f, tr in self._trackers.items() if tr.active]

    def active_alerts(self) -> list[dict[str, Any]]:
        return [
            {"id": tr.alert_id, "fault": f, "severity": tr.severity, "acknowledged": tr.acknowledged}
            for f, tr in self._trackers.items()
            if tr.active
        ]

    def update_for(self, alert_id: str, wall_time: float, stream_time: float) -> AlertEvent | None:
        """An `update` event of an active alert (for new information such as a diagnosis)."""
        for tr in self._trackers.values():
            if tr.active and tr.alert_id == alert_id:
                return tr._event("update", stream_time, {}, wall_time)
        return None

    def acknowledge(self, alert_id: str) -> bool:
        """Mark an active alert acknowledged; False if no active alert has that id."""
        for tr in self._trackers.values():
            if tr.active and tr.alert_id == alert_id:
                tr.acknowledged = True
                return True
        return False

    def fault_of(self, alert_id: str) -> str | None:
        """The fault of an active alert, by its id."""
        return next((f for f, tr in self._trackers.items() if tr.active and tr.alert_id == alert_id), None)

    def held_back(self) -> dict[str, int]:
        return {f: tr.held_back for f, tr in self._trackers.items() if tr.held_back}

    def close_all(self, wall_time: float, reason: str) -> list[AlertEvent]:
        """Clear every active alert of the stream now (it is no longer monitored)."""
        return [ev for tr in self._trackers.values() if (ev := tr.close(wall_time, reason)) is not None]

    def count_suppressed(self, fault: str) -> None:
        self.suppressed[fault] = self.suppressed.get(fault, 0) + 1

    def observe(
        self,
        fault: str,
        timing: Timing,
        present: bool,
        t: float,
        severity: Severity = "warning",
        measurements: dict[str, Any] | None = None,
        wall_time: float | None = None,
        stream_time: float | None = None,
        rate_limited: bool = True,
        explained: bool = False,
    ) -> AlertEvent | None:
        """``explained``: a root cause present now explains this condition. Its wait pauses: a
        root cause flickering on single frames must not restart it, and the explained time does
        not count toward it; nothing is raised while explained."""
        if explained and present:
            self.count_suppressed(fault)
        may_raise = True
        if rate_limited:
            may_raise = self._raises.allows(t)
        if self.muted_until and (wall_time if wall_time is not None else time.time()) < self.muted_until:
            may_raise = False  # held back, not forgotten: a fault still there when it ends raises
        ev = self.tracker(fault, timing).observe(
            present, t, severity, measurements, wall_time, stream_time, may_raise, explained
        )
        if ev is not None and ev.event == "raise" and rate_limited:
            self._raises.add(t)
        return ev
