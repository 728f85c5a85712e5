"""Decode with PyAV (ffmpeg): RTSP, HTTP/HLS/MJPEG, files and V4L2 cameras."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from monitor.capture.decoder import DecodedFrame
from monitor.capture.urls import LIVE_KINDS, SourceKind, file_path, file_problem, mask_credentials
from monitor.config import AudioConfig, CaptureConfig
from monitor.cores import usable_cores
from monitor.errors import SourceError
from monitor.frames import analysis_size

log = logging.getLogger(__name__)

# Leave PyAV's ffmpeg log callback off (its default): with it on, a frame-threaded decoder's
# worker can block on the GIL inside av_log while closing the codec holds the GIL -> deadlock.
# Corrupt packets are counted (decode_errors) instead of logged.


def describe_av_error(exc: Exception, where: str, cfg: CaptureConfig) -> str:
    """Turn an ffmpeg error into a sentence an operator can act on."""
    text = getattr(exc, "strerror", None) or str(exc)
    if isinstance(exc, av.error.FileNotFoundError | FileNotFoundError):
        return f"{where}: not found (check the path or the stream name on the server)"
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError) or "401" in text:
        return f"{where}: authentication failed (check the user and password in the URL)"
    if isinstance(exc, av.error.HTTPNotFoundError) or "404" in text:
        return f"{where}: stream not found on the server (check the path in the URL)"
    if isinstance(exc, av.error.ConnectionRefusedError | ConnectionRefusedError):
        return f"{where}: connection refused (is the camera/server running, and is the port right?)"
    if isinstance(exc, av.error.ExitError | av.error.TimeoutError | TimeoutError):
        return (
            f"{where}: no answer within {cfg.open_timeout_s:g}s/{cfg.read_timeout_s:g}s "
            "(check the network and URL, or raise capture.open_timeout_s/read_timeout_s)"
        )
    if isinstance(exc, av.error.InvalidDataError):
        return f"{where}: not a readable video ({text}); is it a complete video file or stream?"
    return f"{where}: {type(exc).__name__}: {text}"


class SmallScalers:
    """The analysis copy of a picture, made by swscale, which scales and converts YUV->BGR in one
    pass (far cheaper than a full-size BGR frame). A scaler keeps its SwsContext (a new one per
    frame costs ~7x more), and that context holds line buffers for its source: 1.4 MB for 720p
    (decoding 20 streams: 5.7 MB a stream, 7.1 with a scaler each). Capture threads scale a
    sampled frame about once a second, so they borrow an idle scaler for the call, one kept per
    source size and format, instead of each keeping its own."""

    def __init__(self) -> None:
        self._idle: dict[tuple[int, int, str], list[VideoReformatter]] = {}
        self._lock = threading.Lock()

    def small_bgr(self, f: av.VideoFrame) -> np.ndarray:
        key = (f.width, f.height, f.format.name)
        with self._lock:
            idle = self._idle.setdefault(key, [])
            scaler = idle.pop() if idle else VideoReformatter()
        try:
            w, h = analysis_size(f.width, f.height)
            return scaler.reformat(f, width=w, height=h, format="bgr24", interpolation="AREA").to_ndarray()
        finally:
            with self._lock:
                idle.append(scaler)


_SCALERS = SmallScalers()  # one set for the process: every stream's capture thread shares it


def _full_bgr(f: av.VideoFrame) -> np.ndarray:
    return f.to_ndarray(format="bgr24")


def _y_plane(f: av.VideoFrame) -> np.ndarray:
    plane = f.planes[0]
    return np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]


_Y_FORMATS = ("yuv", "yuvj", "nv12", "nv21", "gray")
_AVCOL_RANGE_JPEG = 2  # ffmpeg's code for full-range (0-255) luma


def _limited_range(f: av.VideoFrame) -> bool:
    name = f.format.name
    return not (name.startswith(("yuvj", "gray")) or f.color_range == _AVCOL_RANGE_JPEG)


# Codecs whose key frames a decoder made for them reads from the stream's parameter sets alone.
FRESH_KEYFRAME_CODECS = ("h264", "hevc")

# Key frames decoded at once, process-wide: one per core. With a key-frame decode running on every
# capture thread that has one (150 of 200 streams at a time, measured), the scheduler shares the
# cores among them all, and the one analysis thread got 0.26 of the 0.6 core its checks needed:
# half the samples were dropped. Threads waiting here do not compete for the cores.
_KEYFRAME_SLOTS = threading.BoundedSemaphore(usable_cores())


class PictureDecoder:
    """A stream's picture packets to pictures, set up the one way the capture thread and the
    benchmarks share.

    Key frames only: the stream's own decoder would keep its tables and frame pools (7.5-9 MB for
    720p H.264, measured) for pictures seconds apart, on every stream. For H.264 and HEVC each key
    frame goes instead to a decoder made for it and dropped once it has given its picture, and the
    packets between key frames are never decoded: about 0.6 MB per stream is left (the demuxer),
    at the same decode time per key frame (10-11 ms for 720p).

    A decoder made for one key frame needs the stream's parameter sets (SPS/PPS) from the
    container or in the key frame itself, as cameras send them. A stream that sent them once, at
    its start, is decoded by its own decoder instead, shown the first key frame again so it has
    them: that is decided by the second key frame, and until then the first one is kept."""

    def __init__(self, stream: av.VideoStream, keyframes_only: bool, threads: int = 0) -> None:
        self.stream = stream
        self._threads = threads  # 0: ffmpeg's choice (slice threads on every core)
        own = stream.codec_context
        if threads:
            own.thread_count = threads
        if keyframes_only:
            # Never decode the frames the sampler would throw away: the big saving on busy boxes.
            # Key frames are independent and sparse, so frame threading only adds start-up and
            # pipeline delay; slice threading still splits each picture across cores.
            own.skip_frame = "NONKEY"
            stream.thread_type = "SLICE"
        else:
            stream.thread_type = "AUTO"
        self.fresh = keyframes_only and own.name in FRESH_KEYFRAME_CODECS
        self._first_key: av.Packet | None = None  # until a second key frame decodes on its own
        self._proven = False

    def decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        """Pictures from one packet; raises av.error.FFmpegError for a damaged one."""
        if not self.fresh:
            return packet.decode()
        if not packet.is_keyframe:
            return []
        try:
            frames = self._decode_alone(packet)
        except av.error.ExitError:
            raise
        except av.error.FFmpegError:
            if self._proven:
                raise  # a damaged key frame of a stream that has shown it needs nothing else
            frames = []
        if frames:
            if not self._proven:
                self._proven = self._first_key is not None
                self._first_key = None if self._proven else packet
            return frames
        if self._proven:
            return []
        return self._own_decoder(packet)

    def _decode_alone(self, packet: av.Packet) -> list[av.VideoFrame]:
        own = self.stream.codec_context
        ctx = av.CodecContext.create(own.name, "r")
        assert isinstance(ctx, av.VideoCodecContext)
        ctx.extradata = own.extradata
        ctx.thread_count = self._threads
        ctx.thread_type = "SLICE"
        with _KEYFRAME_SLOTS:
            frames = ctx.decode(packet) + ctx.decode(None)
        for f in frames:
            f.time_base = self.stream.time_base  # a decoder made apart from the stream has none
        return frames

    def _own_decoder(self, packet: av.Packet) -> list[av.VideoFrame]:
        log.info(
            "%s: key frames do not decode on their own (parameter sets sent once?); decoding with "
            "the stream's own decoder",
            self.stream.codec_context.name,
        )
        self.fresh = False
        first, self._first_key = self._first_key, None
        if first is not None:
            # Its picture went out already: the decoder needs only its parameter sets, which a
            # flush keeps, and the picture drained with it.
            own = self.stream.codec_context
            try:
                own.decode(first)
                own.decode(None)
            except av.error.ExitError:
                raise
            except av.error.FFmpegError:
                pass
            own.flush_buffers()
        return packet.decode()


class PyAVDecoder:
    def __init__(
        self,
        url: str,
        kind: SourceKind,
        cfg: CaptureConfig,
        keyframes_only: bool = False,
        audio: AudioConfig | None = None,
    ) -> None:
        """``audio``: also demux the sound track it names (when present and not disabled)."""
        self.cfg = cfg
        self.decode_errors = 0
        self._where = os.path.basename(file_path(url)) if kind == "file" else mask_credentials(url)
        options = dict(cfg.options)
        if kind == "rtsp":
            options.setdefault("rtsp_transport", cfg.rtsp_transport)
        target = file_path(url) if kind == "file" else url
        problem = file_problem(target) if kind == "file" else None
        if problem:
            raise SourceError(problem)
        timeout = (cfg.open_timeout_s, cfg.read_timeout_s) if kind in LIVE_KINDS else None
        try:
            self.container = av.open(
                target, format="v4l2" if kind == "v4l2" else None, options=options, timeout=timeout
            )
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(describe_av_error(exc, self._where, cfg)) from None
        if not self.container.streams.video:
            self.container.close()
            raise SourceError(f"{self._where}: has no video stream (is it an audio-only file or playlist?)")
        self.stream = self.container.streams.video[0]
        self._pictures = PictureDecoder(self.stream, keyframes_only, cfg.threads)
        tracks = self.container.streams.audio
        self.audio_stream: av.AudioStream | None = (
            tracks[audio.stream]
            if audio is not None and audio.enabled is not False and len(tracks) > audio.stream
            else None
        )
        self.audio_decode_errors = 0
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.nominal_fps = float(rate) if rate else None
        self.total_frames = int(self.stream.frames) if self.stream.frames else None
        self._live = kind in LIVE_KINDS

    def frames(
        self,
        packet_sink: Callable[[av.Packet], None] | None = None,
        audio_sink: Callable[[av.AudioFrame], None] | None = None,
    ) -> Iterator[DecodedFrame]:
        """Decoded frames; ``packet_sink`` also sees every compressed picture packet (evidence
        clips), ``audio_sink`` every decoded frame of the sound track (when there is one)."""
        audio = self.audio_stream if audio_sink is not None else None
        streams = (self.stream, audio) if audio is not None else (self.stream,)
        last_picture = reading_since = time.monotonic()
        # Time since the last picture spent handing things on (the consumer of a frame, the sound
        # sink), not reading: a full queue in `vqmon analyze` waits for the checks, and that is no
        # stall of the source.
        handing_on = 0.0
        flowing = False
        # A read that took the whole read timeout returns what the demuxer held back when the
        # timeout interrupted it (RTP's last frame of a source that went quiet): a frame from
        # before the silence, not the source coming back.
        released_after = self.cfg.read_timeout_s - 0.05
        try:
            for packet in self.container.demux(streams):
                if self._live and packet.size == 0:
                    continue  # the demuxer's flush as the connection ends: no new pictures in it
                # (Only once pictures have flowed: a source slow to send its first packet after
                # the connection is ffmpeg's timeouts' business, as before.)
                if self._live and flowing and time.monotonic() - reading_since >= released_after:
                    # Decoding it would pass a frame from before the silence off as a new one.
                    raise SourceError(
                        f"{self._where}: nothing received for {self.cfg.read_timeout_s:g}s (the source went quiet; "
                        "raise capture.read_timeout_s for a slow source)"
                    )
                decoded: list[av.VideoFrame] = []
                if audio is not None and packet.stream is audio:
                    assert audio_sink is not None
                    t0 = time.monotonic()
                    self._decode_audio(packet, audio_sink)
                    handing_on += time.monotonic() - t0
                else:
                    if packet_sink is not None:
                        packet_sink(packet)
                    if packet.is_corrupt:
                        self.decode_errors += 1
                    try:
                        decoded = self._pictures.decode(packet)
                    except av.error.ExitError:
                        raise
                    except (av.error.InvalidDataError, av.error.FFmpegError):
                        self.decode_errors += 1
                if decoded:
                    last_picture, handing_on = time.monotonic(), 0.0
                    flowing = True
                elif time.monotonic() - last_picture - handing_on > self.cfg.stall_timeout_s:
                    raise SourceError(
                        f"{self._where}: data arrives but no picture decoded for {self.cfg.stall_timeout_s:g}s"
                    )
                t0 = time.monotonic()
                for f in decoded:
                    yield DecodedFrame(
                        f.time,
                        bool(f.key_frame),
                        f.width,
                        f.height,
                        partial(_SCALERS.small_bgr, f),
                        partial(_full_bgr, f),
                        partial(_y_plane, f) if f.format.name.startswith(_Y_FORMATS) else None,
                        _limited_range(f),
                    )
                reading_since = time.monotonic()  # the consumer is done: the next read starts now
                if decoded:
                    handing_on += reading_since - t0
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(describe_av_error(exc, self._where, self.cfg)) from None

    def _decode_audio(self, packet: av.Packet, sink: Callable[[av.AudioFrame], None]) -> None:
        # Broken sound is counted apart from broken pictures (decode_errors is a picture fault).
        try:
            frames = packet.decode()
        except av.error.ExitError:
            raise
        except (av.error.InvalidDataError, av.error.FFmpegError):
            self.audio_decode_errors += 1
            return
        for f in frames:
            sink(f)  # type: ignore[arg-type]

    def close(self) -> None:
        try:
            self.container.close()
        except Exception as exc:  # closing a broken connection must not mask the original problem
            log.debug("%s: error while closing: %s", self._where, exc)
