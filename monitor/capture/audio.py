"""A stream's sound on its way to the audio checks: decoded frames resampled once to one rate
and layout, cut into chunks with stream time, and stretches of video time without sound marked
as such (the track vanished, or a stream that must have sound has none).

It runs in the capture thread beside the picture: resampling a 48 kHz stereo AAC track costs a
small fraction of decoding its video (`vqmon bench decode`: capture with the sound on / off)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import av
import numpy as np
from av.audio.resampler import AudioResampler

from monitor.config import AudioConfig
from monitor.frames import AudioChunk

log = logging.getLogger(__name__)

GAP_S = 0.1  # a jump of the sound's timestamps by more than this starts a new chunk
MAX_EARLY_S = 5.0  # sound held while the picture's timeline is not known yet (before its first frame)


class AudioCapture:
    """Turns one session's decoded audio frames into AudioChunks for ``out``.

    ``clock`` maps a timestamp of the source to the stream's timeline (which goes on across
    loops and reconnects); it returns None until the picture's first frame has fixed it."""

    def __init__(self, stream: str, cfg: AudioConfig, out: Callable[[AudioChunk], None]) -> None:
        self.stream = stream
        self.cfg = cfg
        self.out = out
        self._clock: Callable[[float], float | None] = lambda pts: None
        self._expected = cfg.enabled is True
        self._has_track = False
        self._resampler: AudioResampler | None = None
        self._parts: list[np.ndarray] = []
        self._held = 0  # samples in _parts
        self._start_pts: float | None = None  # source time of the first sample held
        self._next_pts: float | None = None  # where the next frame should start if contiguous
        self._heard_until: float | None = None  # stream time the sound decoded so far reaches
        self._missing_from: float | None = None  # stream time a stretch without sound is reported from

    def start_session(self, has_track: bool, clock: Callable[[float], float | None]) -> None:
        """A new connection (or pass over a file): its track, and how its timestamps map."""
        self._clock = clock
        self._has_track = has_track
        self._expected = self.cfg.enabled is True or has_track
        self._resampler = None
        self._parts, self._held, self._start_pts, self._next_pts = [], 0, None, None
        # The time the source was down is stream_down's: sound gets its grace again from the
        # session's first picture.
        self._heard_until = self._missing_from = None
        if not has_track and self.cfg.enabled is True:
            log.warning(
                "%s: the stream has no audio track #%d, but audio.enabled is true", self.stream, self.cfg.stream
            )

    def on_frame(self, frame: av.AudioFrame) -> None:
        """One decoded audio frame (from the capture thread)."""
        if self._resampler is None:
            # Every source becomes float at one rate; surround is measured on its stereo downmix
            # (pyloudnorm's channel weights stop at five channels, and LFE must not count).
            layout = "mono" if frame.layout.nb_channels == 1 else "stereo"
            self._resampler = AudioResampler(format="fltp", layout=layout, rate=self.cfg.rate)
        pts = frame.time
        for out in self._resampler.resample(frame):
            samples = out.to_ndarray()
            if pts is not None and self._next_pts is not None and abs(pts - self._next_pts) > GAP_S:
                self.flush()  # a gap or a jump in the sound's timeline: a new chunk starts there
            if self._start_pts is None:
                self._start_pts = pts if pts is not None else (self._next_pts or 0.0)
            self._parts.append(samples)
            self._held += samples.shape[1]
            self._next_pts = self._start_pts + self._held / self.cfg.rate
            pts = None  # a second frame out of one resample call follows the first
            if self._held >= self.cfg.chunk_s * self.cfg.rate:
                self.flush()

    def flush(self) -> None:
        """Hand on the sound held (the end of a chunk, a gap, the end of the session)."""
        if not self._held or self._start_pts is None:
            return
        t = self._clock(self._start_pts)
        if t is None:
            # The picture has not fixed the timeline yet: keep the sound (a few seconds at most).
            if self._held > MAX_EARLY_S * self.cfg.rate:
                drop = self._parts.pop(0)
                self._held -= drop.shape[1]
                self._start_pts += drop.shape[1] / self.cfg.rate
            return
        samples = np.concatenate(self._parts, axis=1) if len(self._parts) > 1 else self._parts[0]
        duration = samples.shape[1] / self.cfg.rate
        self._parts, self._held, self._start_pts = [], 0, None
        self._heard_until = max(self._heard_until or t, t + duration)
        self.out(AudioChunk(self.stream, t, duration, self.cfg.rate, samples, time.time()))

    def on_video(self, t: float) -> None:
        """The picture reached stream time t: sound expected but not heard for a while is missing."""
        if not self._expected:
            return
        # Sound decoded but not handed on yet (less than a chunk) counts as heard.
        held_until = self._clock(self._next_pts) if self._next_pts is not None else None
        if held_until is not None and (self._heard_until is None or held_until > self._heard_until):
            self._heard_until = held_until
        if self._heard_until is None:
            self._heard_until = t  # the first picture: sound has until missing_after_s to come
            return
        if t - self._heard_until <= self.cfg.missing_after_s:
            self._missing_from = None  # the sound keeps up with the picture
            return
        since = self._missing_from if self._missing_from is not None else self._heard_until
        if t - since < self.cfg.chunk_s:
            return
        # The sound held back is all there is before the gap: it goes first, so the checks see
        # the stream's time in order.
        self.flush()
        if not self._has_track:
            reason = f"the stream has no audio track #{self.cfg.stream} (audio.enabled: true expects one)"
        else:
            reason = f"no sound since stream time {self._heard_until:.1f}s while the picture goes on"
        self._missing_from = t
        self.out(AudioChunk(self.stream, since, t - since, self.cfg.rate, None, time.time(), reason))
