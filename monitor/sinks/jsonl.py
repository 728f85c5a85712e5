"""JSONL sink: one vqmon.alert/1 object per line, appended and flushed per event."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TextIO

from monitor.alerts.events import AlertEvent
from monitor.errors import ConfigError
from monitor.sinks.base import Sink


class JsonlSink(Sink):
    name = "jsonl"

    def __init__(self, path: str | os.PathLike[str] | None = None, stream: TextIO | None = None) -> None:
        self._lock = threading.Lock()
        self._owned = stream is None
        if stream is not None:
            self._f = stream
            self.path = None
            return
        assert path is not None
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the daemon's life
        except OSError as exc:
            raise ConfigError(
                f"sinks.jsonl.path: cannot open {self.path} for appending ({exc.strerror}); choose a writable path"
            ) from None

    def emit(self, event: AlertEvent) -> None:
        line = event.to_json() + "\n"
        with self._lock:
            self._f.write(line)
            self._f.flush()

    def close(self) -> None:
        with self._lock:
            if self._owned:
                self._f.close()
            else:
                self._f.flush()
