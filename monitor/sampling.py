"""Which decoded frames go on to the checks: every Nth, one per T seconds, or key frames only."""

from __future__ import annotations

from monitor.config import SampleConfig


class Sampler:
    def __init__(self, cfg: SampleConfig) -> None:
        self.cfg = cfg
        self._next_t: float | None = None

    @property
    def keyframes_only(self) -> bool:
        """Tells the decoder to skip non-key frames entirely, so they cost nothing."""
        return self.cfg.keyframes_only

    def accept(self, index: int, stream_time: float, keyframe: bool) -> bool:
        if self.cfg.keyframes_only:
            return keyframe
        if self.cfg.every_s is not None:
            step = self.cfg.every_s
            # Restart the grid when time jumps backwards (a new stream session) or far ahead.
            if self._next_t is None or stream_time < self._next_t - step or stream_time >= self._next_t + step:
                self._next_t = stream_time
            if stream_time >= self._next_t - 1e-6:  # timestamps like 0.49999 count as 0.5
                self._next_t += step
                return True
            return False
        n = self.cfg.every_n or 1
        return index % n == 0
