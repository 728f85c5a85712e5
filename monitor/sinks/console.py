"""Console sink: one readable line per event."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from monitor.alerts.events import AlertEvent
from monitor.sinks.base import Sink


def format_event(e: AlertEvent) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.wall_time))
    details = " ".join(f"{k}={v}" for k, v in e.measurements.items())
    return (
        f"{stamp} {e.event.upper():<6} {e.severity:<8} {e.stream} {e.fault:<13} "
        f"t={e.stream_time:8.2f}s {details} [{e.id[:8]}]"
    ).rstrip()


class ConsoleSink(Sink):
    name = "console"

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._lock = threading.Lock()

    def emit(self, event: AlertEvent) -> None:
        out = self._out or sys.stdout
        with self._lock:
            out.write(format_event(event) + "\n")
            out.flush()
