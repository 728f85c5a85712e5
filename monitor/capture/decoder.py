"""The interface every decoder backend offers to the capture thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from monitor.frames import Frame


@dataclass(slots=True)
class DecodedFrame:
    pts_time: float | None  # seconds; None when the stream gave no timestamp
    keyframe: bool
    width: int
    height: int
    # Pixels are produced only for frames the sampler keeps: a small BGR copy for the checks,
    # and the full-size BGR image on demand.
    small: Callable[[], np.ndarray]
    full: Callable[[], np.ndarray]
    luma: Callable[[], np.ndarray] | None = None  # native Y plane, where the format has one
    luma_limited: bool = True  # Y in studio range (16-235), as most video is; False for yuvj/JPEG

    def to_frame(self, stream: str, index: int, stream_time: float, wall_time: float, decode_errors: int) -> Frame:
        """The one way a decoded picture becomes a ``Frame``: capture, benchmarks and tests all
        build frames here, so the checks see in tests what they see in the daemon."""
        return Frame(
            stream,
            index,
            stream_time,
            wall_time,
            self.keyframe,
            self.small(),
            self.width,
            self.height,
            full=self.full,
            luma_fn=self.luma,
            luma_limited=self.luma is not None and self.luma_limited,
            decode_errors=decode_errors,
        )


class Decoder(Protocol):
    nominal_fps: float | None
    total_frames: int | None
    decode_errors: int

    def frames(self) -> Iterator[DecodedFrame]:
        """Decoded frames until the source ends (return) or fails (raise SourceError)."""
        ...

    def close(self) -> None: ...
