"""Generate a labelled clip set (vqmon.labels/1) from case descriptions: faults of chosen
strengths and hard negatives (night, static, fades, soft focus, snow, cuts) for tuning and tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from monitor.demo import FaultSpan, SceneStyle, write_clip


@dataclass(frozen=True)
class Case:
    name: str
    faults: tuple[FaultSpan, ...] = ()
    style: SceneStyle = field(default_factory=SceneStyle)
    width: int = 480
    height: int = 270
    fps: int = 15
    duration_s: float = 24.0
    scene_s: float = 10.0
    seed: int = 1


def fault_cases(start: float = 9.0, end: float = 15.0) -> list[Case]:
    """One case per fault style and strength, fault in [start, end)."""
    spec = [
        ("black", None),
        ("freeze", None),
        ("blur", 3.0),
        ("blur", 8.0),
        ("noise", 15.0),
        ("noise", 40.0),
        ("overexposed", 2.2),
        ("overexposed", 4.0),
        ("underexposed", 0.3),
        ("underexposed", 0.1),
        ("blocking", 8),
        ("blocking", 3),
        ("blocking", -8),
        ("no_signal", None),
        ("obstruction", 0.55),
        ("obstruction", 0.9),
    ]
    out = []
    for i, (fault, strength) in enumerate(spec):
        tag = "" if strength is None else f"_{strength:g}".replace("-", "m").replace(".", "p")
        # One scene throughout, as from a fixed camera (cuts are a negative case of their own).
        out.append(Case(f"f{i:02d}_{fault}{tag}", (FaultSpan(fault, start, end, strength),), seed=10 + i, scene_s=600))
    return out


def negative_cases() -> list[Case]:
    return [
        Case("n01_static_flicker", style=SceneStyle(moving=False, flicker=0.03, noise=2.5), duration_s=30),
        Case("n02_night", style=SceneStyle(gain=0.22, noise=3.0), duration_s=30),
        Case("n03_fade_through_black", style=SceneStyle(fade=(12.0, 0.8)), duration_s=30),
        Case("n04_slow_fade", style=SceneStyle(fade=(10.0, 6.0)), duration_s=30),
        Case("n05_soft_focus", style=SceneStyle(soft=4.0), duration_s=30),
        Case("n06_snow", style=SceneStyle(snow=250), duration_s=30),
        Case("n07_cuts", scene_s=3.5, duration_s=30),
        # A static night camera with a ticking clock and its AGC hunting slightly. With nothing at
        # all changing but sensor noise and the clock, it could not be told from a frozen one.
        Case(
            "n08_static_night_cctv",
            style=SceneStyle(moving=False, gain=0.25, noise=3.0, clock=True, flicker=0.03),
            duration_s=30,
        ),
    ]


def write_set(folder: str | Path, cases: list[Case]) -> Path:
    """Write the clips (skipping ones already there) and labels.json; returns the labels path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for c in cases:
        path = folder / f"{c.name}.mp4"
        if not path.exists():
            write_clip(
                path,
                width=c.width,
                height=c.height,
                fps=c.fps,
                duration_s=c.duration_s,
                faults=c.faults,
                seed=c.seed,
                style=c.style,
                write_labels=False,
                scene_s=c.scene_s,
            )
        clips.append(
            {
                "file": path.name,
                "duration": c.duration_s,
                "fps": c.fps,
                "width": c.width,
                "height": c.height,
                "faults": [{"fault": f.fault, "start": f.start, "end": f.end} for f in c.faults],
            }
        )
    labels = folder / "labels.json"
    labels.write_text(json.dumps({"schema": "vqmon.labels/1", "clips": clips}, indent=1))
    return labels
