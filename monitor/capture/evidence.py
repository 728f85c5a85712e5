"""Evidence clips: a short MP4 around each raise, cut from the stream's own compressed packets.

The capture thread keeps a ring of the last `pre_s` seconds of packets (from a key frame, so the
clip starts decodable). When an alert is raised, the ring is copied and packets go on being
collected for `post_s` more; then the clip is remuxed into an MP4 (no decoding, no re-encoding:
it costs memory, about the bitrate times `pre_s` plus a GOP per stream, and a remux) under the
state directory, the oldest clips removed past `max_mb`, and the pipeline is told, which
publishes the path as an `update` of the alert. PyAV sources only (RTSP, HTTP, files); an
OpenCV/GStreamer source has no packets to keep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from monitor.alerts.events import Severity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvidenceClip:
    """A clip written for an alert (handed to the analysis loop)."""

    stream: str
    alert_id: str
    fault: str
    severity: Severity
    path: str
    duration_s: float


@dataclass(slots=True)
class _Packet:
    data: bytes
    pts: int | None
    dts: int | None
    key: bool
    at: float  # monotonic arrival


@dataclass
class _Request:
    alert_id: str
    fault: str
    severity: Severity
    until: float  # monotonic: collect packets up to here
    packets: list[_Packet] = field(default_factory=list)


class EvidenceRecorder:
    def __init__(
        self,
        stream: str,
        out_dir: Path,
        pre_s: float,
        post_s: float,
        max_mb: float,
        deliver: Callable[[EvidenceClip], None],
    ) -> None:
        self.stream, self.out_dir = stream, out_dir
        self.pre_s, self.post_s, self.max_bytes = pre_s, post_s, int(max_mb * 1e6)
        self._deliver = deliver
        self._ring: deque[_Packet] = deque()
        self._keys: deque[_Packet] = deque()  # the ring's key frames, oldest first
        self._ring_bytes = 0
        self._template: Any = None  # the session's input stream: codec parameters for the MP4
        self._asked: list[tuple[str, str, Severity]] = []  # (alert id, fault, severity) asked for (any thread)
        self._lock = threading.Lock()
        self._pending: list[_Request] = []
        self.written = 0

    @property
    def ring_bytes(self) -> int:
        """Memory the ring holds now (the cost of keeping `pre_s` of this stream)."""
        return self._ring_bytes

    # -- the analysis loop's side ---------------------------------------------------------------

    def request(self, alert_id: str, fault: str, severity: Severity) -> None:
        """An alert was raised: a clip from `pre_s` before now to `post_s` after (thread-safe)."""
        with self._lock:
            self._asked.append((alert_id, fault, severity))

    # -- the capture thread's side ----------------------------------------------------------------

    def start_session(self, in_stream: Any) -> None:
        self._template = in_stream
        self._ring.clear()
        self._keys.clear()
        self._ring_bytes = 0

    def on_packet(self, packet: av.Packet) -> None:
        if packet.size == 0 or packet.dts is None:
            return
        now = time.monotonic()
        p = _Packet(bytes(packet), packet.pts, packet.dts, bool(packet.is_keyframe), now)
        self._ring.append(p)
        self._ring_bytes += len(p.data)
        if p.key:
            self._keys.append(p)
        # Keep from the last key frame at or before `pre_s` ago: the clip starts decodable.
        while len(self._keys) > 1 and self._keys[1].at <= now - self.pre_s:
            self._keys.popleft()
        if self._keys and self._keys[0].at <= now - self.pre_s:
            while self._ring[0] is not self._keys[0]:
                self._ring_bytes -= len(self._ring.popleft().data)
        asked: list[tuple[str, str, Severity]] = []
        if self._asked:  # the lock only when the analysis loop has asked for something
            with self._lock:
                asked, self._asked = self._asked, []
        for alert_id, fault, severity in asked:
            self._pending.append(_Request(alert_id, fault, severity, now + self.post_s, list(self._ring)))
        for req in self._pending:
            if req.packets[-1] is not p:
                req.packets.append(p)
        done = [r for r in self._pending if now >= r.until]
        self._pending = [r for r in self._pending if now < r.until]
        for req in done:
            self._write(req)

    def end_session(self) -> None:
        """The connection ended: clips still collecting are written with what they have."""
        for req in self._pending:
            self._write(req)
        self._pending = []

    def _write(self, req: _Request) -> None:
        packets = [p for p in req.packets if p.data]
        start = next((i for i, p in enumerate(packets) if p.key), None)
        if start is None or self._template is None:
            log.warning("%s: no key frame kept for alert %s's clip; none written", self.stream, req.alert_id)
            return
        packets = packets[start:]
        self.out_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.out_dir / f"{stamp}_{self.stream}_{req.alert_id[:8]}.mp4"
        tmp = path.with_suffix(".part")
        tb = self._template.time_base
        try:
            with av.open(str(tmp), "w", format="mp4") as out:
                stream = out.add_stream_from_template(self._template)
                for p in packets:
                    q = av.Packet(p.data)
                    q.pts, q.dts, q.time_base, q.is_keyframe = p.pts, p.dts, tb, p.key
                    q.stream = stream
                    out.mux(q)
            tmp.rename(path)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            tmp.unlink(missing_ok=True)
            log.warning("%s: evidence clip for alert %s not written: %s", self.stream, req.alert_id, exc)
            return
        self.written += 1
        duration = packets[-1].at - packets[0].at
        self._prune()
        clip = EvidenceClip(self.stream, req.alert_id, req.fault, req.severity, str(path), round(duration, 2))
        self._deliver(clip)

    def _prune(self) -> None:
        """Oldest clips of every stream first, past max_mb (the folder is shared)."""
        sizes = []
        for f in self.out_dir.glob("*.mp4"):
            try:  # another stream's capture thread may be pruning too
                st = f.stat()
            except FileNotFoundError:
                continue
            sizes.append((st.st_mtime, st.st_size, f))
        sizes.sort()
        total = sum(size for _, size, _ in sizes)
        for _, size, f in sizes[:-1]:  # never the newest
            if total <= self.max_bytes:
                break
            total -= size
            f.unlink(missing_ok=True)
