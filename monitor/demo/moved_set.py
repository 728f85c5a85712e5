"""Labelled clips for the `moved` check (`vqmon eval moved`): fixed CCTV cameras over real
footage (the corpus catalogue's, split by footage: train and val never share a scene) that are
turned away, knocked askew or zoomed - abruptly or in a swing of a second or two - and stay
so; and as many hard negatives: crowds and a truck passing close, heavy shake, a day/night IR
switch, lights going on or off, and (judged with ``known_views`` declared) a PTZ preset tour.

Scenes that look the same wherever a camera points (a texture, a night sky) and edited
content (its cuts change the view by design) are left out: no check can tell a re-aimed camera
there, so a label would be a guess.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from monitor.demo import encode_frames
from monitor.demo.cache import make_cached, spec_hash, write_labels
from monitor.demo.footage import Camera, Shot, available

VERSION = 1
# test: a third draw on val's footage with seeds of its own, made after a val failure led to a
# fix (the edge floor), so the figures after it are reported on clips nothing was fitted to.
SEEDS = {"train": 5100, "val": 6200, "test": 7300}
FOOTAGE_SPLIT = {"train": "train", "val": "val", "test": "val"}
# A fixed camera is the premise: footage filmed by a moving one is left out. Measured (median
# global shift per second, phase correlation at 160 px wide): bikes 33 px/s (a tracking shot);
# vtest 0.11, tree 0.15 (fixed cameras).
MOVING_CAMERA = {"bikes"}
FAULT_STYLES = ("turned", "knocked", "zoomed")
NEGATIVE_STYLES = ("passers", "shake", "ir_switch", "lights")
PTZ_VIEWS = 3  # known_views the PTZ tour clips are judged with
SIZES = ((640, 360), (704, 576), (1280, 720))


@dataclass
class MovedClipSpec:
    name: str
    split: str
    seed: int
    footage: str
    style: str  # FAULT_STYLES, NEGATIVE_STYLES or "ptz_tour"
    width: int
    height: int
    fps: int
    duration: float
    at: float  # when the view changes (or the negative event starts)
    swing_s: float  # 0: at once; else the move takes this long
    dx: float = 0.0  # the new aim: shift as a fraction of the width / height, rotation, zoom
    dy: float = 0.0
    angle: float = 0.0
    scale: float = 1.0
    shake_px: float = 0.0
    noise: float = 2.0
    faults: list[dict[str, Any]] = field(default_factory=list)


def plan(split: str, per_style: int) -> list[MovedClipSpec]:
    pool = [
        f
        for f in available(FOOTAGE_SPLIT[split])  # type: ignore[arg-type]
        if f.family not in ("texture", "night", "broadcast") and f.name not in MOVING_CAMERA
    ]
    specs = []
    for k, style in enumerate((*FAULT_STYLES, *NEGATIVE_STYLES, "ptz_tour")):
        for i in range(per_style):
            seed = SEEDS[split] + 100 * k + i
            rng = np.random.default_rng(seed)
            w, h = SIZES[int(rng.integers(0, len(SIZES)))]
            spec = MovedClipSpec(
                name=f"{split}_{style}_{i:02d}",
                split=split,
                seed=seed,
                footage=pool[int(rng.integers(0, len(pool)))].name,
                style=style,
                width=w,
                height=h,
                fps=int(rng.choice([10, 12, 15])),
                duration=float(rng.choice([40.0, 45.0, 50.0])),
                at=round(float(rng.uniform(15.0, 25.0)), 2),
                swing_s=round(float(rng.choice([0.0, 0.0, rng.uniform(0.5, 2.0)])), 2),
                shake_px=float(rng.uniform(0.0, 4.0)),
                noise=float(rng.uniform(1.0, 4.0)),
            )
            sign = rng.choice([-1.0, 1.0], size=2)
            if style == "turned":
                spec.dx, spec.dy = sign[0] * rng.uniform(0.3, 0.6), sign[1] * rng.uniform(0.0, 0.2)
            elif style == "knocked":
                spec.angle = float(sign[0] * rng.uniform(8.0, 20.0))
                spec.dx, spec.dy = sign[1] * rng.uniform(0.08, 0.2), float(rng.uniform(0.05, 0.2))
            elif style == "zoomed":
                spec.scale = float(rng.choice([rng.uniform(0.5, 0.7), rng.uniform(1.6, 2.2)]))
            elif style == "shake":
                spec.shake_px = float(rng.uniform(10.0, 20.0))
            if style in FAULT_STYLES:
                spec.faults = [{"fault": "moved", "start": spec.at, "end": spec.duration}]
            specs.append(spec)
    return specs


class _AimedShot(Shot):
    """A fixed camera whose aim changes: the footage's view, then turned/rotated/zoomed."""

    def __init__(self, spec: MovedClipSpec, camera: Camera, footage: Any) -> None:
        super().__init__(footage, camera, spec.width, spec.height)
        self.spec = spec
        self._aim_rng = np.random.default_rng(spec.seed + 1)
        # PTZ presets: the first view, then others, in turn every 12-16 s.
        self.presets = [(0.0, 0.0, 0.0, 1.0)] + [
            (
                float(self._aim_rng.uniform(-0.5, 0.5)),
                float(self._aim_rng.uniform(-0.2, 0.2)),
                0.0,
                float(self._aim_rng.uniform(0.8, 1.4)),
            )
            for _ in range(PTZ_VIEWS - 1)
        ]
        self.dwell = float(self._aim_rng.uniform(12.0, 16.0))

    def _aim(self, t: float) -> tuple[float, float, float, float]:
        s = self.spec
        if s.style == "ptz_tour":
            k = int(t // self.dwell)
            return self.presets[k % len(self.presets)]
        if s.style not in FAULT_STYLES or t < s.at:
            return (0.0, 0.0, 0.0, 1.0)
        u = 1.0 if s.swing_s <= 0 else min(1.0, (t - s.at) / s.swing_s)
        return (u * s.dx, u * s.dy, u * s.angle, 1.0 + u * (s.scale - 1.0))

    def _view_matrix(self, src: np.ndarray, t: float) -> np.ndarray:
        base = np.vstack([super()._view_matrix(src, t), [0.0, 0.0, 1.0]])
        dx, dy, angle, scale = self._aim(t)
        w, h = self.spec.width, self.spec.height
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        turn[0, 2] += dx * w
        turn[1, 2] += dy * h
        return (np.vstack([turn, [0.0, 0.0, 1.0]]) @ base)[:2].astype(np.float32)


def _frames(spec: MovedClipSpec):
    from monitor.demo.footage import CATALOGUE

    footage = next(f for f in CATALOGUE if f.name == spec.footage)
    rng = np.random.default_rng(spec.seed)
    movers = int(rng.integers(6, 11)) if spec.style == "passers" else int(rng.integers(1, 4))
    # Zoomed in enough that a re-aimed view still lies on the footage.
    camera = Camera(motion="shake" if spec.shake_px else "static", shake_px=spec.shake_px, zoom=1.8, movers=movers,
                    seed=int(rng.integers(0, 1 << 30)))  # fmt: skip
    shot = _AimedShot(spec, camera, footage)
    truck_at = spec.at if spec.style == "passers" else None
    for i in range(int(spec.duration * spec.fps)):
        t = i / spec.fps
        img = shot.render(t).astype(np.float32)
        if truck_at is not None and truck_at <= t < truck_at + 4.0:
            # A truck passing close: a dark box over a third of the picture, crossing in 4 s.
            u = (t - truck_at) / 4.0
            x0 = int((-0.4 + 1.4 * u) * spec.width)
            img[int(0.3 * spec.height) :, max(0, x0) : max(0, x0 + int(0.4 * spec.width))] *= 0.25
        if spec.style == "ir_switch" and t >= spec.at:
            grey = img.mean(axis=2, keepdims=True)
            img = (np.repeat(grey, 3, axis=2) * 0.45 + 10.0).astype(np.float32)
            img += rng.normal(0.0, 3.0, img.shape[:2])[..., None]
        if spec.style == "lights":
            img *= 1.0 if t < spec.at else 0.55
        img += rng.normal(0.0, spec.noise, img.shape[:2])[..., None]
        yield np.clip(img, 0, 255).astype(np.uint8)


def _encode(spec: MovedClipSpec, path: Path) -> None:
    crf = 23 + spec.seed % 6
    encode_frames(path, _frames(spec), width=spec.width, height=spec.height, fps=spec.fps, crf=crf)


def write_moved_set(
    folder: str | os.PathLike[str],
    split: str,
    *,
    per_style: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, Path]:
    """Generate (or re-use) one split under folder/split: the labels of the clips judged with one
    view (faults and negatives), and of the PTZ tours judged with ``known_views`` declared."""
    if split not in SEEDS:
        raise ValueError(f"unknown split {split!r} (known: {', '.join(SEEDS)})")
    out = Path(folder) / split
    out.mkdir(parents=True, exist_ok=True)
    specs = plan(split, per_style)
    make_cached(out, [(sp.name, spec_hash(VERSION, sp), partial(_encode, sp)) for sp in specs], progress)

    def labels(name: str, group: list[MovedClipSpec]) -> Path:
        clips = [
            {
                "file": f"{s.name}.mp4",
                "duration": s.duration,
                "faults": s.faults,
                "note": f"{s.style} at {s.at:g} s over {s.footage} ({s.width}x{s.height}, {s.fps} fps)",
            }
            for s in group
        ]
        return write_labels(out / name, f"moved-{split}", clips)

    return (
        labels("labels.json", [s for s in specs if s.style != "ptz_tour"]),
        labels("labels_ptz.json", [s for s in specs if s.style == "ptz_tour"]),
    )
