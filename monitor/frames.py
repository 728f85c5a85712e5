"""The unit of data that crosses from capture to the checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Frame:
    stream: str
    index: int  # decoded-frame counter of this stream (counts frames the sampler skipped too)
    stream_time: float  # seconds, from the stream's own timestamps (monotonic across file loops)
    wall_time: float  # time.time() when the frame was decoded
    keyframe: bool
    image: np.ndarray  # HxWx3 uint8, BGR (OpenCV order)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
