"""What every audio check is: like a picture check (a fault name, a config, one instance per
stream, behind the same registry), but judging the stream's sound in short blocks."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.checks.base import AnyCheck, CheckResult
from monitor.frames import AudioChunk

SILENT_DB = -200.0  # what a block of digital zeros reads, instead of -inf


def dbfs(amplitude: np.ndarray) -> np.ndarray:
    """Amplitude (1.0 = full scale) in dBFS, digital zero as SILENT_DB."""
    with np.errstate(divide="ignore"):
        return np.maximum(20.0 * np.log10(amplitude), SILENT_DB)


def channel_names(channels: int) -> list[str]:
    if channels == 1:
        return ["mono"]
    if channels == 2:
        return ["left", "right"]
    return [f"channel {i + 1}" for i in range(channels)]


@dataclass(slots=True)
class AudioBlock:
    """One block of a stream's sound (block_s long), or of its absence (samples None)."""

    stream_time: float
    duration: float
    rate: int
    samples: np.ndarray | None  # float32 (channels, n), 1.0 = full scale
    wall_time: float
    reason: str = ""  # why there is no sound, when samples is None

    @property
    def peak(self) -> np.ndarray:
        """Largest absolute sample per channel."""
        assert self.samples is not None
        return np.abs(self.samples).max(axis=1) if self.samples.shape[1] else np.zeros(self.samples.shape[0])


def blocks(chunk: AudioChunk, block_s: float) -> Iterator[AudioBlock]:
    """A chunk cut into blocks of block_s (the last one may be shorter)."""
    if chunk.samples is None:
        n_blocks = max(1, round(chunk.duration / block_s))
        step = chunk.duration / n_blocks
        for i in range(n_blocks):
            yield AudioBlock(chunk.stream_time + i * step, step, chunk.rate, None, chunk.wall_time, chunk.reason)
        return
    n = max(1, round(block_s * chunk.rate))
    total = chunk.samples.shape[1]
    for start in range(0, total, n):
        part = chunk.samples[:, start : start + n]
        yield AudioBlock(
            chunk.stream_time + start / chunk.rate, part.shape[1] / chunk.rate, chunk.rate, part, chunk.wall_time
        )


class AudioCheck(AnyCheck):
    """An audio check: judges each block of sound, in stream order. A block without sound
    (samples None) is audio_missing's business; the other checks report nothing for it."""

    domain = "audio"

    @abstractmethod
    def evaluate(self, block: AudioBlock) -> CheckResult: ...

    def figures(self) -> dict[str, Any]:
        """Figures for the stream's quality report (loudness); most checks have none."""
        return {}
