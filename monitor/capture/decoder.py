"""The interface every decoder backend offers to the capture thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np


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


class Decoder(Protocol):
    nominal_fps: float | None
    total_frames: int | None
    decode_errors: int

    def frames(self) -> Iterator[DecodedFrame]:
        """Decoded frames until the source ends (return) or fails (raise SourceError)."""
        ...

    def close(self) -> None: ...
