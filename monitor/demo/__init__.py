"""Make a demo/test clip from real photographs, with picture faults injected at known times.

The photographs (scikit-image's public-domain/CC0 sample data, see assets/README.md) are
panned and zoomed like a slow camera, with a moving object and sensor noise, then encoded as
H.264 (or HEVC) by PyAV. The same generator makes the test clips and the benchmark's 1080p clip,
and writes a vqmon.labels/1 file describing the faults, so the demo can be scored too.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path

import av
import cv2
import numpy as np

log = logging.getLogger(__name__)

GENERATOR_VERSION = 3
FAULT_KINDS = (
    "black",
    "freeze",
    "blur",
    "noise",
    "overexposed",
    "underexposed",
    "blocking",
    "no_signal",
    "obstruction",
)


@dataclass(frozen=True)
class FaultSpan:
    fault: str
    start: float
    end: float
    # Fault strength; None takes the default. blur: Gaussian sigma in px at 1280 wide; noise:
    # sigma; over/underexposed: gain; blocking: JPEG quality (>0) or -N for downscale xN +
    # nearest-neighbour upscale; obstruction: covered fraction of the frame.
    strength: float | None = None


@dataclass(frozen=True)
class SceneStyle:
    """How the clean picture looks: for hard negatives that must not raise alerts."""

    moving: bool = True  # slow pan/zoom and a moving disc; False = a static camera
    gain: float = 1.0  # < 1 for a legitimately dark (night) scene
    soft: float = 0.0  # Gaussian sigma (px at 1280 wide): shallow depth of field / soft content
    noise: float = 2.0  # sensor noise sigma
    flicker: float = 0.0  # relative amplitude of a slow global light flicker
    snow: int = 0  # number of falling snow/rain flakes
    fade: tuple[float, float] | None = None  # (start, length): a fade through black (not a fault)
    clock: bool = False  # a CCTV-style on-screen date/time that ticks every second


# Scenes change every 10 s; faults other than black/no_signal sit inside one scene, as they
# would on a real camera (a cut during a defocus makes the new scene's softness look normal).
DEMO_FAULTS = (
    FaultSpan("black", 8.0, 13.0),
    FaultSpan("freeze", 15.0, 19.0),
    FaultSpan("blur", 22.0, 28.0),
    FaultSpan("noise", 32.0, 36.0),
    FaultSpan("overexposed", 42.0, 47.0),
    FaultSpan("no_signal", 50.0, 55.0),
)
DEMO_DURATION_S = 60.0


def _photos() -> list[np.ndarray]:
    folder = resources.files("monitor") / "demo" / "assets"
    images = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".jpg"):
            img = cv2.imdecode(np.frombuffer(entry.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                raise RuntimeError(f"{entry}: not a readable JPEG (reinstall the package)")
            images.append(img)
    if not images:
        raise RuntimeError("demo assets missing from the installed package (monitor/demo/assets/*.jpg)")
    return images


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """The picture after JPEG compression at ``quality`` (1-100): blocking as a codec makes it."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    if out is None:
        raise RuntimeError("OpenCV could not round-trip a JPEG")
    return out


def colour_bars(width: int, height: int) -> np.ndarray:
    """SMPTE-style 75% colour bars (BGR), the classic 'no signal' card."""
    colours = [
        (191, 191, 191),
        (0, 191, 191),
        (191, 191, 0),
        (0, 191, 0),
        (191, 0, 191),
        (0, 0, 191),
        (191, 0, 0),
    ]
    img = np.zeros((height, width, 3), np.uint8)
    edges = np.linspace(0, width, len(colours) + 1).astype(int)
    top = int(height * 0.67)
    for i, c in enumerate(colours):
        img[:top, edges[i] : edges[i + 1]] = c
    img[top:, :] = (16, 16, 16)
    img[top:, : width // 4] = (106, 41, 0)
    img[top:, width // 4 : width // 2] = (235, 235, 235)
    return img


class SceneRenderer:
    """Slow pan/zoom across photographs, a moving disc, per-frame Gaussian sensor noise."""

    def __init__(
        self, width: int, height: int, fps: float, seed: int = 0, scene_s: float = 10.0, style: SceneStyle | None = None
    ) -> None:
        self.w, self.h, self.fps = width, height, fps
        self.scene_s = scene_s
        self.style = style or SceneStyle()
        self.photos = _photos()
        self.rng = np.random.default_rng(seed)
        self._flakes = self.rng.uniform(0, 1, (self.style.snow, 3))

    def render(self, t: float) -> np.ndarray:
        st = self.style
        tm = t if st.moving else 0.0
        scene = int(t // self.scene_s)
        photo = self.photos[scene % len(self.photos)]
        u = (tm % self.scene_s) / self.scene_s
        ph, pw = photo.shape[:2]
        # Cover the canvas, then zoom in 1.15x..1.35x and pan across the spare margin.
        cover = max(self.w / pw, self.h / ph)
        zoom = cover * (1.15 + 0.2 * u)
        vw, vh = self.w / zoom, self.h / zoom
        direction = 1 if scene % 2 == 0 else -1
        cx = pw / 2 + direction * (u - 0.5) * (pw - vw) * 0.8
        cy = ph / 2 + (u - 0.5) * (ph - vh) * 0.5
        m = np.array([[zoom, 0, self.w / 2 - zoom * cx], [0, zoom, self.h / 2 - zoom * cy]], np.float32)
        img = cv2.warpAffine(photo, m, (self.w, self.h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if st.moving:
            r = max(4, self.h // 24)
            x = int((0.1 + 0.8 * ((t * 0.13) % 1.0)) * self.w)
            y = int(self.h * (0.5 + 0.3 * np.sin(t * 1.3)))
            cv2.circle(img, (x, y), r, (40, 200, 240), -1, lineType=cv2.LINE_AA)
        if st.soft > 0:
            img = cv2.GaussianBlur(img, (0, 0), st.soft * self.w / 1280)
        for fx, fy, fs in self._flakes:
            x = int(((fx + 0.05 * np.sin(t * 2 + fs * 6)) % 1.0) * self.w)
            y = int(((fy + t * (0.15 + 0.2 * fs)) % 1.0) * self.h)
            cv2.line(img, (x, y), (x + 1, y + max(2, self.h // 60)), (235, 235, 235), 1 + int(fs * 2))
        if st.clock:
            sec = int(t)
            text = f"2026-11-25 03:{sec // 60 % 60:02d}:{sec % 60:02d}  CAM 07"
            scale = self.h / 500
            cv2.putText(
                img,
                text,
                (8, max(12, int(self.h * 0.06))),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                (255, 255, 255),
                max(1, int(scale * 2)),
                cv2.LINE_AA,
            )
        gain = st.gain * (1.0 + st.flicker * np.sin(2 * np.pi * 0.7 * t))
        if st.fade is not None:
            f0, flen = st.fade
            if f0 <= t < f0 + flen:
                gain *= abs(1.0 - 2.0 * (t - f0) / flen)  # down to black and back up
        if gain != 1.0:
            img = np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        return self.add_noise(img, st.noise)

    def add_noise(self, img: np.ndarray, sigma: float) -> np.ndarray:
        noise = self.rng.standard_normal(img.shape, dtype=np.float32)
        noise *= sigma
        noise += img
        np.clip(noise, 0, 255, out=noise)
        return noise.astype(np.uint8)


def _obstruct(img: np.ndarray, coverage: float, t: float) -> np.ndarray:
    """A dark, out-of-focus object over ``coverage`` of the frame, from the left, wobbling."""
    h, w = img.shape[:2]
    edge_mask = np.zeros((h, w), np.float32)
    edge = int(w * coverage + 0.02 * w * np.sin(t * 3))
    edge_mask[:, :edge] = 1.0
    mask = cv2.GaussianBlur(edge_mask, (0, 0), max(2.0, w / 60))
    cover = np.full_like(img, 25)
    out = img.astype(np.float32) * (1 - mask[..., None]) + cover.astype(np.float32) * mask[..., None]
    return out.astype(np.uint8)


def apply_fault(
    kind: str, img: np.ndarray, renderer: SceneRenderer, frozen: np.ndarray | None, strength: float | None = None, t=0.0
) -> np.ndarray:
    h, w = img.shape[:2]
    if kind == "black":
        return renderer.add_noise((img.astype(np.float32) * 0.015).astype(np.uint8), 2.0)
    if kind == "freeze":
        assert frozen is not None
        return frozen
    if kind == "blur":
        return cv2.GaussianBlur(img, (0, 0), (strength or 5.0) * w / 1280)
    if kind == "noise":
        return renderer.add_noise(img, strength or 30.0)
    if kind == "overexposed":
        return np.clip(img.astype(np.float32) * (strength or 3.0), 0, 255).astype(np.uint8)
    if kind == "underexposed":
        return (img.astype(np.float32) * (strength or 0.2)).astype(np.uint8)
    if kind == "blocking":
        q = strength or 5
        if q < 0:
            n = int(-q)
            small = cv2.resize(img, (max(1, w // n), max(1, h // n)), interpolation=cv2.INTER_AREA)
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        return jpeg_roundtrip(img, int(q))
    if kind == "no_signal":
        return colour_bars(w, h)
    if kind == "obstruction":
        # The cover is in front of the lens: the sensor's noise is on it too.
        return renderer.add_noise(_obstruct(img, strength or 0.8, t), renderer.style.noise)
    raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")


def frames(
    width: int,
    height: int,
    fps: float,
    duration_s: float,
    faults: tuple[FaultSpan, ...],
    seed: int = 0,
    style: SceneStyle | None = None,
    scene_s: float = 10.0,
) -> Iterator[np.ndarray]:
    renderer = SceneRenderer(width, height, fps, seed, scene_s=scene_s, style=style)
    frozen: np.ndarray | None = None
    for i in range(round(duration_s * fps)):
        t = i / fps
        active = next((f for f in faults if f.start <= t < f.end), None)
        img = renderer.render(t)
        if active is None:
            frozen = None
            yield img
            continue
        if active.fault == "freeze" and frozen is None:
            frozen = img
        yield apply_fault(active.fault, img, renderer, frozen, active.strength, t)


def encode_frames(
    path: str | os.PathLike[str],
    images: Iterable[np.ndarray],
    *,
    width: int,
    height: int,
    fps: int,
    gop_s: float = 2.0,
    crf: int = 26,
    codec: str = "libx264",
    preset: str = "veryfast",
    sound: Sound | None = None,
    camera_kbps: int | None = None,
) -> Path:
    """Encode BGR frames as an MP4 with a fixed GOP (atomically: written beside, then renamed);
    with ``sound``, an AAC track too, interleaved with the picture as a muxer would.

    ``camera_kbps`` (H.264/HEVC): encode as an IP camera's main stream does instead of at ``crf``:
    a capped bitrate and no B-frames (cameras leave them out for latency), which also makes the
    decoder keep fewer pictures."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part{os.getpid()}")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        gop = max(1, round(gop_s * fps))
        stream.codec_context.gop_size = gop
        if codec in ("libx264", "libx265"):
            params = f"keyint={gop}:min-keyint={gop}:scenecut=0"
            stream.options = {"crf": str(crf), "preset": preset}
            if camera_kbps is not None:
                params += f":bframes=0:bitrate={camera_kbps}:vbv-maxrate={camera_kbps}:vbv-bufsize={2 * camera_kbps}"
                stream.options = {"preset": preset}
            stream.options["x264-params" if codec == "libx264" else "x265-params"] = (
                params if codec == "libx264" else params + ":log-level=error"
            )
        track = _SoundWriter(container, sound) if sound is not None else None
        for i, img in enumerate(images):
            if track is not None:
                track.write_until(i / fps)
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        if track is not None:
            track.finish()
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, out)
    return out


@dataclass(frozen=True)
class Sound:
    """A clip's sound track: float samples (channels, n) at ``rate``, 1.0 = full scale, and
    stretches (start_s, end_s) in which no audio packet is written at all (a track that drops)."""

    samples: np.ndarray
    rate: int = 48000
    gaps: tuple[tuple[float, float], ...] = ()


class _SoundWriter:
    FRAME = 1024  # AAC's frame size

    def __init__(self, container: av.container.OutputContainer, sound: Sound) -> None:
        self.container, self.sound = container, sound
        layout = "mono" if sound.samples.shape[0] == 1 else "stereo"
        self.stream = container.add_stream("aac", rate=sound.rate, layout=layout)
        self.stream.bit_rate = 128_000
        self.layout = layout
        self.pos = 0

    def write_until(self, t: float) -> None:
        s = self.sound
        end = min(s.samples.shape[1], int(t * s.rate))
        while self.pos + self.FRAME <= end:
            start = self.pos / s.rate
            self.pos += self.FRAME
            if any(a <= start < b for a, b in s.gaps):
                continue
            part = np.ascontiguousarray(s.samples[:, self.pos - self.FRAME : self.pos], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(part, format="fltp", layout=self.layout)
            frame.sample_rate, frame.pts, frame.time_base = s.rate, self.pos - self.FRAME, Fraction(1, s.rate)
            for packet in self.stream.encode(frame):
                self.container.mux(packet)

    def finish(self) -> None:
        self.write_until(self.sound.samples.shape[1] / self.sound.rate)
        for packet in self.stream.encode(None):
            self.container.mux(packet)


def write_clip(
    path: str | os.PathLike[str],
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    duration_s: float = 10.0,
    faults: tuple[FaultSpan, ...] = (),
    codec: str = "libx264",
    gop_s: float = 2.0,
    crf: int = 26,
    seed: int = 0,
    write_labels: bool = True,
    style: SceneStyle | None = None,
    scene_s: float = 10.0,
    sound: Sound | None = None,
    camera_kbps: int | None = None,
) -> Path:
    """Encode a clip (atomically: written beside, then renamed) and its labels file."""
    out = encode_frames(
        path,
        frames(width, height, fps, duration_s, faults, seed, style, scene_s),
        width=width,
        height=height,
        fps=fps,
        gop_s=gop_s,
        crf=crf,
        codec=codec,
        sound=sound,
        camera_kbps=camera_kbps,
    )
    if write_labels:
        labels = {
            "schema": "vqmon.labels/1",
            "clips": [
                {
                    "file": out.name,
                    "duration": duration_s,
                    "fps": fps,
                    "width": width,
                    "height": height,
                    "faults": [{"fault": f.fault, "start": f.start, "end": f.end} for f in faults],
                    "note": f"generated by vqmon demo v{GENERATOR_VERSION}",
                }
            ],
        }
        out.with_suffix(".labels.json").write_text(json.dumps(labels, indent=1))
    return out


def ensure_demo_clip(path: str | os.PathLike[str]) -> Path:
    """The demo clip, generated once and then re-used."""
    out = Path(path)
    stamp = out.with_suffix(".version")
    if out.is_file() and stamp.is_file() and stamp.read_text().strip() == str(GENERATOR_VERSION):
        return out
    log.info("generating demo clip %s (once; %.0f s of 640x360 video)", out, DEMO_DURATION_S)
    write_clip(out, duration_s=DEMO_DURATION_S, faults=DEMO_FAULTS)
    stamp.write_text(str(GENERATOR_VERSION))
    return out
