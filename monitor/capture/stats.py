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
    audio_decode_errors: int = 0  # broken sound packets, skipped (the picture's are decode_errors)
    reconnects: int = 0
    fps: float = 0.0
    last_frame_wall: float | None = None
    last_stream_time: float | None = None
    last_error: str | None = None
    down_since: float | None = None
    total_frames: int | None = None  # files only, when the container knows it
    _fps_window_start: float | None = None
    _fps_window_frames: int = 0

    def mark_frame(self, wall: float, stream_time: float) -> None:
        # fps over windows of >= 1 s: live sources deliver in bursts, so per-frame rates mislead.
        if self._fps_window_start is None:
            self._fps_window_start = wall
        self._fps_window_frames += 1
        span = wall - self._fps_window_start
        if span >= 1.0:
            self.fps = self._fps_window_frames / span
            self._fps_window_start, self._fps_window_frames = wall, 0
        self.last_frame_wall = wall
        self.last_stream_time = stream_time
        self.frames_decoded += 1

    def seconds_since_frame(self, now: float | None = None) -> float | None:
        if self.last_frame_wall is None:
            return None
        return (now if now is not None else time.time()) - self.last_frame_wall

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        d["fps"] = round(self.fps, 2)
        return d
