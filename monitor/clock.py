"""Stream-time helpers with no dependencies, so checks, sampling and the pipeline can share them
without importing the config (which imports every check to build its schema)."""

from __future__ import annotations


class Interval:
    """Due at most once per ``every_s`` of stream time (costly work: scores, reports). A clock that
    jumps backwards (a new session of the source) restarts it."""

    def __init__(self, every_s: float, first_due_at_start: bool = True) -> None:
        self.every_s = every_s
        self.first_due_at_start = first_due_at_start
        self._next: float | None = None

    def due(self, t: float) -> bool:
        if self._next is None or t < self._next - self.every_s:
            self._next = t if self.first_due_at_start else t + self.every_s
        if t < self._next:
            return False
        self._next = t + self.every_s
        return True
