"""loudness: programme loudness outside its target, or true peaks over the ceiling, measured as
ITU-R BS.1770-4 / EBU R128 define them.

- the sound is K-weighted once, block by block, by pyloudnorm's K-weighting filters (BS.1770's
  high shelf and high pass) with their state carried from block to block, as a meter on a
  running signal does; each block leaves its channel-weighted sum of squares;
- momentary loudness: the last 400 ms, every block (100 ms: the standard's 75 % overlap);
- short-term loudness: the last 3 s; the alert is on it: it must stay outside
  ``target_lufs ± tolerance_lu`` for raise_after_s (a quiet passage or a shout is shorter);
- integrated loudness: the momentary values, which are the standard's 400 ms gating blocks,
  gated (absolute gate -70 LUFS, relative gate -10 LU) over the stream so far (at most
  ``integrated_window_s``); pyloudnorm's integrated_loudness wants the whole signal in memory,
  and a live stream has no end: the tests check the two agree on whole signals (and with
  ffmpeg's ebur128), and that EBU Tech 3341's reference signals read right;
- true peak: the largest sample after 4x oversampling (BS.1770-4 annex 2), in dBTP; the
  condition also holds while an over ``max_true_peak_dbtp`` lies within the last
  ``true_peak_hold_s``, so true peaks over the ceiling that keep coming raise it.
"""

from __future__ import annotations

from collections import deque
from functools import cache
from typing import Any

import numpy as np
from pydantic import Field

from monitor.checks.audio_base import AudioBlock, AudioCheck, dbfs
from monitor.checks.base import CheckConfig, CheckResult
from monitor.checks.registry import register

MOMENTARY_S, SHORT_TERM_S = 0.4, 3.0
ABSOLUTE_GATE_LUFS, RELATIVE_GATE_LU = -70.0, -10.0
CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770: L, R, C, Ls, Rs (as pyloudnorm weighs them)
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


# pyloudnorm and scipy are imported when a stream's sound first arrives: scipy alone adds about
# 80 MB to a daemon's RSS, which every video-only box would pay for nothing.


@cache
def _true_peak_fir() -> np.ndarray:
    """The oversampling low-pass, designed once (resample_poly would design it again on every
    call): its own default for a factor of 4 (it scales the taps by the factor itself)."""
    from scipy.signal import firwin

    return np.asarray(firwin(2 * 10 * OVERSAMPLE + 1, 1.0 / OVERSAMPLE, window=("kaiser", 5.0)))


class KWeighting:
    """pyloudnorm's K-weighting filters for one stream, run on consecutive blocks with their state
    carried (one filter pass over the sound, instead of one per overlapping window)."""

    def __init__(self, rate: int, channels: int) -> None:
        import pyloudnorm

        meter = pyloudnorm.Meter(rate)  # filter_class "K-weighting": BS.1770's two stages
        self.stages = [(f.b, f.a) for f in meter._filters.values()]
        self.state = [np.zeros((channels, max(len(b), len(a)) - 1)) for b, a in self.stages]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        y = x.astype(np.float64)
        for k, (b, a) in enumerate(self.stages):
            y, self.state[k] = lfilter(b, a, y, axis=1, zi=self.state[k])
        return y


@register
class Loudness(AudioCheck):
    name = "loudness"
    Config = LoudnessConfig
    config: LoudnessConfig

    def __init__(self, config: LoudnessConfig) -> None:
        super().__init__(config)
        self._reset(0, 0)

    def _reset(self, rate: int, channels: int) -> None:
        self._rate, self._channels = rate, channels
        self._weighting = KWeighting(rate, channels) if rate else None
        self._gains = np.array(CHANNEL_GAINS[:channels] + (1.0,) * max(0, channels - len(CHANNEL_GAINS)))
        self._energy: deque[tuple[float, int]] = deque()  # (weighted sum of squares, samples) per block, last 3 s
        self._tail = np.zeros((channels, 0), np.float32)
        self._blocks: deque[float] = deque(maxlen=max(1, int(self.config.integrated_window_s / 0.1)))
        self._peaks: deque[tuple[float, float]] = deque()  # (time, true peak dBTP) of recent blocks
        self._momentary: float | None = None
        self._short_term: float | None = None
        self._max_true_peak = float("-inf")

    def evaluate(self, block: AudioBlock) -> CheckResult:
        if block.samples is None:
            return CheckResult(False)  # a gap: the windows go on from the sound after it
        x = block.samples
        if block.rate != self._rate or x.shape[0] != self._channels:
            self._reset(block.rate, x.shape[0])
        assert self._weighting is not None
        rate, t = self._rate, block.stream_time + block.duration
        k = self._weighting(x)
        self._energy.append((float(self._gains @ np.einsum("ij,ij->i", k, k)), x.shape[1]))
        while sum(n for _, n in self._energy) - self._energy[0][1] >= SHORT_TERM_S * rate:
            self._energy.popleft()
        self._peak(np.concatenate((self._tail, x), axis=1), t)
        self._tail = x[:, -PEAK_CONTEXT:]
        momentary = self._window_loudness(MOMENTARY_S)
        if momentary is not None:
            self._momentary = momentary
            self._blocks.append(momentary)
        short_term = self._window_loudness(SHORT_TERM_S)
        if short_term is not None:
            self._short_term = short_term
        return self._judge()

    def _window_loudness(self, seconds: float) -> float | None:
        """Loudness of the last ``seconds`` of sound (None until there is that much)."""
        need = seconds * self._rate - 0.5
        energy, count = 0.0, 0
        for e, n in reversed(self._energy):
            energy, count = energy + e, count + n
            if count >= need:
                return lufs(energy / count)
        return None

    def _peak(self, samples: np.ndarray, t: float) -> None:
        edge = OVERSAMPLE * PEAK_CONTEXT // 2
        if samples.shape[1] > 2 * PEAK_CONTEXT:
            from scipy.signal import resample_poly

            up = resample_poly(samples, OVERSAMPLE, 1, axis=1, window=_true_peak_fir())[:, edge:-edge]
        else:
            up = samples
        tp = float(dbfs(np.abs(up).max(initial=0.0)))
        self._max_true_peak = max(self._max_true_peak, tp)
        self._peaks.append((t, tp))
        while self._peaks and t - self._peaks[0][0] > self.config.true_peak_hold_s:
            self._peaks.popleft()

    def _judge(self) -> CheckResult:
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
