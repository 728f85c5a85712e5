"""The unit of data that crosses from capture to the checks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# Checks look at a copy about this wide: enough for their statistics, and cheap to make at
# 1080p because the decoder's scaler produces it directly from YUV (no full-size RGB frame).
ANALYSIS_WIDTH = 480


def analysis_size(width: int, height: int, target: int = ANALYSIS_WIDTH) -> tuple[int, int]:
    if width <= target:
        return width, height
    return target, max(2, round(height * target / width / 2) * 2)


@dataclass(slots=True)
class Frame:
    stream: str
    index: int  # decoded-frame counter of this stream (counts frames the sampler skipped too)
    stream_time: float  # seconds, from the stream's own timestamps (monotonic across file loops)
    wall_time: float  # time.time() when the frame was decoded
    keyframe: bool
    small: np.ndarray  # BGR uint8, at most ANALYSIS_WIDTH wide: what the checks look at
    width: int  # native size of the decoded picture
    height: int
    full: Callable[[], np.ndarray] | None = field(default=None, repr=False)
    luma_fn: Callable[[], np.ndarray] | None = field(default=None, repr=False)
    # True when ``luma`` is the decoder's Y plane in studio range (16-235): readers that compare
    # levels with ``small`` (full range) expand it first (FrameView.native_crop).
    luma_limited: bool = False
    decode_errors: int = 0  # the stream's corrupt-packet count when this frame was decoded
    _image: np.ndarray | None = field(default=None, repr=False)
    _luma: np.ndarray | None = field(default=None, repr=False)
    # The analysis loop (snapshots) and the CLIP scorer (tiles) may both ask for ``image``; the
    # decoder's buffer is converted once, by one of them.
    _convert: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def image(self) -> np.ndarray:
        """Full-resolution BGR, converted on first use only (snapshots, native-scale checks, CLIP
        tiles). Safe to call from several threads."""
        if self._image is None:
            with self._convert:
                if self._image is None:
                    self._image = self.full() if self.full is not None else self.small
                    self.full = None  # drop the decoder's buffer once converted
        return self._image

    @property
    def luma(self) -> np.ndarray:
        """Full-resolution luma (uint8), straight from the decoder's Y plane when it has one
        (range: see ``luma_limited``). Checks that need native pixel scale (noise, 8x8 blocking)
        read a crop of it through FrameView.native_crop."""
        if self._luma is None:
            if self.luma_fn is not None:
                self._luma = self.luma_fn()
                self.luma_fn = None
            else:
                import cv2

                self._luma = cv2.cvtColor(self.image, cv2.COLOR_BGR2GRAY)
                self.luma_limited = False
        return self._luma

    @classmethod
    def from_image(
        cls,
        image: np.ndarray,
        stream: str = "test",
        index: int = 0,
        stream_time: float = 0.0,
        wall_time: float = 0.0,
        keyframe: bool = False,
    ) -> Frame:
        """A frame from a BGR array (tests, still images)."""
        import cv2

        h, w = image.shape[:2]
        sw, sh = analysis_size(w, h)
        small = image if (sw, sh) == (w, h) else cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        return cls(stream, index, stream_time, wall_time, keyframe, small, w, h, _image=image)


@dataclass(slots=True)
class AudioChunk:
    """A stretch of a stream's decoded sound, or of its absence, handed from capture to the
    audio checks (which judge it in short blocks, see monitor/checks/base.py's AudioBlock).

    ``samples`` is float32, shape (channels, n), at ``rate`` (the capture resamples every source
    to one rate); None for a stretch of video time with no sound where sound was expected: the
    track vanished, or the stream never had one (``audio_missing``)."""

    stream: str
    stream_time: float  # seconds, on the same timeline as the stream's frames
    duration: float
    rate: int
    samples: np.ndarray | None
    wall_time: float
    reason: str = ""  # why samples is None, in words
