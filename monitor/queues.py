"""Bounded hand-off between stages: one small queue per stream, served round-robin.

A slow consumer never makes memory grow: a full stream queue drops its oldest item (live
mode) or makes the producer wait (offline analysis, where every frame must be looked at).
One stream flooding its queue cannot starve the others.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class StreamMux(Generic[T]):
    def __init__(self, maxsize: int, block_when_full: bool = False) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self.block_when_full = block_when_full
        self._queues: dict[Hashable, deque[T]] = {}
        self._order: deque[Hashable] = deque()  # round-robin order of non-empty queues
        self._dropped: dict[Hashable, int] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._woken = False

    def put(self, key: Hashable, item: T, timeout: float | None = None, maxsize: int | None = None) -> bool:
        """Queue an item for key (at most ``maxsize`` for this key, the mux's own if None).
        Returns False if it could not be queued (closed, or timed out)."""
        limit = maxsize or self.maxsize
        with self._cond:
            q = self._queues.setdefault(key, deque())
            if self.block_when_full and not self._cond.wait_for(lambda: self._closed or len(q) < limit, timeout):
                return False
            if self._closed:
                return False
            if len(q) >= limit:
                q.popleft()
                self._dropped[key] = self._dropped.get(key, 0) + 1
            q.append(item)
            if key not in self._order:
                self._order.append(key)
            self._cond.notify_all()
            return True

    def discard(self, key: Hashable) -> None:
        """Forget a key and whatever is queued for it (a stream removed by a reload)."""
        with self._cond:
            self._queues.pop(key, None)
            self._dropped.pop(key, None)
            if key in self._order:
                self._order.remove(key)

    def get(self, timeout: float | None = None) -> tuple[Hashable, T] | None:
        """The next item, taking streams in turn; None on timeout or when closed and empty."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._order or self._closed or self._woken, timeout):
                return None
            self._woken = False
            if not self._order:
                return None
            key = self._order.popleft()
            q = self._queues[key]
            item = q.popleft()
            if q:
                self._order.append(key)
            self._cond.notify_all()
            return key, item

    def wake(self) -> None:
        """Make a waiting get() return now (e.g. a producer finished), even with nothing queued."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def dropped(self, key: Hashable) -> int:
        with self._cond:
            return self._dropped.get(key, 0)

    def depth(self, key: Hashable) -> int:
        with self._cond:
            return len(self._queues.get(key, ()))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
