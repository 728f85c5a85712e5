"""Per-stream capture counters, written by the capture thread and read by everyone else."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

StreamState = Literal["starting", "up", "down", "finished"]


@dataclass
class CaptureStats:
    # Plain attribute writes from one thread and reads from others are safe under the GIL;
    # readers only ever need a recent value, not a consistent snapshot.
    state: StreamState = "starting"
    frames_decoded: int = 0
    frames_sampled: int = 0
    decode_errors: int = 0
    reconnects: int = 0
    fps: float = 0.0
    last_frame_wall: float | None = None
    last_stream_time: float | None = None
    last_error: str | None = None
    down_since: float | None = None
    total_frames: int | None = None  # files only, when the container knows it

    def mark_frame(self, wall: float, stream_time: float) -> None:
        if self.last_frame_wall is not None:
            dt = wall - self.last_frame_wall
            if dt > 0:
                inst = 1.0 / dt
                self.fps = inst if self.fps == 0 else 0.9 * self.fps + 0.1 * inst
        self.last_frame_wall = wall
        self.last_stream_time = stream_time
        self.frames_decoded += 1

    def seconds_since_frame(self, now: float | None = None) -> float | None:
        if self.last_frame_wall is None:
            return None
        return (now if now is not None else time.time()) - self.last_frame_wall

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fps"] = round(self.fps, 2)
        return d
