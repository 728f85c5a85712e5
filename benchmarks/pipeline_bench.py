"""`vqmon bench pipeline --streams N[,N...]`: how many live cameras one box keeps up with.

N looped real-time copies of a realistic clip (720p H.264 at 2.8 Mbit/s, 2 s GOP, no B-frames,
like a CCTV main stream) run through the daemon's own pipeline (capture threads, sampler, checks,
alerts) for a window; per N: slowest and mean stream fps, sampled frames dropped, CPU cores
used, RSS, and each stage's share of the CPU (capture threads, ffmpeg's own decoder threads,
the analysis loop). The raw-decode limit is measured in the same run: plain PyAV decoding the
clip with every core, divided by the clip's frame rate, is how many real-time streams the
decoder alone could keep up with.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from benchmarks.bench import decode_all
from monitor.config import Config, SampleConfig
from monitor.demo import SceneStyle, write_clip
from monitor.runtime import Pipeline, StreamSpec
from monitor.sinks import Fanout

log = logging.getLogger(__name__)

CLIP_VERSION = 3  # 3: encoded as a camera (no B-frames, capped bitrate); 2 is the x264 encoding
KEEPS_UP = 0.95  # a stream keeps up at this share of its frame rate (and with no drops)
# ... and the checks with the samples: at most this share of the window's samples is left waiting
# at its end beyond what waited at its start (a backlog that grows drops samples later).
MAX_BEHIND = 0.05
_TICK = os.sysconf("SC_CLK_TCK")


def bench_clip_720p(state_dir: str, encoding: str = "camera") -> Path:
    """30 s of 1280x720 at 25 fps, 2 s GOP, with sensor noise and an on-screen clock; made once.
    ``camera``: as an IP camera's main stream, 2.8 Mbit/s at most and no B-frames. ``x264``:
    x264's defaults at CRF 20 (3.9 Mbit/s here, 3 B-frames), whose decoder holds twice the
    pictures (16 MB a stream against 9, decoding alone, measured)."""
    name = f"bench-720p-cctv-v{CLIP_VERSION}.mp4" if encoding == "camera" else "bench-720p-cctv-v2.mp4"
    path = Path(state_dir) / "bench" / name
    if not path.is_file():
        log.info("generating %s (once)", path)
        style = SceneStyle(noise=4.5, clock=True)
        kbps = 2800 if encoding == "camera" else None
        write_clip(path, width=1280, height=720, fps=25, duration_s=30.0, gop_s=2.0, crf=20, write_labels=False,
                   style=style, camera_kbps=kbps)  # fmt: skip
    return path


def parse_sample(text: str) -> SampleConfig:
    """'every_s=1', 'every_n=5' or 'keyframes'."""
    if text == "keyframes":
        return SampleConfig(keyframes_only=True)
    key, _, value = text.partition("=")
    if key not in ("every_s", "every_n") or not value:
        raise ValueError(f"--sample {text!r}: every_s=SECONDS, every_n=N or keyframes")
    return SampleConfig(**{key: float(value) if key == "every_s" else int(value)})


def _thread_cpu(native_id: int) -> float:
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _stage(name: str) -> str:
    if name.startswith("capture-"):
        return "capture threads"
    if name == "bench-analysis":
        return "analysis loop"
    if name == "clip-scorer":
        return "CLIP scorer"
    return "other Python threads"


def raw_decode_fps(path: Path, keyframes_only: bool, seconds: float = 8.0) -> float:
    """Plain PyAV, every core, decoding as the capture decoder is set up; frames per second."""
    frames = elapsed = 0.0
    while elapsed < seconds:
        n, took = decode_all(str(path), keyframes_only)
        frames, elapsed = frames + n, elapsed + took
    return frames / elapsed


@dataclass
class PipelineRow:
    streams: int
    slowest_fps: float
    mean_fps: float
    dropped: int
    cpu_cores: float
    rss_mb: float
    stages: dict[str, float] = field(default_factory=dict)  # share of the CPU used
    sampled: int = 0  # frames sent on to the checks in the window
    behind: int = 0  # of them, how many more wait at the window's end than at its start

    @property
    def behind_share(self) -> float:
        return self.behind / self.sampled if self.sampled else 0.0

    def keeps_up(self, fps: float) -> bool:
        return self.slowest_fps >= KEEPS_UP * fps and self.dropped == 0 and self.behind_share <= MAX_BEHIND


@dataclass
class PipelineBench:
    clip: str
    clip_fps: float
    sample: str
    window_s: float
    raw_fps: float
    rows: list[PipelineRow]

    @property
    def decode_limit(self) -> float:
        """Real-time streams the decoder alone could keep up with."""
        return self.raw_fps / self.clip_fps

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["rows"] = [r.__dict__ for r in self.rows]
        d["decode_limit_streams"] = round(self.decode_limit, 1)
        return d

    def report(self) -> str:
        lines = [
            f"{Path(self.clip).name}, {self.clip_fps:.3g} frames/s decoded per stream, sample {self.sample}, "
            f"{self.window_s:g} s window",
            f"raw PyAV decode: {self.raw_fps:.0f} fps = {self.decode_limit:.1f} real-time streams (the decode limit)",
            f"{'streams':>7} {'slowest':>8} {'mean':>6} {'drops':>6} {'behind':>6} {'cores':>6} {'RSS MB':>7} "
            f"{'MB/str':>6} {'/limit':>6}  CPU share by stage",
        ]
        for r in self.rows:
            stages = ", ".join(f"{k} {100 * v:.0f}%" for k, v in sorted(r.stages.items(), key=lambda kv: -kv[1]))
            lines.append(
                f"{r.streams:>7} {r.slowest_fps:>8.3g} {r.mean_fps:>6.3g} {r.dropped:>6} "
                f"{100 * r.behind_share:>5.1f}% {r.cpu_cores:>6.2f} {r.rss_mb:>7.0f} {r.rss_mb / r.streams:>6.1f} "
                f"{r.streams / self.decode_limit:>6.2f}  {stages}"
            )
        kept = [r.streams for r in self.rows if r.keeps_up(self.clip_fps)]
        lines.append(
            f"largest N that keeps up (slowest >= {KEEPS_UP:.0%} of {self.clip_fps:.3g} fps, no drops, "
            f"behind <= {MAX_BEHIND:.0%}): "
            f"{max(kept) if kept else 'none'}; ratio to the decode limit "
            f"{(max(kept) / self.decode_limit) if kept else 0:.2f}"
        )
        return "\n".join(lines)


def _run(n: int, clip: Path, cfg: Config, sample: SampleConfig, warmup_s: float, window_s: float) -> PipelineRow:
    settings = cfg.stream_settings()
    settings.capture.loop = True
    settings.capture.realtime = True
    settings.sample = sample
    specs = [StreamSpec(f"cam{i:03d}", str(clip), settings) for i in range(n)]
    pipeline = Pipeline(specs, Fanout([]), stats_interval_s=1e9)
    runner = threading.Thread(target=pipeline.run, name="bench-analysis", daemon=True)
    pipeline.start()
    runner.start()
    try:
        time.sleep(warmup_s)
        names = list(pipeline.workers)
        frames0 = {k: pipeline.stats(k).frames_decoded for k in names}
        drops0 = sum(pipeline.mux.dropped(k) for k in names)
        sampled0 = sum(pipeline.stats(k).frames_sampled for k in names)
        checked0 = sum(pipeline.analyzers[k].frames_checked for k in names)
        threads = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
        cpu0 = {tid: _thread_cpu(tid) for tid in threads}
        proc0, t0 = time.process_time(), time.perf_counter()
        time.sleep(window_s)
        elapsed = time.perf_counter() - t0
        used = time.process_time() - proc0
        per_stage: dict[str, float] = {}
        for tid, name in threads.items():
            stage = _stage(name)
            per_stage[stage] = per_stage.get(stage, 0.0) + _thread_cpu(tid) - cpu0[tid]
        # What no Python thread accounts for is ffmpeg's own decoder threads (frame threading).
        per_stage["ffmpeg decoder threads"] = max(0.0, used - sum(per_stage.values()))
        fps = [(pipeline.stats(k).frames_decoded - frames0[k]) / elapsed for k in names]
        dropped = sum(pipeline.mux.dropped(k) for k in names) - drops0
        sampled = sum(pipeline.stats(k).frames_sampled for k in names) - sampled0
        checked = sum(pipeline.analyzers[k].frames_checked for k in names) - checked0
        return PipelineRow(
            n,
            min(fps),
            sum(fps) / len(fps),
            dropped,
            used / elapsed,
            _rss_mb(),
            {k: v / used for k, v in per_stage.items() if used > 0 and v > 0.005 * used},
            sampled,
            max(0, sampled - checked - dropped),
        )
    finally:
        pipeline.stop()
        runner.join(10)
        pipeline.shutdown()


def bench_pipeline(
    cfg: Config,
    counts: list[int],
    sample: SampleConfig,
    clip: str | None = None,
    window_s: float = 20.0,
    warmup_s: float = 6.0,
    encoding: str = "camera",
) -> PipelineBench:
    path = Path(clip) if clip else bench_clip_720p(cfg.state_dir, encoding)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        rate = stream.average_rate
        clip_fps = float(rate) if rate else 25.0
        if sample.keyframes_only:  # a stream then decodes its key frames only: that is its rate
            keys = sum(1 for p in c.demux(stream) if p.is_keyframe)
            clip_fps = keys / (float(c.duration or 1) / av.time_base)
    raw = raw_decode_fps(path, sample.keyframes_only)
    rows = [_run(n, path, cfg, sample, warmup_s, window_s) for n in counts]
    label = "keyframes" if sample.keyframes_only else (f"every_s={sample.every_s:g}" if sample.every_s else
                                                        f"every_n={sample.every_n}")  # fmt: skip
    return PipelineBench(str(path), clip_fps, label, window_s, raw, rows)
