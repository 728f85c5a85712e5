"""loudness: programme loudness outside its target, or true peaks over the ceiling, measured as
ITU-R BS.1770-4 / EBU R128 define them.

- momentary loudness: 400 ms windows, one every block (100 ms: the standard's 75 % overlap);
- short-term loudness: the last 3 s, once a second; the alert is on it: it must stay outside
  ``target_lufs ± tolerance_lu`` for raise_after_s (a quiet passage or a shout is shorter);
- integrated loudness: the gated mean of the momentary blocks (absolute gate -70 LUFS, relative
  gate -10 LU), over the stream so far (at most ``integrated_window_s``);
- true peak: the largest sample after 4x oversampling (BS.1770-4 annex 2), in dBTP; the
  condition also holds while an over ``max_true_peak_dbtp`` lies within the last
  ``true_peak_hold_s``, so true peaks over the ceiling that keep coming raise it.

pyloudnorm measures every window (its K-weighting filters and its gating). The integrated figure
gates the momentary values itself: pyloudnorm's integrated_loudness wants the whole signal in
memory, and a live stream has no end; the momentary windows are the standard's gating blocks,
so the result is the same (a test checks it against pyloudnorm on whole signals)."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pyloudnorm
from pydantic import Field
from scipy.signal import resample_poly

from monitor.checks.audio_base import AudioBlock, AudioCheck, dbfs
from monitor.checks.base import CheckConfig, CheckResult
from monitor.checks.registry import register

MOMENTARY_S, SHORT_TERM_S, SHORT_TERM_EVERY_S = 0.4, 3.0, 1.0
ABSOLUTE_GATE_LUFS, RELATIVE_GATE_LU = -70.0, -10.0
OVERSAMPLE = 4
PEAK_CONTEXT = 16  # samples of the previous block in front of each, so the oversampler's edges are real sound


class LoudnessConfig(CheckConfig):
    # Programmes breathe: a quiet scene or a loud advert break lasts seconds, a level fault lasts.
    raise_after_s: float = Field(10.0, ge=0)
    clear_after_s: float = Field(5.0, ge=0)
    target_lufs: float = Field(-23.0, le=0, description="EBU R128: -23; ATSC A/85: -24; streaming platforms: -14..-16")
    tolerance_lu: float = Field(6.0, gt=0, description="short-term loudness this far from the target is a fault")
    max_true_peak_dbtp: float = Field(-1.0, le=3, description="EBU R128's ceiling")
    # As long as the short-term window: peaks over the ceiling must keep coming for raise_after_s
    # (a hot mix), one stray peak is only reported (max_true_peak_dbtp), and the overs of a
    # clipped stretch end with it (clipping's alert explains them meanwhile).
    true_peak_hold_s: float = Field(3.0, gt=0, description="a true peak over the ceiling holds the condition this long")
    integrated_window_s: float = Field(3600.0, gt=0, description="integrated loudness over at most this much sound")


def lufs(power: float) -> float:
    with np.errstate(divide="ignore"):
        return float(-0.691 + 10.0 * np.log10(power))


def gated_loudness(block_loudness: np.ndarray) -> float:
    """BS.1770-4 integrated loudness of 400 ms gating blocks given as their loudness (LUFS)."""
    kept = block_loudness[block_loudness >= ABSOLUTE_GATE_LUFS]
    if not kept.size:
        return float("-inf")
    relative = lufs(float(np.mean(10.0 ** ((kept + 0.691) / 10.0)))) + RELATIVE_GATE_LU
    kept = kept[kept > relative]
    return lufs(float(np.mean(10.0 ** ((kept + 0.691) / 10.0))))


@register
class Loudness(AudioCheck):
    name = "loudness"
    Config = LoudnessConfig
    config: LoudnessConfig

    def __init__(self, config: LoudnessConfig) -> None:
        super().__init__(config)
        self._rate = 0
        self._reset(0, 0)

    def _reset(self, rate: int, channels: int) -> None:
        self._rate, self._channels = rate, channels
        if rate:
            self._momentary_meter = pyloudnorm.Meter(rate, block_size=MOMENTARY_S)
            self._short_term_meter = pyloudnorm.Meter(rate, block_size=SHORT_TERM_S)
        self._window = np.zeros((0, channels), np.float32)  # the last 3 s, (samples, channels) as pyloudnorm wants
        self._tail = np.zeros((channels, 0), np.float32)
        self._blocks: deque[float] = deque(maxlen=max(1, int(self.config.integrated_window_s / 0.1)))
        self._peaks: deque[tuple[float, float]] = deque()  # (time, true peak dBTP) of recent blocks
        self._momentary: float | None = None
        self._short_term: float | None = None
        self._short_term_due = 0.0
        self._max_true_peak = float("-inf")

    def evaluate(self, block: AudioBlock) -> CheckResult:
        if block.samples is None:
            return CheckResult(False)  # a gap: the windows go on from the sound after it
        x = block.samples
        if block.rate != self._rate or x.shape[0] != self._channels:
            self._reset(block.rate, x.shape[0])
        rate, t = self._rate, block.stream_time + block.duration
        keep = int(SHORT_TERM_S * rate)
        self._window = np.concatenate((self._window, x.T))[-keep:]
        self._peak(np.concatenate((self._tail, x), axis=1), t)
        self._tail = x[:, -PEAK_CONTEXT:]
        n_momentary = int(MOMENTARY_S * rate)
        if len(self._window) >= n_momentary:
            self._momentary = self._measure(self._momentary_meter, self._window[-n_momentary:])
            self._blocks.append(self._momentary)
        if len(self._window) >= keep and t >= self._short_term_due:
            self._short_term = self._measure(self._short_term_meter, self._window)
            self._short_term_due = t + SHORT_TERM_EVERY_S
        return self._judge(t)

    def _peak(self, samples: np.ndarray, t: float) -> None:
        edge = OVERSAMPLE * PEAK_CONTEXT // 2
        up = resample_poly(samples, OVERSAMPLE, 1, axis=1) if samples.shape[1] > 2 * PEAK_CONTEXT else samples
        body = up[:, edge:-edge] if up.shape[1] > 2 * edge else up
        tp = float(dbfs(np.abs(body).max(initial=0.0)))
        self._max_true_peak = max(self._max_true_peak, tp)
        self._peaks.append((t, tp))
        while self._peaks and t - self._peaks[0][0] > self.config.true_peak_hold_s:
            self._peaks.popleft()

    @staticmethod
    def _measure(meter: pyloudnorm.Meter, window: np.ndarray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(meter.integrated_loudness(window))

    def _judge(self, t: float) -> CheckResult:
        c = self.config
        peak = max((p for _, p in self._peaks), default=float("-inf"))
        reasons = []
        st = self._short_term
        # Below the absolute gate there is no programme to measure: silence's business.
        if st is not None and st > ABSOLUTE_GATE_LUFS:
            if st > c.target_lufs + c.tolerance_lu:
                reasons.append(f"too loud: short-term {st:.1f} LUFS, target {c.target_lufs:g} ± {c.tolerance_lu:g}")
            elif st < c.target_lufs - c.tolerance_lu:
                reasons.append(f"too quiet: short-term {st:.1f} LUFS, target {c.target_lufs:g} ± {c.tolerance_lu:g}")
        if peak > c.max_true_peak_dbtp:
            reasons.append(f"true peak {peak:.1f} dBTP over the {c.max_true_peak_dbtp:g} dBTP ceiling")
        if not reasons:
            return CheckResult(False)
        return CheckResult(True, "warning", {**self.figures(), "reason": "; ".join(reasons)})

    def figures(self) -> dict[str, Any]:
        """The stream's loudness now, for the quality report (MQTT ``quality``, `vqmon analyze`)."""

        def r(x: float | None) -> float | None:
            return None if x is None or not np.isfinite(x) else round(x, 2)

        integrated = gated_loudness(np.fromiter(self._blocks, float)) if self._blocks else None
        recent_peak = max((p for _, p in self._peaks), default=None)
        return {
            "momentary_lufs": r(self._momentary),
            "short_term_lufs": r(self._short_term),
            "integrated_lufs": r(integrated),
            "true_peak_dbtp": r(recent_peak),
            "max_true_peak_dbtp": r(self._max_true_peak),
        }
