"""Pacing of repeated attempts: a per-minute cap (the alert engine's raise cap, the VLM
escalation's call cap), capped exponential backoff (reconnecting cameras, retried deliveries),
and log throttling for lasting failures."""

from __future__ import annotations

import random
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


class Backoff:
    """Capped exponential backoff with jitter, so many cameras (or senders) do not retry in lockstep."""

    def __init__(self, initial_s: float, max_s: float, jitter: float, rng: random.Random | None = None) -> None:
        self.initial_s, self.max_s, self.jitter = initial_s, max_s, jitter
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        base = min(self.max_s, self.initial_s * (2**self.attempt))
        self.attempt += 1
        return max(0.0, base * (1 + self._rng.uniform(-self.jitter, self.jitter)))

    def reset(self) -> None:
        self.attempt = 0
