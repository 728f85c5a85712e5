"""Randomised labelled clip sets for tuning and reporting detection: train, val and soak.

A clip is a `ClipSpec` drawn from a seed: a genre (CCTV, broadcast, general), real footage
filmed by a moving or static camera (cuts between shots for broadcast, a camera sequencer for
CCTV), sensor noise, night/IR, rain or snow, soft focus, on-screen graphics, clean events
(fades, flashes, whip pans, exposure hunting, slates, an IR switch) and at most one fault of
one style family. Fault clips and clean clips come in equal numbers. Splits never share
footage (see footage.CATALOGUE), so a threshold tuned on train is judged on pictures it
never saw. `soak` is an hour or more of clean clips on val footage, for reporting false alarms;
`train_soak` is the same on train footage, for tuning against them.

    vqmon corpus --split train --out state/corpus      (cached: existing clips are kept)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from monitor.demo import FAULT_KINDS, encode_frames
from monitor.demo.cache import spec_hash, write_labels
from monitor.demo.footage import Camera, Footage, Shot, available
from monitor.demo.overlays import Overlay, draw
from monitor.demo.styles import (
    FAMILIES,
    STYLE_VERSION,
    Event,
    FaultRenderer,
    FaultStyle,
    apply_event,
    sample_event,
    sample_fault,
)

log = logging.getLogger(__name__)

CORPUS_VERSION = 3
# Bumped when the rendering of night and dark shots changes: only clips with such a shot are made again.
DARK_SHOT_VERSION = 2
# Luma the brightest parts of a dark (night, film) scene keep: well above blackdetect's 10 %.
DARK_SCENE_HIGHLIGHT = 45.0
SPLITS = ("train", "val", "soak", "train_soak")
SOAK_FOOTAGE = {"soak": "val", "train_soak": "train"}  # long clean splits and whose footage they use
# Val's seed changes when its clips have been inspected one by one (2000 until session 11, 2001
# until session 18): their score no longer measures unseen footage. Since 2002 it holds 10 clips
# a fault, so one miss moves a fault's F1 by a few points, not by a tenth.
SEEDS = {"train": 1000, "val": 2002, "soak": 3000, "train_soak": 4000}
PER_FAULT = {"train": 5, "val": 10}
SIZES = {
    "360p": (640, 360),
    "480p": (854, 480),
    "576p": (704, 576),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
}


@dataclass(frozen=True)
class ShotSpec:
    start: float
    footage: str
    camera: Camera
    gain: float = 1.0  # < 1: a night or dark scene
    soft: float = 0.0  # shallow depth of field / soft optics: Gaussian sigma at 1280 wide
    mono: bool = False  # an IR camera at night


@dataclass(frozen=True)
class ClipSpec:
    name: str
    split: str
    genre: str
    seed: int
    width: int
    height: int
    fps: int
    duration: float
    crf: int
    gop_s: float
    noise: float
    shots: tuple[ShotSpec, ...]
    overlays: tuple[Overlay, ...] = ()
    events: tuple[Event, ...] = ()
    fault: FaultStyle | None = None
    weather: int = 0  # rain/snow streaks
    footage: tuple[str, ...] = field(default=())

    def describe(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("shots")
        d["shots"] = [f"{s.start:.1f}s {s.footage} {s.camera.motion}" for s in self.shots]
        return d


def _pick(rng: np.random.Generator, items: list[Any]) -> Any:
    return items[int(rng.integers(0, len(items)))]


def sample_clip(
    split: str, index: int, fault: str | None, family: str | None, seed: int, only: Sequence[str] | None = None
) -> ClipSpec:
    """One clip drawn from ``seed``; ``fault`` None makes a clean clip (a hard negative).
    ``only``: draw from these of the split's footage (the same clip as before footage was added)."""
    rng = np.random.default_rng([seed, index, 0 if fault is None else 1 + FAULT_KINDS.index(fault)])
    pool: list[Footage] = available(SOAK_FOOTAGE.get(split, split))  # type: ignore[arg-type]
    if only is not None:
        pool = [f for f in pool if f.name in only]
    if fault in ("overexposed", "underexposed"):
        # A gain fault on a night sky is not visibly one: the labels would be wrong.
        pool = [f for f in pool if f.family != "night"] or pool
    genre = _pick(rng, ["cctv", "broadcast", "general"])
    if split in SOAK_FOOTAGE:
        duration = float(rng.uniform(60, 120))
    elif fault is None:
        duration = float(rng.uniform(20, 30))
    else:
        duration = float(rng.uniform(20, 26))
    sizes = {
        "cctv": ["360p", "576p", "576p", "720p", "720p", "1080p"],
        "broadcast": ["360p", "360p", "720p", "720p", "720p", "1080p"],
        "general": ["360p", "480p", "720p"],
    }
    size = _pick(rng, sizes[genre])
    width, height = SIZES[size]
    fps = int(_pick(rng, [10, 12, 15] if genre == "cctv" else [25] if genre == "broadcast" else [15, 20, 25]))
    if size == "1080p":
        fps = min(fps, 12)  # keeps generation time down; 1080p is judged on its pixels, not its rate
    fstart = fend = 0.0
    if fault is not None:
        fstart = float(rng.uniform(9.0, 12.0))
        fend = fstart + float(rng.uniform(5.0, 9.0))
        duration = max(duration, fend + 5.5)
    # An exposure fault on a night scene would be mislabelled (x3 gain on a dark scene looks normal).
    exposure = fault in ("overexposed", "underexposed")
    night = genre == "cctv" and rng.uniform() < 0.35 and not exposure
    noise = float(rng.uniform(1.5, 4.0) if genre == "cctv" else rng.uniform(0.3, 2.5))
    shots: list[ShotSpec] = []

    def new_shot(start: float) -> ShotSpec:
        fo = _pick(rng, pool)
        motion = _pick(
            rng,
            ["static", "static", "patrol", "shake"]
            if genre == "cctv"
            else ["pan", "zoom", "static", "shake", "patrol"],
        )
        cam = Camera(
            motion=motion,
            speed=float(rng.uniform(0.3, 2.0)),
            shake_px=float(rng.uniform(2, 14)) if motion == "shake" else 0.0,
            zoom=float(rng.uniform(1.05, 1.5)),
            movers=int(rng.integers(1, 4)),
            start_frame=int(rng.integers(0, 200)) if fo.kind == "video" and fo.name == "vtest" else 0,
            seed=int(rng.integers(0, 1 << 30)),
        )
        dark = genre == "broadcast" and rng.uniform() < 0.15 and not exposure  # a dark film scene
        gain = float(rng.uniform(0.15, 0.35)) if (night or dark) else 1.0
        soft = float(rng.uniform(2.0, 5.0)) if rng.uniform() < 0.12 else 0.0
        return ShotSpec(start, fo.name, cam, gain, soft, mono=night and rng.uniform() < 0.5)

    shots.append(new_shot(0.0))
    if genre in ("broadcast", "cctv"):
        lo, hi = (3.0, 8.0) if genre == "broadcast" else (6.0, 15.0)
        switching = genre == "broadcast" or rng.uniform() < 0.4  # CCTV: a camera sequencer
        t = float(rng.uniform(lo, hi))
        while switching and t < duration - 1.0:
            if fault is not None and fstart - 4.0 < t < fend + 1.5:
                t = fend + 1.5
                continue
            shot = new_shot(t)
            if shot.footage == shots[-1].footage:
                # The same scene suddenly several times darker, or softer, is what underexposure
                # or a defocus looks like, not a cut: a clean clip must not hold one.
                shot = dataclasses.replace(shot, gain=shots[-1].gain, soft=shots[-1].soft)
            shots.append(shot)
            t += float(rng.uniform(lo, hi))
    overlays: list[Overlay] = []
    want_clock = genre == "cctv" and rng.uniform() < 0.8
    if (fault == "freeze" and family == "osd") or (fault in ("black", "blur", "underexposed") and family == "osd"):
        want_clock = True
    if want_clock:
        overlays.append(
            Overlay(
                "clock",
                _pick(rng, ["tl", "tr", "bl", "br"]),
                float(rng.uniform(0.7, 1.4)),
                bool(rng.uniform() < 0.4),
                _pick(rng, ["CAM 07", "Gate 2", "LOBBY", "PTZ-1"]),
            )
        )
    if (genre == "broadcast" and rng.uniform() < 0.7) or (fault == "freeze" and family == "graphics"):
        overlays.append(
            Overlay(
                "logo",
                _pick(rng, ["tr", "tl", "br"]),
                float(rng.uniform(0.8, 1.5)),
                text=_pick(rng, ["VQ1", "NEWS 24", "TV5"]),
            )
        )
    if (genre == "broadcast" and rng.uniform() < 0.35) or (fault == "freeze" and family == "graphics"):
        overlays.append(Overlay("ticker", "bl", float(rng.uniform(0.8, 1.2)), text="BREAKING: city council meets"))
    if genre == "broadcast" and rng.uniform() < 0.5:
        c0 = float(rng.uniform(2, duration - 6))
        overlays.append(
            Overlay("caption", "bl", 1.0, text="Maria Lopez, reporter", start=c0, end=c0 + float(rng.uniform(3, 6)))
        )
    events: list[Event] = []
    n_events = int(rng.integers(2, 6)) if fault is None else int(rng.integers(0, 3))
    if split in SOAK_FOOTAGE:
        n_events = int(duration / 12)
    kinds = (
        ["fade", "flash", "whip", "exposure_hunt"]
        + (["slate"] if genre == "broadcast" else [])
        + (["ir_switch"] if genre == "cctv" else [])
    )
    taken: list[tuple[float, float]] = [] if fault is None else [(fstart - 3.0, fend + 3.0)]
    for _ in range(n_events * 3):
        if len(events) >= n_events:
            break
        kind = _pick(rng, kinds)
        ev = sample_event(kind, rng, float(rng.uniform(2.0, duration - 3.0)))
        span = (ev.start - 2.0, ev.start + min(ev.length, 8.0) + 2.0)
        if kind == "ir_switch" and (any(e.kind == "ir_switch" for e in events) or fault is not None):
            continue
        if any(a < span[1] and span[0] < b for a, b in taken):
            continue
        taken.append(span)
        events.append(ev)
    fstyle = sample_fault(fault, rng, fstart, fend, family) if fault is not None else None
    name = f"{split}_{index:03d}_{fault or 'clean'}{'_' + fstyle.family if fstyle else ''}"
    return ClipSpec(
        name=name,
        split=split,
        genre=genre,
        seed=int(rng.integers(0, 1 << 30)),
        width=width,
        height=height,
        fps=fps,
        duration=round(duration, 2),
        crf=int(rng.integers(20, 31)),
        gop_s=float(_pick(rng, [0.5, 1.0, 2.0, 2.0, 4.0])),
        noise=noise,
        shots=tuple(shots),
        overlays=tuple(overlays),
        events=tuple(sorted(events, key=lambda e: e.start)),
        fault=fstyle,
        weather=int(rng.integers(80, 400)) if rng.uniform() < 0.12 else 0,
        footage=tuple(sorted({s.footage for s in shots})),
    )


def plan(split: str, per_fault: int, seed: int, soak_hours: float = 1.0) -> list[ClipSpec]:
    """The clips of a split: ``per_fault`` clips of each fault (families in turn) and as many
    clean clips as fault clips; for a soak split, clean clips until ``soak_hours`` is reached."""
    specs: list[ClipSpec] = []
    if split in SOAK_FOOTAGE:
        total, i = 0.0, 0
        while total < soak_hours * 3600:
            spec = sample_clip(split, i, None, None, seed)
            specs.append(spec)
            total += spec.duration
            i += 1
        return specs
    i = 0
    for fault in FAULT_KINDS:
        fams = FAMILIES[fault]
        for k in range(per_fault):
            specs.append(sample_clip(split, i, fault, fams[k % len(fams)], seed))
            i += 1
    for _ in range(per_fault * len(FAULT_KINDS)):
        specs.append(sample_clip(split, i, None, None, seed))
        i += 1
    return specs


class _Noise:
    """Sensor noise from pre-drawn fields at a random offset each frame: drawing fresh Gaussian
    noise in float for every 1080p frame would dominate generation time. The fields are kept
    as saturating uint8 positive and negative parts per sigma, so adding them is two cv2 calls."""

    def __init__(self, w: int, h: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.w, self.h = w, h
        self.bank = rng.standard_normal((2, h + 64, w + 64), dtype=np.float32)
        self._parts: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, img: np.ndarray, sigma: float, mono: bool = True) -> np.ndarray:
        if sigma <= 0:
            return img
        key = round(sigma, 1)
        if key not in self._parts:
            if len(self._parts) > 8:
                self._parts.clear()
            n = np.rint(self.bank * key)
            self._parts[key] = (np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8))
        pos, neg = self._parts[key]
        k, oy, ox = int(self.rng.integers(0, 2)), int(self.rng.integers(0, 64)), int(self.rng.integers(0, 64))
        p = cv2.merge([pos[k, oy : oy + self.h, ox : ox + self.w]] * 3)
        q = cv2.merge([neg[k, oy : oy + self.h, ox : ox + self.w]] * 3)
        return cv2.subtract(cv2.add(img, p), q)


def render(spec: ClipSpec) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(spec.seed)
    from monitor.demo.footage import CATALOGUE

    by_name = {f.name: f for f in CATALOGUE}
    noise = _Noise(spec.width, spec.height, rng)
    fault = FaultRenderer(spec.fault, spec.width, spec.height, rng) if spec.fault else None
    flakes = rng.uniform(0, 1, (spec.weather, 3))
    cached: dict[int, Shot] = {}
    highlights: dict[int, float] = {}  # per shot: its brightest luma before any gain
    for i in range(round(spec.duration * spec.fps)):
        t = i / spec.fps
        k = max(j for j, s in enumerate(spec.shots) if s.start <= t)
        ss = spec.shots[k]
        if k not in cached:
            cached.clear()
            cached[k] = Shot(by_name[ss.footage], ss.camera, spec.width, spec.height)
        shot = cached[k]
        # At night the people and cars that keep a static scene alive carry lights or shine under
        # IR: drawn after the darkening, they stay visible (a night scene where nothing visibly
        # moves is a frozen picture to anyone watching, not a clean clip).
        lit_movers = ss.gain < 1.0
        img = shot.render(t - ss.start, movers=not lit_movers)
        if ss.soft > 0:
            img = cv2.GaussianBlur(img, (0, 0), ss.soft * spec.width / 1280)
        mono = ss.mono
        gain = ss.gain
        for ev in spec.events:
            if ev.kind == "ir_switch" and t >= ev.start:
                mono, gain = True, gain * ev.params["gain"]
        if mono:
            img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        if gain < 1.0:
            # A dark scene keeps highlights one can see: one whose brightest parts sit below 10 %
            # of full scale is a black picture by blackdetect's definition, not a clean clip.
            if k not in highlights:
                highlights[k] = float(np.percentile(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), 99.0))
            gain = max(gain, DARK_SCENE_HIGHLIGHT / max(highlights[k], 1.0))
        if gain != 1.0:
            img = cv2.convertScaleAbs(img, alpha=gain)
        if lit_movers:
            shot.draw_movers(img, t - ss.start, mono=mono)
        for fx, fy, fs in flakes:
            x = int(((fx + 0.05 * np.sin(t * 2 + fs * 6)) % 1.0) * spec.width)
            y = int(((fy + t * (0.3 + 0.5 * fs)) % 1.0) * spec.height)
            cv2.line(img, (x, y), (x + 1, y + max(3, spec.height // 40)), (215, 215, 215), 1)
        for ev in spec.events:
            if ev.kind not in ("ir_switch", "slate") and ev.start <= t < ev.start + ev.length:
                img = apply_event(img, ev, t)
        # Graphics burned in by the camera are under a fault (frozen, blocky with the picture);
        # for styles whose graphics stay live (a ticking clock on a frozen picture) they go on top.
        on_top = fault is not None and fault.s.osd_on_top
        if not on_top:
            for ov in spec.overlays:
                draw(img, ov, t)
        pre = img
        sensor = spec.noise * (1.6 if gain < 0.5 else 1.0)
        img = noise(img, sensor)
        for ev in spec.events:
            if ev.kind == "slate" and ev.start <= t < ev.start + ev.length:
                img = apply_event(img, ev, t)  # a digital graphic: no sensor noise
        if fault is not None:
            img = fault.apply(img, pre, t, noise, sensor)
            if on_top:
                img = img.copy()
                for ov in spec.overlays:
                    draw(img, ov, t)
        yield img


def encode(spec: ClipSpec, path: Path) -> None:
    encode_frames(
        path,
        render(spec),
        width=spec.width,
        height=spec.height,
        fps=spec.fps,
        gop_s=spec.gop_s,
        crf=spec.crf,
        preset="superfast",
    )


def _label(spec: ClipSpec) -> dict[str, Any]:
    f = spec.fault
    return {
        "file": f"{spec.name}.mp4",
        "duration": spec.duration,
        "fps": spec.fps,
        "width": spec.width,
        "height": spec.height,
        "faults": [] if f is None else [{"fault": f.fault, "start": round(f.start, 2), "end": round(f.end, 2)}],
        "footage": list(spec.footage),
        "note": json.dumps(spec.describe(), default=str),
    }


def _spec_hash(spec: ClipSpec) -> str:
    style = STYLE_VERSION.get(spec.fault.fault, 1) if spec.fault else 1
    version = f"{CORPUS_VERSION}" if style == 1 else f"{CORPUS_VERSION}.{style}"
    if any(s.gain < 1.0 for s in spec.shots):
        version += f"-dark{DARK_SHOT_VERSION}"
    # Every field, shots included: a change to a shot's gain or softness must regenerate the clip.
    return spec_hash(version, spec)


def _write_one(args: tuple[ClipSpec, str]) -> str:
    spec, folder = args
    path = Path(folder) / f"{spec.name}.mp4"
    encode(spec, path)
    return path.name


def write_corpus(
    folder: str | os.PathLike[str],
    split: str,
    *,
    per_fault: int | None = None,
    seed: int | None = None,
    soak_hours: float = 1.0,
    jobs: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Generate (or re-use) a split's clips under folder/split; returns its labels.json."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    seed = seed if seed is not None else SEEDS[split]
    per_fault = per_fault if per_fault is not None else PER_FAULT.get(split, 5)
    out = Path(folder) / split
    out.mkdir(parents=True, exist_ok=True)
    specs = plan(split, per_fault, seed, soak_hours)
    stamps = out / "hashes.json"
    known: dict[str, str] = json.loads(stamps.read_text()) if stamps.is_file() else {}
    todo = [s for s in specs if known.get(s.name) != _spec_hash(s) or not (out / f"{s.name}.mp4").is_file()]
    done = len(specs) - len(todo)
    if todo:
        log.info("generating %d %s clips in %s (%d cached)", len(todo), split, out, done)
        if jobs > 1:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(jobs) as pool:
                for _name in pool.imap_unordered(_write_one, [(s, str(out)) for s in todo]):
                    done += 1
                    if progress:
                        progress(done, len(specs))
        else:
            for s in todo:
                _write_one((s, str(out)))
                done += 1
                if progress:
                    progress(done, len(specs))
        known.update({s.name: _spec_hash(s) for s in specs})
        stamps.write_text(json.dumps(known, indent=0))
    return write_labels(out / "labels.json", split, [_label(s) for s in specs])
