"""Bounded hand-off between stages: one small queue per stream, served round-robin.

A slow consumer never makes memory grow: a full stream queue drops its oldest item (live
mode) or makes the producer wait (offline analysis, where every frame must be looked at).
One stream flooding its queue cannot starve the others.

Live, the mux can also hold a ``total`` over all streams. Past its limit a box serves each
stream about as often as it can and every queue stays full: how many items are dropped a second
is set by the consumer's pace, not by the queues' length, and what longer queues add is memory
and staleness (a sampled frame holds its full-size picture). Past ``total`` the oldest item
waiting, whichever stream it is from, is dropped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class StreamMux(Generic[T]):
    def __init__(self, maxsize: int, block_when_full: bool = False, total: int | None = None) -> None:
        """``total`` (live mode only): at most this many items waiting over all keys, counting
        those put with the mux's own ``maxsize``; an item put with its own limit (a stream's
        sound, small and kept whole) neither counts nor is dropped for it."""
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self.block_when_full = block_when_full
        self.total: int | None = None
        self._counted = 0  # items waiting put with the mux's own maxsize (what total counts)
        self._seq = 0
        # Per key: (arrival number, counts towards total, item), oldest first.
        self._queues: dict[Hashable, deque[tuple[int, bool, T]]] = {}
        self._order: deque[Hashable] = deque()  # round-robin order of non-empty queues
        self._dropped: dict[Hashable, int] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._woken = False
        self.set_total(total)

    def put(self, key: Hashable, item: T, timeout: float | None = None, maxsize: int | None = None) -> bool:
        """Queue an item for key (at most ``maxsize`` for this key, the mux's own if None).
        Returns False if it could not be queued (closed, or timed out)."""
        limit = maxsize or self.maxsize
        counts = maxsize is None
        with self._cond:
            q = self._queues.setdefault(key, deque())
            if self.block_when_full and not self._cond.wait_for(lambda: self._closed or len(q) < limit, timeout):
                return False
            if self._closed:
                return False
            if len(q) >= limit:
                self._drop_oldest(key, keep_turn=True)
            self._seq += 1
            q.append((self._seq, counts, item))
            self._counted += counts
            if key not in self._order:
                self._order.append(key)
            while self.total is not None and self._counted > self.total:
                self._drop_oldest(self._oldest_counted())
            self._cond.notify_all()
            return True

    def set_total(self, total: int | None) -> None:
        """A new budget over all keys (the number of streams changed); items already waiting
        past it are dropped as the next ones arrive."""
        if total is not None and (total < 1 or self.block_when_full):
            raise ValueError("total must be >= 1, and only a live (dropping) mux has one")
        with self._cond:
            self.total = total

    def _drop_oldest(self, key: Hashable, keep_turn: bool = False) -> None:
        """Drop ``key``'s oldest item; ``keep_turn``: an item is about to take its place."""
        q = self._queues[key]
        _seq, counted, _item = q.popleft()
        self._counted -= counted
        self._dropped[key] = self._dropped.get(key, 0) + 1
        if not q and not keep_turn:
            self._order.remove(key)

    def _oldest_counted(self) -> Hashable:
        """The key whose head is the oldest item that counts towards total (one look per key:
        every key's items count alike, so its head is its oldest counted one)."""
        heads = ((q[0][0], k) for k, q in self._queues.items() if q and q[0][1])
        return min(heads, key=lambda h: h[0])[1]

    def discard(self, key: Hashable) -> None:
        """Forget a key and whatever is queued for it (a stream removed by a reload)."""
        with self._cond:
            q = self._queues.pop(key, None)
            self._counted -= sum(counted for _seq, counted, _item in q or ())
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
            _seq, counted, item = q.popleft()
            self._counted -= counted
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
