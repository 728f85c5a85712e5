"""clipping: runs of consecutive samples at full scale, the flat tops a signal gets when it was
driven past the maximum. A single loud sample is a peak; several in a row, again and again,
are distortion a listener hears.

"Full scale" is a level a little under 0 dBFS: after a lossy codec a clipped flat top comes
back as a ripple around full scale, not as exact 1.0s. Programme made to broadcast rules never
gets there (its true peak stays under -1 dBTP)."""

from __future__ import annotations

from collections import deque

import numpy as np
from pydantic import Field

from monitor.checks.audio_base import AudioBlock, AudioCheck, channel_names
from monitor.checks.base import CheckConfig, CheckResult
from monitor.checks.registry import register


class ClippingConfig(CheckConfig):
    raise_after_s: float = Field(1.0, ge=0)
    clear_after_s: float = Field(3.0, ge=0)
    level_dbfs: float = Field(-0.5, le=0, description="samples at or above this are at full scale")
    min_run: int = Field(4, ge=1, description="this many consecutive full-scale samples make one clipped run")
    window_s: float = Field(1.0, gt=0, description="clipped runs are counted over this much sound")
    min_runs: int = Field(3, ge=1, description="...and this many in the window is clipping")


def clipped_runs(samples: np.ndarray, level: float, min_run: int) -> np.ndarray:
    """Per channel, how many runs of at least min_run consecutive samples reach level."""
    hot = np.abs(samples) >= level
    counts = np.zeros(samples.shape[0], dtype=np.int64)
    for ch in np.flatnonzero(hot.any(axis=1)):
        edges = np.diff(np.concatenate(([0], hot[ch].view(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        counts[ch] = int(np.count_nonzero(ends - starts >= min_run))
    return counts


@register
class Clipping(AudioCheck):
    name = "clipping"
    Config = ClippingConfig
    config: ClippingConfig

    def __init__(self, config: ClippingConfig) -> None:
        super().__init__(config)
        self._level = 10.0 ** (config.level_dbfs / 20.0)
        self._recent: deque[tuple[float, np.ndarray]] = deque()  # (block time, runs per channel)

    def evaluate(self, block: AudioBlock) -> CheckResult:
        if block.samples is None:
            self._recent.clear()
            return CheckResult(False)
        c = self.config
        runs = clipped_runs(block.samples, self._level, c.min_run)
        self._recent.append((block.stream_time, runs))
        while self._recent and block.stream_time - self._recent[0][0] >= c.window_s:
            self._recent.popleft()
        per_channel = np.sum([r for _, r in self._recent], axis=0)
        total = int(per_channel.sum())
        if total < c.min_runs:
            return CheckResult(False)
        names = channel_names(len(per_channel))
        return CheckResult(
            True,
            "warning",
            {
                "clipped_runs": total,
                "window_s": c.window_s,
                "channels": [n for n, k in zip(names, per_channel, strict=True) if k],
            },
        )
