"""Fixtures with real parts: clips encoded by PyAV, a real RTSP server on a loopback port."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from benchmarks.broker import Mosquitto, free_port
from monitor.demo import FaultSpan, write_clip

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SCRIPT = ROOT / "tests" / "rtsp_server.py"
VQMON = [sys.executable, "-m", "monitor"]


CLIP_ARCH = "vqmon-tiny"  # a small open_clip architecture with random weights, so CI stays fast


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CLIP model directory written by our exporter (random weights, every precision)."""
    pytest.importorskip("torch", reason="the export extra is not installed (make test installs it)")
    from exporters.clip_export import export_clip

    pytest.importorskip("open_clip")
    out = tmp_path_factory.mktemp("models") / "tiny"
    export_clip(out, arch=CLIP_ARCH, random_init=True, int8=True, fp16=True, torch_program=True)  # seed 0
    return out


@pytest.fixture(scope="session")
def torch_model(exported: Path):
    """The same weights in torch: the model re-created from the seed the exporter used."""
    pytest.importorskip("torch")
    from exporters.clip_export import load_model

    _, _, model, preprocess, tokenizer = load_model(CLIP_ARCH, None, None, True)
    return model, preprocess, tokenizer


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll until predicate() is true; the deadline only bounds a hang, it asserts no speed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real H.264 clips (and HEVC where the encoder exists), made once per session."""
    d = tmp_path_factory.mktemp("clips")
    out = {
        "clean": write_clip(d / "clean.mp4", width=320, height=180, fps=25, duration_s=4.0),
        "black": write_clip(
            d / "black.mp4",
            width=320,
            height=180,
            fps=25,
            duration_s=10.0,
            faults=(FaultSpan("black", 3.0, 6.0),),
        ),
    }
    try:
        out["hevc"] = write_clip(d / "hevc.mp4", width=320, height=180, fps=25, duration_s=3.0, codec="libx265")
    except (av.error.FFmpegError, ValueError) as exc:  # pragma: no cover - depends on the ffmpeg build
        print(f"HEVC encoder unavailable: {exc}")
    return out


class RtspServer:
    def __init__(
        self,
        tmp: Path,
        clip: Path | None = None,
        path: str = "/live",
        pattern: str = "ball",
        audio: float | None = None,
    ) -> None:
        self.port = free_port()
        self.clip = clip
        self.path = path
        self.pattern = pattern  # videotestsrc's, when there is no clip: ball, black, snow...
        self.audio = audio  # with the live pattern: a 1 kHz sine track at this amplitude
        self.log = tmp / f"rtsp-{self.port}.log"
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        cmd = [SYSTEM_PYTHON, str(RTSP_SCRIPT), str(self.port), "--path", self.path, "--pattern", self.pattern]
        if self.clip:
            cmd += ["--clip", str(self.clip)]
        if self.audio is not None:
            cmd += ["--audio", str(self.audio)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready: list[str] = []

        def read() -> None:
            assert self.proc and self.proc.stdout
            for line in self.proc.stdout:
                if line.startswith(("READY", "FAILED")):
                    ready.append(line)
                    break

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(30)
        if not ready or not ready[0].startswith("READY"):
            self.kill()
            pytest.fail(f"RTSP test server did not start: {ready}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def rtsp_server(tmp_path: Path) -> Iterator[type[RtspServer]]:
    """A factory: rtsp_server(clip=None) -> started RtspServer; all are killed at teardown."""
    probe = "import gi; gi.require_version('GstRtspServer', '1.0')"
    if not Path(SYSTEM_PYTHON).exists() or subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode:
        pytest.fail(
            "GStreamer RTSP server bindings missing: run `make test` (it installs gir1.2-gst-rtsp-server-1.0 "
            "python3-gi python3-gst-1.0 and the GStreamer plugins)"
        )
    servers: list[RtspServer] = []

    def make(
        clip: Path | None = None, path: str = "/live", pattern: str = "ball", audio: float | None = None
    ) -> RtspServer:
        s = RtspServer(tmp_path, clip, path, pattern, audio)
        s.start()
        servers.append(s)
        return s

    yield make  # type: ignore[misc]
    for s in servers:
        if s.proc and s.proc.poll() is None:
            s.resume()
        s.kill()


class LiveRun:
    """A live-mode Pipeline running in a background thread, collecting every event it emits."""

    def __init__(self, specs, **kwargs) -> None:
        from monitor.analyze import CollectSink
        from monitor.runtime import Pipeline
        from monitor.sinks import Fanout

        self.sink = CollectSink()
        self.pipeline = Pipeline(specs, Fanout([self.sink]), **kwargs)
        self.thread = threading.Thread(target=self.pipeline.run, daemon=True)

    def __enter__(self) -> LiveRun:
        self.pipeline.start()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stuck = self.pipeline.shutdown()
        self.thread.join(10)

    def events(self, fault: str | None = None, event: str | None = None, stream: str | None = None):
        return [
            e
            for e in list(self.sink.events)
            if (fault is None or e.fault == fault)
            and (event is None or e.event == event)
            and (stream is None or e.stream == stream)
        ]


def stream_settings(**overrides):
    """Validated per-stream settings from a plain dict, like one stream entry in a config file."""
    from monitor.config import parse_config

    cfg = parse_config({"streams": [{"name": "s", "url": "x.mp4", **overrides}]})
    return cfg.streams[0]


@pytest.fixture
def mosquitto(tmp_path: Path):
    """A factory: mosquitto(extra_conf="") -> started broker; all are stopped at teardown."""
    import shutil

    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is missing: run `make test` (it installs Debian's mosquitto)")
    brokers: list[Mosquitto] = []

    def make(extra_conf: str = "") -> Mosquitto:
        b = Mosquitto(tmp_path, extra_conf)
        try:
            b.start()
        except RuntimeError as exc:
            pytest.fail(str(exc))
        brokers.append(b)
        return b

    yield make
    for b in brokers:
        b.stop()
