"""One capture thread per stream: open, decode, sample, hand off; reconnect when the source fails.

The thread never hangs on a dead source: ffmpeg's open/read timeouts end blocked calls, the
decoder gives up when data arrives but no picture decodes for ``stall_timeout_s``, and the
pipeline's watchdog reports ``stream_down`` from ``CaptureStats`` whatever this thread is doing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable

from monitor.capture.audio import AudioCapture
from monitor.capture.decoder import Decoder
from monitor.capture.evidence import EvidenceRecorder
from monitor.capture.opencv_decoder import OpenCVDecoder
from monitor.capture.pyav_decoder import PyAVDecoder
from monitor.capture.stats import CaptureStats
from monitor.capture.urls import SourceKind, classify, mask_credentials
from monitor.config import AudioConfig, CaptureConfig, SampleConfig
from monitor.errors import SourceError
from monitor.frames import AudioChunk, Frame
from monitor.health import Beat
from monitor.queues import StreamMux
from monitor.ratelimit import Backoff
from monitor.sampling import Sampler

log = logging.getLogger(__name__)

# Capture threads run this much nicer than the daemon's other threads. On a box short of CPU the
# one analysis thread then gets the core its checks need before the decoders take the rest: at 200
# key-frame streams on 2 cores it got 0.67 of a core at equal priority and fell behind (733 samples
# dropped in a minute), none dropped with capture at +10. On a box with CPU to spare it changes
# nothing.
CAPTURE_NICE = 10
# A realtime file that falls further behind than this re-anchors its clock instead of bursting.
MAX_REALTIME_LAG_S = 1.0
AUDIO_QUEUE = 16  # chunks of sound buffered per stream (8 s at chunk_s 0.5)


def open_decoder(
    url: str, kind: SourceKind, cfg: CaptureConfig, keyframes_only: bool, audio: AudioConfig | None = None
) -> Decoder:
    if cfg.decoder == "opencv" or kind == "gstreamer":
        return OpenCVDecoder(url, kind, cfg, keyframes_only)
    return PyAVDecoder(url, kind, cfg, keyframes_only, audio)


def _yield_cores_to_checks() -> None:
    """Lower this thread's priority by CAPTURE_NICE (Linux, where a thread has its own nice value;
    threads it starts, ffmpeg's decoder threads, inherit it)."""
    if sys.platform != "linux":
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + CAPTURE_NICE)
    except OSError as exc:  # a sandbox without setpriority: decode at the daemon's priority
        log.debug("could not lower the capture thread's priority: %s", exc)


class CaptureWorker(threading.Thread):
    def __init__(
        self,
        name: str,
        url: str,
        capture: CaptureConfig,
        sample: SampleConfig,
        out: StreamMux[Frame | AudioChunk],
        *,
        retry: bool = True,
        stats: CaptureStats | None = None,
        on_decoded: Callable[[], None] | None = None,
        evidence: EvidenceRecorder | None = None,
        audio: AudioConfig | None = None,
    ) -> None:
        """``audio``: the stream's sound settings; its chunks go to ``out`` under the key
        (name, "audio"), beside the sampled frames under the name."""
        super().__init__(name=f"capture-{name}", daemon=True)
        self.stream_name = name
        self.url = url
        self.cfg = capture
        self.sampler = Sampler(sample)
        self.out = out
        self.retry = retry
        self.stats = stats or CaptureStats()
        self.on_decoded = on_decoded
        self.evidence = evidence  # keeps recent packets for clips around raises (PyAV sources)
        self.audio_cfg = audio if audio is not None and audio.enabled is not False else None
        self.audio = AudioCapture(name, self.audio_cfg, self._put_audio) if self.audio_cfg is not None else None
        self._session_offset: float | None = None
        self._stop_event = threading.Event()
        self._where = mask_credentials(url)
        self._backoff = Backoff(capture.reconnect.initial_s, capture.reconnect.max_s, capture.reconnect.jitter)
        self._index = 0
        self._offset = 0.0  # added to pts so stream_time never runs backwards (loops, reconnects)
        self._last_t: float | None = None
        self._frame_dur = 0.04
        self._anchor: tuple[float, float] | None = None  # (monotonic, stream_time) for realtime pacing
        self.fatal_error: str | None = None  # set when the source can never work (bad scheme)
        self.beat = Beat()  # every frame and every connection attempt

    def stop(self) -> None:
        self._stop_event.set()

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def run(self) -> None:
        _yield_cores_to_checks()
        try:
            self._run()
        finally:
            self.out.wake()  # lets an offline consumer notice at once that this source is done

    def _run(self) -> None:
        try:
            kind = classify(self.url)
        except SourceError as exc:
            self._fail(str(exc), permanent=True)
            return
        while not self.stopping:
            self.beat()
            try:
                ended_cleanly = self._session(kind)
            except SourceError as exc:
                if not self._fail(str(exc), permanent=not self.retry):
                    return
                continue
            except Exception as exc:  # a bug or an unexpected library error must not kill monitoring
                log.exception("%s: unexpected capture error", self.stream_name)
                if not self._fail(f"{self._where}: unexpected error: {type(exc).__name__}: {exc}", not self.retry):
                    return
                continue
            if self.stopping:
                break
            if kind == "file":
                if self.cfg.loop and ended_cleanly:
                    continue
                if not ended_cleanly:
                    self._fail(f"{self._where}: no decodable video frames", permanent=True)
                    return
                self.stats.state = "finished"
                log.info("%s: end of file after %d frames", self.stream_name, self.stats.frames_decoded)
                return
            # A live source that ends (server gone, camera rebooted) is a disconnect, not an end.
            if not self._fail(f"{self._where}: the source closed the stream", permanent=not self.retry):
                return
        if self.stats.state not in ("finished", "down"):
            self.stats.state = "finished"

    def _fail(self, message: str, permanent: bool) -> bool:
        """Record a failure; wait before the next attempt. False when the thread should end."""
        first = self.stats.state != "down"
        self.stats.last_error = message
        if first:
            self.stats.down_since = time.time()
            self.stats.state = "down"
            log.error("%s: %s", self.stream_name, message)
        else:
            log.debug("%s: still down: %s", self.stream_name, message)
        if permanent:
            self.fatal_error = message
            return False
        delay = self._backoff.next_delay()
        log.debug("%s: reconnecting in %.1fs", self.stream_name, delay)
        if self._stop_event.wait(delay):
            return False
        self.stats.reconnects += 1
        return True

    def _session(self, kind: SourceKind) -> bool:
        """Decode one connection (or one pass over a file). True if it delivered at least one frame."""
        decoder = open_decoder(self.url, kind, self.cfg, self.sampler.keyframes_only, self.audio_cfg)
        errors_before = 0
        audio_errors_before = self.stats.audio_decode_errors
        self._session_offset = None
        # Packets (evidence clips) and sound come from the PyAV decoder only.
        pyav = decoder if isinstance(decoder, PyAVDecoder) else None
        if self.audio is not None:
            if pyav is None and self.audio.cfg.enabled is True:
                log.warning("%s: the OpenCV decoder reads no sound; use capture.decoder: pyav", self.stream_name)
            self.audio.start_session(pyav is not None and pyav.audio_stream is not None, self._audio_clock)
        try:
            if decoder.nominal_fps:
                self._frame_dur = 1.0 / decoder.nominal_fps
            if kind == "file" and self.stats.total_frames is None:
                self.stats.total_frames = decoder.total_frames
            got_frame = False
            sink = None
            if self.evidence is not None and pyav is not None:
                self.evidence.start_session(pyav.stream)
                sink = self.evidence.on_packet
            audio_sink = self.audio.on_frame if self.audio is not None else None
            frames = pyav.frames(sink, audio_sink) if pyav is not None else decoder.frames()
            for raw in frames:
                if self.stopping:
                    break
                pts = raw.pts_time
                if self._session_offset is None:
                    # Continue the timeline after a loop or reconnect instead of jumping back.
                    start = pts if pts is not None else 0.0
                    if self._last_t is not None and start + self._offset <= self._last_t:
                        self._offset = self._last_t + self._frame_dur - start
                    self._session_offset = self._offset
                if pts is None:
                    t = (self._last_t + self._frame_dur) if self._last_t is not None else 0.0
                else:
                    t = pts + self._session_offset
                if self.cfg.realtime and kind == "file":
                    self._pace(t)
                now = time.time()
                self.beat()
                self.stats.mark_frame(now, t)
                self.stats.decode_errors += decoder.decode_errors - errors_before
                errors_before = decoder.decode_errors
                if pyav is not None:
                    self.stats.audio_decode_errors = audio_errors_before + pyav.audio_decode_errors
                if not got_frame:
                    got_frame = True
                    if self.stats.state == "down":
                        log.info(
                            "%s: frames flowing again after %.1fs",
                            self.stream_name,
                            now - (self.stats.down_since or now),
                        )
                    self.stats.state = "up"
                    self.stats.down_since = None
                    self.stats.last_error = None
                    self._backoff.reset()
                if self.sampler.accept(self._index, t, raw.keyframe):
                    frame = raw.to_frame(self.stream_name, self._index, t, now, self.stats.decode_errors)
                    self.stats.frames_sampled += 1
                    self.out.put(self.stream_name, frame)
                if self.audio is not None:
                    self.audio.on_video(t)
                self._index += 1
                self._last_t = t
                if self.on_decoded is not None:
                    self.on_decoded()
            self.stats.decode_errors += decoder.decode_errors - errors_before
            return got_frame
        finally:
            if self.audio is not None:
                self.audio.flush()
            if self.evidence is not None:
                self.evidence.end_session()
            decoder.close()

    def _audio_clock(self, pts: float) -> float | None:
        """A sound timestamp of this session on the stream's timeline (None before the first frame)."""
        return None if self._session_offset is None else pts + self._session_offset

    def _put_audio(self, chunk: AudioChunk) -> None:
        # Sound keeps its own, longer queue: its chunks are small, and a gap in it is a fault.
        self.out.put((self.stream_name, "audio"), chunk, maxsize=AUDIO_QUEUE)

    def _pace(self, t: float) -> None:
        """Wait until stream time ``t`` is due. The anchor outlives a session: a looped file (a
        one-frame clip, a still image) goes on from where the last pass ended instead of
        starting a new clock, whose first frame would never wait."""
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = (now, t)
            return
        due = self._anchor[0] + (t - self._anchor[1])
        if due - now > 0:
            self._stop_event.wait(due - now)
        elif now - due > MAX_REALTIME_LAG_S:
            self._anchor = (now, t)  # fell far behind (a slow box): re-anchor instead of bursting
