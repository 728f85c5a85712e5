"""A per-minute cap: how many events fell in the last window, for the alert engine's raise cap
and the VLM escalation's call cap."""

from __future__ import annotations

from collections import deque


class RateWindow:
    """Allows at most ``limit`` events per ``window_s``. A clock that goes backwards (a new
    session of a stream restarts stream time) forgets the events that now lie in its future."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()

    def allows(self, t: float) -> bool:
        while self._times and (t - self._times[0] >= self.window_s or t < self._times[0]):
            self._times.popleft()
        return len(self._times) < self.limit

    def add(self, t: float) -> None:
        self._times.append(t)


def worth_logging(failures: int, every: int = 100) -> bool:
    """The first failure and every ``every``-th after it: a lasting fault shows in the log
    without flooding it (the count goes in the message)."""
    return failures == 1 or failures % every == 0
