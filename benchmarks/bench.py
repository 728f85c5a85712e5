"""The benchmarks behind `vqmon bench` (decode, checks, scorer, mqtt): each measures a
production path and prints it as a ratio against a baseline measured in the same run (`decode`:
what the pipeline costs on top of raw decoding)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from monitor.analyze import offline_settings
from monitor.capture import CaptureWorker
from monitor.capture.pyav_decoder import PictureDecoder
from monitor.config import Config
from monitor.demo import Sound, write_clip
from monitor.frames import AudioChunk, Frame
from monitor.queues import StreamMux
from monitor.runtime import Pipeline, StreamSpec
from monitor.runtime.loop import default_queue_size
from monitor.sinks import Fanout, JsonlSink

log = logging.getLogger(__name__)

BENCH_CLIP_VERSION = 3  # 3: with a sound track


def bench_clip(state_dir: str) -> Path:
    """A 1080p H.264 clip (12 s, 25 fps, 2 s GOP) with a stereo AAC sound track at broadcast
    loudness, made once and cached under the state dir. It has no faults: the benchmark measures
    the steady state, not the rare raise with its evidence."""
    path = Path(state_dir) / "bench" / f"bench-1080p-v{BENCH_CLIP_VERSION}.mp4"
    if not path.is_file():
        log.info("generating %s (once)", path)
        write_clip(
            path,
            width=1920,
            height=1080,
            fps=25,
            duration_s=12.0,
            write_labels=False,
            sound=_bench_sound(12.0),
        )
    return path


def _bench_sound(duration_s: float, rate: int = 48000) -> Sound:
    """Two tones and some hiss, about -23 LUFS: what the audio checks see on a normal channel."""
    t = np.arange(int(duration_s * rate)) / rate
    rng = np.random.default_rng(0)
    left = 0.1 * np.sin(2 * np.pi * 440 * t) + 0.02 * rng.standard_normal(t.size)
    right = 0.1 * np.sin(2 * np.pi * 660 * t) + 0.02 * rng.standard_normal(t.size)
    return Sound(np.stack([left, right]).astype(np.float32), rate)


def decode_all(path: str, keyframes_only: bool) -> tuple[int, float]:
    """Plain PyAV through a whole file, set up as the capture decoder is: (frames, seconds)."""
    t0 = time.perf_counter()
    n = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        pictures = PictureDecoder(stream, keyframes_only)  # exactly as the capture decoder decodes
        for packet in container.demux(stream):
            n += len(pictures.decode(packet))
    return n, time.perf_counter() - t0


def _pipeline_run(path: str, cfg: Config, audio: bool = True) -> tuple[int, int, float]:
    """The daemon's pipeline over a file as fast as it decodes: (frames decoded, frames checked,
    seconds). ``audio`` False turns the sound off (decode and checks), as ``audio.enabled: false``."""
    settings = offline_settings(cfg)
    if not audio:
        settings.audio.enabled = False
    sink = JsonlSink(os.devnull)
    pipeline = Pipeline([StreamSpec("bench", path, settings)], Fanout([sink]), offline=True, stats_interval_s=1e9)
    t0 = time.perf_counter()
    pipeline.start()
    pipeline.run()
    elapsed = time.perf_counter() - t0
    pipeline.shutdown()
    stats = pipeline.stats("bench")
    return stats.frames_decoded, pipeline.analyzers["bench"].frames_checked, elapsed


def _capture_run(path: str, cfg: Config, audio: bool = True) -> tuple[int, float]:
    """The capture stage alone, as fast as it goes: the daemon's capture thread decoding the
    picture (and the sound, unless ``audio`` is False), sampling and making the sampled frames'
    small copies, into a live-mode queue nobody reads (it drops, never waits). (frames, seconds)"""
    settings = offline_settings(cfg)
    if not audio:
        settings.audio.enabled = False
    mux: StreamMux[Frame | AudioChunk] = StreamMux(settings.capture.queue_size or default_queue_size(1))  # one stream
    worker = CaptureWorker("bench", path, settings.capture, settings.sample, mux, retry=False, audio=settings.audio)
    t0 = time.perf_counter()
    worker.start()
    worker.join()
    return worker.stats.frames_decoded, time.perf_counter() - t0


@dataclass
class DecodeBench:
    file: str
    width: int
    height: int
    sample: str
    raw_frames: int
    raw_fps: float
    pipeline_frames: int
    frames_checked: int
    pipeline_fps: float
    keyframes: int
    keyframe_s: float
    full_s: float
    pipeline_fps_no_audio: float  # the same pipeline with audio.enabled false
    capture_fps: float  # the capture thread alone, sound on
    capture_fps_no_audio: float  # ...and off
    has_audio: bool
    fps: float  # the clip's frame rate

    @property
    def pipeline_ratio(self) -> float:
        return self.pipeline_fps / self.raw_fps if self.raw_fps else 0.0

    @property
    def audio_ratio(self) -> float:
        """Video frames per second the capture thread decodes with the sound on / off."""
        return self.capture_fps / self.capture_fps_no_audio if self.capture_fps_no_audio else 0.0

    @property
    def pipeline_audio_ratio(self) -> float:
        """The same for the whole pipeline, the sound's checks included (as fast as the file
        decodes, i.e. many times real time: the checks' cost per second of sound weighs more
        than it does live)."""
        return self.pipeline_fps / self.pipeline_fps_no_audio if self.pipeline_fps_no_audio else 0.0

    @property
    def keyframe_saving(self) -> float:
        return self.full_s / self.keyframe_s if self.keyframe_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["pipeline_ratio"] = round(self.pipeline_ratio, 3)
        d["keyframe_saving"] = round(self.keyframe_saving, 2)
        d["audio_ratio"] = round(self.audio_ratio, 3)
        d["pipeline_audio_ratio"] = round(self.pipeline_audio_ratio, 3)
        return d

    def report(self) -> str:
        return "\n".join(
            [
                f"file: {self.file} ({self.width}x{self.height}), pipeline sampling: {self.sample}",
                f"raw PyAV decode      : {self.raw_fps:8.1f} fps  ({self.raw_frames} frames)",
                f"pipeline             : {self.pipeline_fps:8.1f} fps  ({self.pipeline_frames} decoded, "
                f"{self.frames_checked} checked)",
                f"pipeline / raw       : {self.pipeline_ratio:8.3f}   (goal >= 0.90)",
                f"capture, sound on    : {self.capture_fps:8.1f} fps  "
                f"({'the clip has a sound track' if self.has_audio else 'the clip has no sound track'})",
                f"capture, sound off   : {self.capture_fps_no_audio:8.1f} fps",
                f"capture on / off     : {self.audio_ratio:8.3f}   (goal >= 0.95)",
                f"pipeline, sound off  : {self.pipeline_fps_no_audio:8.1f} fps",
                f"pipeline on / off    : {self.pipeline_audio_ratio:8.3f}   (the sound's checks too, at "
                f"{self.pipeline_fps_no_audio / self.fps:.0f}x real time)",
                f"full decode          : {self.full_s:8.3f} s",
                f"keyframes-only decode: {self.keyframe_s:8.3f} s  ({self.keyframes} key frames)",
                f"keyframes-only saving: {self.keyframe_saving:8.1f}x  (goal >= 10x cheaper)",
            ]
        )


def bench_decode(path: str, cfg: Config, repeats: int = 3) -> DecodeBench:
    with av.open(path) as c:
        s = c.streams.video[0]
        width, height = s.codec_context.width, s.codec_context.height
        has_audio = bool(c.streams.audio)
        fps = float(s.average_rate or 25)
    decode_all(path, False)  # warm the page cache and ffmpeg's lazy init so the first timing is fair
    raw = min((decode_all(path, False) for _ in range(repeats)), key=lambda r: r[1])
    # Sound on and off in turns, so a change in the machine's load falls on both alike.
    runs = [(_pipeline_run(path, cfg), _pipeline_run(path, cfg, audio=False)) for _ in range(repeats)]
    pipe = min((on for on, _ in runs), key=lambda r: r[2])
    quiet = min((off for _, off in runs), key=lambda r: r[2])
    caps = [(_capture_run(path, cfg), _capture_run(path, cfg, audio=False)) for _ in range(repeats)]
    cap_on = min((on for on, _ in caps), key=lambda r: r[1])
    cap_off = min((off for _, off in caps), key=lambda r: r[1])
    key = min((decode_all(path, True) for _ in range(repeats)), key=lambda r: r[1])
    sample = cfg.stream_settings().sample
    mode = (
        f"every_n={sample.every_n}"
        if sample.every_n
        else f"every_s={sample.every_s}"
        if sample.every_s
        else "keyframes_only"
    )
    return DecodeBench(
        file=os.path.basename(path),
        width=width,
        height=height,
        sample=mode,
        raw_frames=raw[0],
        raw_fps=raw[0] / raw[1],
        pipeline_frames=pipe[0],
        frames_checked=pipe[1],
        pipeline_fps=pipe[0] / pipe[2],
        keyframes=key[0],
        keyframe_s=key[1],
        full_s=raw[1],
        pipeline_fps_no_audio=quiet[0] / quiet[2],
        capture_fps=cap_on[0] / cap_on[1],
        capture_fps_no_audio=cap_off[0] / cap_off[1],
        has_audio=has_audio,
        fps=fps,
    )


def _decoded_frames(path: str, count: int) -> list:
    """Sampled frames exactly as capture makes them (small BGR via swscale, native luma)."""
    from monitor.capture.pyav_decoder import PyAVDecoder
    from monitor.config import CaptureConfig

    dec = PyAVDecoder(path, "file", CaptureConfig())
    frames = []
    try:
        for i, raw in enumerate(dec.frames()):
            if i % 5:
                continue
            f = raw.to_frame("bench", i, raw.pts_time or 0.0, 0.0, dec.decode_errors)
            _ = f.luma  # materialise now: capture hands checks a decoded frame
            frames.append(f)
            if len(frames) >= count:
                break
    finally:
        dec.close()
    return frames


@dataclass
class ChecksBench:
    file: str
    width: int
    height: int
    frames: int
    per_check_ms: dict[str, float]
    all_ms: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def report(self) -> str:
        lines = [
            f"file: {self.file} ({self.width}x{self.height}), {self.frames} frames, one thread",
            f"{'check':<16} {'ms/frame':>9}   (each alone, paying for the derived images it uses)",
        ]
        for name, ms in sorted(self.per_check_ms.items(), key=lambda kv: -kv[1]):
            lines.append(f"{name:<16} {ms:9.3f}")
        lines.append(f"{'all together':<16} {self.all_ms:9.3f}   (goal <= 5 ms per 1080p frame on one core)")
        return "\n".join(lines)


def bench_checks(path: str, cfg: Config, count: int = 40) -> ChecksBench:
    import cv2

    from monitor.checks import Check, FrameView, all_checks
    from monitor.runtime import StreamAnalyzer

    settings = cfg.stream_settings()
    frames = _decoded_frames(path, count)
    if not frames:
        raise ValueError(f"{path}: no frames decoded")
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the goal is per core
    try:
        per: dict[str, float] = {}
        for name, cls in all_checks().items():
            check = cls(getattr(settings.checks, name))
            if not isinstance(check, Check):
                continue  # the audio checks: `vqmon bench decode --audio` measures the sound's cost
            t0 = time.perf_counter()
            for f in frames:
                check.evaluate(FrameView(f))
            per[name] = (time.perf_counter() - t0) * 1000 / len(frames)
        analyzer = StreamAnalyzer(StreamSpec("bench", path, settings))
        t0 = time.perf_counter()
        for f in frames:
            analyzer.process(f)
        all_ms = (time.perf_counter() - t0) * 1000 / len(frames)
    finally:
        cv2.setNumThreads(threads)
    return ChecksBench(os.path.basename(path), frames[0].width, frames[0].height, len(frames), per, all_ms)


CPU_BATCHES = (1, 8)
GPU_BATCHES = (1, 32, 256)
TILE_BATCH = 8
EAGER, ORT_FP32, ORT_INT8 = "torch eager fp32", "onnxruntime fp32", "onnxruntime int8"


@dataclass
class ScorerBench:
    arch: str
    threads: int
    rounds: int
    rows: list[dict[str, Any]]  # {"runtime", "device", "batch", "images_per_s"}: median over the rounds
    int8_cosine_min: float
    # ms per 1080p frame through the scorer worker (ORT fp32, batches of TILE_BATCH frames):
    # "off" the whole frame only, "auto" the whole frame and its tiles (grid in ``tile_grid``).
    frame_ms: dict[str, float] = field(default_factory=dict)
    tile_grid: list[int] | None = None
    gpu: str | None = None  # the card, when there was one
    gpu_notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def rate(self, runtime: str, batch: int) -> float:
        return next(r["images_per_s"] for r in self.rows if r["runtime"] == runtime and r["batch"] == batch)

    def report(self) -> str:
        lines = [
            f"CLIP image encoder {self.arch} (random weights); CPU rows: {self.threads} threads, "
            f"median of {self.rounds} interleaved rounds"
        ]
        lines.append(f"{'runtime':<28} {'device':<6} {'batch':>5} {'images/s':>10}")
        for r in self.rows:
            lines.append(f"{r['runtime']:<28} {r['device']:<6} {r['batch']:>5} {r['images_per_s']:>10.1f}")
        for b in CPU_BATCHES:
            fp32 = self.rate(ORT_FP32, b)
            lines.append(
                f"batch {b}: ORT fp32 / torch eager = {fp32 / self.rate(EAGER, b):.2f} (goal >= 1.3), "
                f"ORT int8 / ORT fp32 = {self.rate(ORT_INT8, b) / fp32:.2f} (goal >= 2)"
            )
        lines.append(f"int8 vs fp32 embedding cosine (min over the inputs): {self.int8_cosine_min:.4f} (goal >= 0.99)")
        if self.frame_ms:
            off, tiled = self.frame_ms["off"], self.frame_ms["auto"]
            grid = "x".join(map(str, self.tile_grid or []))
            lines.append(
                f"1080p frames through the scorer worker (ORT fp32, batches of {TILE_BATCH}, native picture "
                f"converted in the worker): whole frame {off:.1f} ms/frame, whole + {grid} tiles {tiled:.1f} "
                f"ms/frame = {tiled / off:.2f}x"
            )
        lines.append(f"GPU: {self.gpu}" if self.gpu else "GPU: none here, so no CUDA/TensorRT/torch fp16 rows")
        lines += [f"  {n}" for n in self.gpu_notes]
        return "\n".join(lines)


def _row(runtime: str, device: str, batch: int, images_per_s: float) -> dict[str, Any]:
    return {"runtime": runtime, "device": device, "batch": batch, "images_per_s": images_per_s}


def _images_per_s(fn, batch: np.ndarray, seconds: float) -> float:
    fn(batch)  # warm-up (and, on a GPU, allocation / engine build)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n == 0:
        fn(batch)
        n += len(batch)
    return n / (time.perf_counter() - t0)


def _gpu_rows(torch, model, model_dir: Path, inputs: np.ndarray, seconds: float) -> tuple[str | None, list, list]:
    """torch fp16 eager and ORT CUDA / TensorRT (fp16) at batch 1, 32 and 256, where there is a GPU."""
    from monitor.scoring.clip_iqa import ClipIqa, Device, Precision, SessionOptions

    if not torch.cuda.is_available():
        return None, [], []
    card = torch.cuda.get_device_name(0)
    big = np.concatenate([inputs] * (max(GPU_BATCHES) // len(inputs) + 1))
    half = model.half().cuda().eval()
    rows, notes = [], []

    def torch_fp16(batch: np.ndarray) -> None:
        with torch.inference_mode():
            half.encode_image(torch.from_numpy(batch).cuda().half())
        torch.cuda.synchronize()

    for b in GPU_BATCHES:
        rows.append(_row("torch eager fp16", "gpu", b, _images_per_s(torch_fp16, big[:b], seconds)))
    engines: tuple[tuple[Device, Precision], ...] = (("cuda", "fp16"), ("tensorrt", "fp32"))
    for device, precision in engines:  # TensorRT builds its own fp16 engine
        options = SessionOptions(device=device, precision=precision, trt_cache_dir=str(model_dir / "trt-cache"))
        scorer = ClipIqa(model_dir, options)
        if scorer.provider == "CPUExecutionProvider":
            notes.append(f"onnxruntime {device}: not available in this onnxruntime build (install onnxruntime-gpu)")
            continue
        for b in GPU_BATCHES:
            rows.append(_row(f"onnxruntime {device} fp16", "gpu", b, _images_per_s(scorer.embed, big[:b], seconds)))
    return card, rows, notes


def bench_scorer(
    state_dir: str,
    arch: str = "ViT-B-32",
    seconds: float = 2.0,
    rounds: int = 3,
) -> ScorerBench:
    """Torch eager vs ONNX Runtime fp32 vs int8 on the CPU, same weights and inputs, in one run.
    The runtimes take turns round by round and each reports its median, so a neighbour's load
    on a shared box spreads over all of them instead of landing on one."""
    import torch

    from exporters.clip_export import export_clip, load_model
    from monitor.demo import SceneRenderer
    from monitor.scoring.clip_iqa import ClipIqa, SessionOptions
    from monitor.scoring.model_dir import load_manifest

    model_dir = Path(state_dir) / "bench" / f"clip-{arch}-random"
    if not (model_dir / "manifest.json").is_file() or not load_manifest(model_dir).get("fp16"):
        export_clip(model_dir, arch=arch, random_init=True, int8=True, fp16=True)
    _, _, model, _, _ = load_model(arch, None, None, True)  # the same seed (0): the same weights
    fp32 = ClipIqa(model_dir, SessionOptions(device="cpu"))
    int8 = ClipIqa(model_dir, SessionOptions(device="cpu", precision="int8"))
    r = SceneRenderer(640, 360, 25, seed=4)
    inputs = np.stack([fp32.preprocess(r.render(i * 0.7)) for i in range(max(CPU_BATCHES))])

    def eager(batch: np.ndarray) -> None:
        with torch.inference_mode():
            model.encode_image(torch.from_numpy(batch))

    runtimes = {EAGER: eager, ORT_FP32: fp32.embed, ORT_INT8: int8.embed}
    samples: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for b in CPU_BATCHES:
            for name, fn in runtimes.items():
                samples.setdefault((name, b), []).append(_images_per_s(fn, inputs[:b], seconds))
    rows = [
        _row(name, "cpu", b, float(np.median(v)))
        for (name, b), v in sorted(samples.items(), key=lambda kv: (kv[0][1], list(runtimes).index(kv[0][0])))
    ]
    cos = float((fp32.embed(inputs) * int8.embed(inputs)).sum(axis=1).min())
    frame_ms, grid = _tiling_cost(fp32, str(bench_clip(state_dir)), rounds)
    card, gpu_rows, notes = _gpu_rows(torch, model, model_dir, inputs, seconds)
    return ScorerBench(arch, torch.get_num_threads(), rounds, rows + gpu_rows, cos, frame_ms, grid, card, notes)


def _tiling_cost(model, clip: str, rounds: int) -> tuple[dict[str, float], list[int] | None]:
    """ms per frame of ScoringWorker.score_batch, the daemon's own call, with tiles off and auto:
    frames decoded by the capture decoder, their native picture still unconverted (the worker
    converts it for tiles, and that is part of the cost). Modes alternate, median per mode."""
    from monitor.scoring.clip_iqa import Tiles, tile_grid
    from monitor.scoring.worker import ScoringWorker

    modes: tuple[Tiles, Tiles] = ("off", "auto")
    samples: dict[str, list[float]] = {"off": [], "auto": []}
    grid = None
    for r in range(rounds + 1):  # the first round warms up
        for tiles in modes:
            frames = _decoded_frames(clip, TILE_BATCH)
            worker = ScoringWorker(model, lambda _result: None, max_batch=TILE_BATCH, tiles=tiles)
            t0 = time.perf_counter()
            worker.score_batch(frames)
            if r:
                samples[str(tiles)].append((time.perf_counter() - t0) * 1000.0 / len(frames))
            grid = grid or tile_grid(frames[0].width, frames[0].height, "auto", model.size)
    return {k: round(float(np.median(v)), 2) for k, v in samples.items()}, list(grid) if grid else None


@dataclass
class MqttBench:
    events: int
    raw_per_s: float
    outbox_per_s: float
    replay_per_s: float

    @property
    def cost(self) -> float:
        return self.raw_per_s / self.outbox_per_s if self.outbox_per_s else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "outbox_cost": round(self.cost, 2)}

    def report(self) -> str:
        return "\n".join(
            [
                f"{self.events} alert events, QoS 1, to a local Mosquitto",
                f"raw paho publish      : {self.raw_per_s:9.0f} events/s",
                f"through the outbox    : {self.outbox_per_s:9.0f} events/s",
                f"outbox cost           : {self.cost:9.2f}x raw (goal < 2x)",
                f"replay after an outage: {self.replay_per_s:9.0f} events/s",
            ]
        )


def bench_mqtt(count: int = 5000) -> MqttBench:
    import tempfile
    import threading

    import paho.mqtt.client as mqtt

    from benchmarks.broker import Mosquitto
    from monitor.alerts import AlertEvent
    from monitor.config import MqttConfig
    from monitor.sinks.mqtt import MqttSink

    events = [
        AlertEvent(f"id-{i}", "cam", "cam.mp4", "blur", "raise", "warning", float(i), time.time(), {"i": i})
        for i in range(count)
    ]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        try:
            broker = Mosquitto(tmp)
            broker.start()
        except RuntimeError as exc:
            raise ValueError(f"the MQTT benchmark starts a local Mosquitto: {exc}") from exc
        port = broker.port
        try:
            # Baseline: paho alone, QoS 1, until every PUBACK is in.
            acked = threading.Semaphore(0)
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-raw")
            client.on_publish = lambda c, u, mid, rc, p: acked.release()
            client.max_inflight_messages_set(20)
            client.connect("127.0.0.1", port)
            client.loop_start()
            t0 = time.perf_counter()
            for e in events:
                client.publish(f"vqmon/{e.stream}/alerts", e.to_json(), qos=1)
            for _ in events:
                acked.acquire()
            raw = count / (time.perf_counter() - t0)
            client.loop_stop()
            client.disconnect()

            def drain(sink: MqttSink) -> None:
                while len(sink.outbox):
                    time.sleep(0.005)

            sink = MqttSink(MqttConfig(enabled=True, port=port, client_id="bench-outbox"), tmp / "a")
            sink.connected.wait(10)
            t0 = time.perf_counter()
            for e in events:
                sink.emit(e)
            drain(sink)
            outbox = count / (time.perf_counter() - t0)
            sink.close()

            # Replay: events queued while the broker was unreachable, then it comes back.
            dead = MqttSink(MqttConfig(enabled=True, port=1, client_id="bench-dead"), tmp / "b")
            for e in events:
                dead.emit(e)
            dead.close(drain_timeout_s=0)
            sink = MqttSink(MqttConfig(enabled=True, port=port, client_id="bench-replay"), tmp / "b")
            t0 = time.perf_counter()
            sink.connected.wait(10)
            drain(sink)
            replay = count / (time.perf_counter() - t0)
            sink.close()
        finally:
            broker.stop()
    return MqttBench(count, raw, outbox, replay)


TORCH_BATCHES = {"cuda": (1, 8, 32, 256), "cpu": (1, 8)}


@dataclass
class TorchBench:
    """`vqmon bench scorer --device cuda|cpu`: the torch backend against its own bare model."""

    arch: str
    device: str
    card: str | None
    picture: tuple[int, int]  # (width, height) of the uint8 pictures handed to score()
    rows: list[dict[str, Any]]  # {"what", "batch", "images_per_s", "p50_ms", "p99_ms"}

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def rate(self, what: str, batch: int) -> float | None:
        return next((r["images_per_s"] for r in self.rows if r["what"] == what and r["batch"] == batch), None)

    def report(self) -> str:
        w, h = self.picture
        lines = [
            f"CLIP image encoder {self.arch} (random weights), torch backend on {self.card or self.device}; "
            f"score() gets {w}x{h} uint8 BGR pictures (upload, letterbox and normalise included)",
            f"{'what':<34} {'batch':>5} {'images/s':>10} {'p50 ms':>8} {'p99 ms':>8}",
        ]
        for r in self.rows:
            lines.append(
                f"{r['what']:<34} {r['batch']:>5} {r['images_per_s']:>10.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
            )
        for b in TORCH_BATCHES[self.device]:
            full, ceiling = self.rate(BACKEND, b), self.rate(BARE_GRAPH, b) or self.rate(BARE_EAGER, b)
            if full and ceiling:
                lines.append(f"batch {b}: backend score() / bare model = {full / ceiling:.2f}")
        return "\n".join(lines)


BARE_EAGER = "bare model, eager"
BARE_GRAPH = "bare model, CUDA graph replay"
BACKEND = "backend embed (pictures in)"


def _timed(fn, seconds: float) -> tuple[float, float, float]:
    """(calls/s, p50 ms, p99 ms) of ``fn`` after a warm-up call."""
    fn()
    times: list[float] = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000.0
    return len(times) / (ms.sum() / 1000.0), float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def bench_torch_backend(
    state_dir: str, arch: str = "ViT-B-32", device: str = "cuda", seconds: float = 2.0
) -> TorchBench:
    """The torch backend's full call (uint8 pictures in, embeddings out) against the bare
    torch.export program: eager, and on CUDA replayed as a CUDA graph (the ceiling)."""
    import torch

    from exporters.clip_export import export_clip
    from monitor.demo import SceneRenderer
    from monitor.scoring.clip_iqa import ClipIqa, Device, SessionOptions
    from monitor.scoring.model_dir import TORCH_FILE, load_manifest
    from monitor.scoring.torch_backend import check_program

    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA GPU here")
    model_dir = Path(state_dir) / "bench" / f"clip-{arch}-random-torch"
    try:
        check_program(model_dir, load_manifest(model_dir))
    except Exception:  # missing, or written by another torch: export here
        export_clip(model_dir, arch=arch, random_init=True, torch_program=True)
    batches = TORCH_BATCHES[device]
    on: Device = "cuda" if device == "cuda" else "cpu"
    scorer = ClipIqa(model_dir, SessionOptions(device=on, runtime="torch", max_views=max(batches)))
    dev = torch.device(device)
    dtype = torch.float16 if device == "cuda" else torch.float32
    bare = torch.export.load(str(model_dir / TORCH_FILE)).module().to(dev).to(dtype)
    size = scorer.size
    picture = (640, 360)
    r = SceneRenderer(*picture, 25, seed=4)
    frames = [r.render(i * 0.1) for i in range(16)]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows = []

    def row(what: str, b: int, fn) -> None:
        calls, p50, p99 = _timed(fn, seconds)
        rows.append({"what": what, "batch": b, "images_per_s": calls * b, "p50_ms": p50, "p99_ms": p99})

    for b in batches:
        x = torch.randn(b, 3, size, size, device=dev, dtype=dtype)

        def eager(x=x) -> None:
            with torch.inference_mode():
                bare(x)
            sync()

        row(BARE_EAGER, b, eager)
        if device == "cuda":
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.inference_mode():
                bare(x)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), torch.inference_mode():
                bare(x)

            def replay(graph=graph) -> None:
                graph.replay()
                sync()

            row(BARE_GRAPH, b, replay)
        pictures = [frames[i % len(frames)] for i in range(b)]
        row(BACKEND, b, lambda pictures=pictures: scorer.embed_pictures(pictures))
    card = torch.cuda.get_device_name(0) if device == "cuda" else None
    return TorchBench(arch, device, card, picture, rows)
