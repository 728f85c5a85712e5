"""Is every loop of the daemon still turning? Each long-running loop (capture threads, the
analysis loop, the CLIP scorer, the VLM workers, the MQTT publisher) keeps a `Beat` it touches on
every turn; the health check compares each with how long that loop may legitimately be silent
(a capture thread waits out network timeouts and reconnect backoff, a VLM call its timeout).
systemd's watchdog is pinged only while all are fine, and /healthz says which is not."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Beat:
    """A loop's last sign of life (monotonic seconds). Touched from its own thread, read by others."""

    at: float = field(default_factory=time.monotonic)

    def __call__(self) -> None:
        self.at = time.monotonic()


@dataclass(frozen=True)
class Loop:
    name: str
    beat: Beat
    allowed_s: float  # silence longer than this means the loop is stuck
    alive: bool = True  # its thread is still running


def health(loops: list[Loop], now: float | None = None) -> dict[str, Any]:
    """{"ok": all fine, "loops": {name: {"ok", "silent_s", "allowed_s", "alive"}}}."""
    now = time.monotonic() if now is None else now
    out = {}
    for lp in loops:
        silent = max(0.0, now - lp.beat.at)
        out[lp.name] = {
            "ok": lp.alive and silent <= lp.allowed_s,
            "silent_s": round(silent, 1),
            "allowed_s": lp.allowed_s,
            "alive": lp.alive,
        }
    return {"ok": all(v["ok"] for v in out.values()), "loops": out}
