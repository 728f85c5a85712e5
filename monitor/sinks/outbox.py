"""A persistent FIFO of messages waiting for the broker's acknowledgement (SQLite, WAL mode).

Every alert is written here before it is published and removed only when the broker has
acknowledged it, so an outage or a crash of the daemon loses nothing: what is left is replayed in
order on the next connection. The outbox is bounded; past the bound the oldest non-critical
messages go first (counted, with a warning).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OutboxMessage:
    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    def __init__(self, path: str | Path, max_messages: int = 100_000, name: str = "mqtt") -> None:
        self.path = Path(path)
        self.name = name  # the sink's config section, for the warning
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_messages = max_messages
        self.evicted = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
            "payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, critical INTEGER NOT NULL)"
        )
        # Kept in memory: COUNT(*) on every insert would cost O(n) with a long outage's backlog.
        self._count = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def add(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, critical: bool = False) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO outbox (topic, payload, qos, retain, critical) VALUES (?, ?, ?, ?, ?)",
                (topic, payload, qos, int(retain), int(critical)),
            )
            seq = int(cur.lastrowid or 0)
            self._count += 1
            if self._count > self.max_messages:
                self._enforce_bound()
            return seq

    def _enforce_bound(self) -> None:
        excess = self._count - self.max_messages
        if excess <= 0:
            return
        # Oldest non-critical first; critical ones only if nothing else is left to drop.
        for critical in (0, 1):
            if excess <= 0:
                break
            cur = self._db.execute(
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE critical = ? ORDER BY seq LIMIT ?)",
                (critical, excess),
            )
            excess -= cur.rowcount
            self._count -= cur.rowcount
            self.evicted += cur.rowcount
        log.warning(
            "%s outbox full (%d messages): dropped the oldest, %d so far; raise sinks.%s.outbox_max_messages",
            self.name,
            self.max_messages,
            self.evicted,
            self.name,
        )

    def pending(self, after_seq: int = 0, limit: int = 100) -> list[OutboxMessage]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload, qos, retain FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [OutboxMessage(int(s), t, bytes(p), int(q), bool(r)) for s, t, p, q, r in rows]

    def remove(self, seq: int) -> None:
        self.remove_many([seq])

    def remove_many(self, seqs: list[int]) -> None:
        """Acknowledged messages, in one transaction."""
        if not seqs:
            return
        with self._lock:
            self._db.execute("BEGIN")
            cur = self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            self._db.execute("COMMIT")
            self._count -= cur.rowcount

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        with self._lock:
            self._db.close()
