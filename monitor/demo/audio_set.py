"""Labelled clips with real sound for the audio checks (`vqmon eval audio`): programme made of
tones, speech-like and music-like signals (generated here, each kind with randomised voices,
tempi and levels), mixed the way a channel's output is, normalised to broadcast loudness, with
one fault injected - dead air, a level jump up or down, clipping, a track that drops - or, in as
many clips, a hard negative: a quiet passage, long pauses in speech, a fade through silence, a
hot but legal mix, one channel far quieter than the other.

Train and val come from disjoint seeds and draw their programme from disjoint voice sets, so
what the defaults were checked on in train says nothing about a val clip's sound. The picture
is a slow pan over the demo photographs (no picture fault anywhere).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyloudnorm
from scipy.signal import butter, sosfilt

from monitor.demo import SceneRenderer, Sound, encode_frames
from monitor.demo.cache import make_cached, spec_hash, write_labels

log = logging.getLogger(__name__)

RATE = 48000
TARGET_LUFS = -23.0
VERSION = 3
SPLITS = {"train": 1100, "val": 2200}  # base seeds
FAULTS = ("silence", "loudness_up", "loudness_down", "clipping", "audio_missing")
NEGATIVES = ("quiet_passage", "speech_pauses", "fade_through_silence", "hot_legal", "one_channel_quiet")
KINDS = ("tones", "speech", "music")
# Disjoint per split: the fundamental frequencies and tempi a clip's programme may use.
VOICES = {
    "train": {"tones": (220.0, 330.0, 440.0, 660.0, 880.0), "pitch": (0.9, 1.1), "tempo": (84.0, 120.0)},
    "val": {"tones": (262.0, 392.0, 523.0, 784.0, 1047.0), "pitch": (0.75, 0.9), "tempo": (120.0, 150.0)},
}


@dataclass
class AudioClipSpec:
    name: str
    split: str
    seed: int
    duration: float
    style: str  # a fault of FAULTS or a negative of NEGATIVES
    kinds: list[str]
    start: float = 0.0  # of the fault or negative
    end: float = 0.0
    amount_db: float = 0.0
    faults: list[dict[str, Any]] = field(default_factory=list)  # labels


def plan(split: str, per_style: int) -> list[AudioClipSpec]:
    base = SPLITS[split]
    specs = []
    for k, style in enumerate(FAULTS + NEGATIVES):
        for i in range(per_style):
            seed = base + 100 * k + i
            rng = np.random.default_rng(seed)
            kinds = list(rng.choice(KINDS, size=int(rng.integers(1, 4)), replace=False))
            duration = float(rng.choice([45.0, 50.0, 55.0]))
            spec = AudioClipSpec(f"{split}_{style}_{i:02d}", split, seed, duration, style, kinds)
            _place(spec, rng)
            specs.append(spec)
    return specs


def _place(spec: AudioClipSpec, rng: np.random.Generator) -> None:
    """Where the fault (or the hard negative) lies, how strong it is, and its label."""
    s = spec.style
    length = {
        "silence": (5.0, 12.0),
        "loudness_up": (18.0, 26.0),
        "loudness_down": (18.0, 26.0),
        "clipping": (4.0, 10.0),
        "audio_missing": (5.0, 12.0),
        "quiet_passage": (4.0, 8.0),
        "speech_pauses": (10.0, 20.0),
        "fade_through_silence": (3.0, 4.5),
        "hot_legal": (15.0, 25.0),
        "one_channel_quiet": (10.0, 20.0),
    }[s]
    span = float(rng.uniform(*length))
    spec.start = round(float(rng.uniform(8.0, spec.duration - span - 4.0)), 2)
    spec.end = round(spec.start + span, 2)
    if s == "audio_missing" and rng.random() < 0.3:
        spec.end = spec.duration  # the track ends and never comes back
    spec.amount_db = round(
        float(
            {
                "loudness_up": rng.uniform(10.0, 15.0),
                "loudness_down": rng.uniform(-24.0, -14.0),
                "clipping": rng.uniform(4.0, 12.0),  # driven this far past full scale
                "quiet_passage": rng.uniform(-10.0, -7.0),
                "hot_legal": rng.uniform(2.0, 4.0),
                "one_channel_quiet": rng.uniform(-25.0, -15.0),
            }.get(s, 0.0)
        ),
        1,
    )
    fault = {"loudness_up": "loudness", "loudness_down": "loudness"}.get(s, s)
    if s in FAULTS:
        spec.faults = [{"fault": fault, "start": spec.start, "end": spec.end}]


# --- programme ------------------------------------------------------------------------------


def _tones(n: int, rng: np.random.Generator, voices: dict[str, Any]) -> np.ndarray:
    t = np.arange(n) / RATE
    freqs = rng.choice(voices["tones"], size=int(rng.integers(1, 4)), replace=False)
    out = np.zeros((2, n))
    for f in freqs:
        lfo = 0.75 + 0.25 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 6.3))
        pan = rng.uniform(0.3, 0.7)
        wave = np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) * lfo
        out += np.stack([wave * (1 - pan), wave * pan]) * 2
    return out


def _speech(n: int, rng: np.random.Generator, voices: dict[str, Any]) -> np.ndarray:
    """Band-limited noise shaped into syllables (3-6 a second) and phrases, with pauses."""
    lo, hi = voices["pitch"]
    scale = rng.uniform(lo, hi)
    sos = butter(4, [150 * scale, 3500 * scale], btype="band", fs=RATE, output="sos")
    voice = sosfilt(sos, rng.standard_normal(n))
    env = np.zeros(n)
    pos = 0
    while pos < n:
        phrase = int(rng.uniform(1.5, 4.0) * RATE)
        rate = rng.uniform(3.0, 6.0)
        tt = np.arange(min(phrase, n - pos)) / RATE
        syll = np.clip(np.sin(2 * np.pi * rate * tt + rng.uniform(0, 6.3)), 0, None) ** 1.5
        env[pos : pos + len(tt)] = syll * rng.uniform(0.6, 1.0)
        pos += len(tt) + int(rng.uniform(0.15, 0.8) * RATE)
    mono = voice * env
    return np.stack([mono, mono]) + 0.01 * rng.standard_normal((2, n)) * env


def _music(n: int, rng: np.random.Generator, voices: dict[str, Any]) -> np.ndarray:
    """Chords of harmonic notes, a bass line, a kick on the beat and noise hats off it."""
    t = np.arange(n) / RATE
    beat = 60.0 / rng.uniform(*voices["tempo"])
    root = rng.choice(voices["tones"]) / 2
    out = np.zeros((2, n))
    scale_steps = np.array([0, 2, 4, 5, 7, 9, 11])
    bar = 4 * beat
    for b0 in np.arange(0, n / RATE, bar):
        a, z = int(b0 * RATE), min(n, int((b0 + bar) * RATE))
        tt = t[a:z] - b0
        degree = rng.integers(0, 7)
        for k in (0, 2, 4):
            step = scale_steps[(degree + k) % 7] + 12 * ((degree + k) // 7)
            f = root * 2 ** (step / 12) * 2
            note = sum(np.sin(2 * np.pi * f * h * tt) / h**1.3 for h in range(1, 5))
            pan = rng.uniform(0.2, 0.8)
            out[0, a:z] += note * (1 - pan) * np.exp(-tt / (bar * 0.8))
            out[1, a:z] += note * pan * np.exp(-tt / (bar * 0.8))
        bass = np.sin(2 * np.pi * root * 2 ** (scale_steps[degree] / 12) * tt) * 1.5
        out[:, a:z] += bass
    for b0 in np.arange(0, n / RATE, beat):
        a = int(b0 * RATE)
        k = min(n - a, int(0.25 * RATE))
        tt = np.arange(k) / RATE
        kick = np.sin(2 * np.pi * (50 + 60 * np.exp(-tt * 30)) * tt) * np.exp(-tt * 14) * 3
        out[:, a : a + k] += kick
        h = int((b0 + beat / 2) * RATE)
        m = min(n - h, int(0.05 * RATE))
        if m > 0:
            out[:, h : h + m] += rng.standard_normal((2, m)) * np.exp(-np.arange(m) / RATE * 80) * 0.6
    return out


def _normalise(x: np.ndarray, lufs: float, peak: float = 0.7) -> np.ndarray:
    meter = pyloudnorm.Meter(RATE)
    now = meter.integrated_loudness(x.T)
    y = x * 10 ** ((lufs - now) / 20)
    top = np.abs(y).max()
    return y * (peak / top) if top > peak else y  # legal peaks before all else, as a broadcast limiter would


def programme(spec: AudioClipSpec, rng: np.random.Generator) -> np.ndarray:
    """The clean programme: its kinds in turns of 8-20 s, crossfaded, each at target ± 1.5 LU."""
    n = int(spec.duration * RATE)
    voices = VOICES[spec.split]
    makers: dict[str, Callable[[int, np.random.Generator, dict[str, Any]], np.ndarray]] = {
        "tones": _tones,
        "speech": _speech,
        "music": _music,
    }
    out = np.zeros((2, n))
    pos, turn = 0, 0
    fade = int(0.3 * RATE)
    while pos < n:
        length = min(n - pos, int(rng.uniform(8.0, 20.0) * RATE))
        if n - pos - length < 4 * RATE:
            length = n - pos  # no scrap of a turn at the end
        kind = spec.kinds[turn % len(spec.kinds)]
        part = _normalise(makers[kind](length + fade, rng, voices), TARGET_LUFS + rng.uniform(-1.5, 1.5))
        ramp = np.minimum(1.0, np.minimum(np.arange(len(part[0])), np.arange(len(part[0]))[::-1]) / fade)
        end = min(n, pos + part.shape[1])
        out[:, pos:end] += (part * ramp)[:, : end - pos]
        pos += length
        turn += 1
    return out


def _ramp(n: int, edge: int) -> np.ndarray:
    """1 inside, 0 at both ends, over ``edge`` samples (no click where a level changes)."""
    i = np.arange(n)
    return np.clip(np.minimum(i, n - 1 - i) / max(1, edge), 0, 1)


def render(spec: AudioClipSpec) -> Sound:
    rng = np.random.default_rng(spec.seed)
    x = programme(spec, rng)
    a, b = int(spec.start * RATE), int(spec.end * RATE)
    seg = x[:, a:b]
    w = _ramp(b - a, int(0.05 * RATE))
    gain = 10 ** (spec.amount_db / 20)
    s = spec.style
    gaps: tuple[tuple[float, float], ...] = ()
    if s == "silence":
        # Dead air with a noise floor whose peaks stay under -60 dBFS (silencedetect's level):
        # Gaussian hiss peaks about 12 dB over its RMS.
        floor = 10 ** (rng.uniform(-95.0, -74.0) / 20)
        x[:, a:b] = seg * (1 - w) + w * floor * rng.standard_normal(seg.shape)
    elif s in ("loudness_up", "hot_legal"):
        up = seg * (1 + (gain - 1) * w)
        x[:, a:b] = 0.85 * np.tanh(up / 0.85)  # a limiter: louder, never at full scale
    elif s in ("loudness_down", "quiet_passage"):
        x[:, a:b] = seg * (1 + (gain - 1) * w)
    elif s == "clipping":
        # Driven past full scale by amount_db at its peak, whatever the programme's own peaks.
        x[:, a:b] = np.clip(seg * gain / max(1e-6, float(np.abs(seg).max())), -1.0, 1.0)
    elif s == "audio_missing":
        gaps = ((spec.start, spec.end),)
    elif s == "speech_pauses":
        # Pauses of 1-2.2 s of digital silence: a speaker thinking, not dead air.
        t = a
        while t < b:
            t += int(rng.uniform(1.5, 3.5) * RATE)
            p = int(rng.uniform(1.0, 2.2) * RATE)
            x[:, t : min(b, t + p)] = 0.0
            t += p
    elif s == "fade_through_silence":
        n = b - a
        third = n // 3
        env = np.concatenate([np.linspace(1, 0, third), np.zeros(n - 2 * third), np.linspace(0, 1, third)])
        x[:, a:b] = seg * env
    elif s == "one_channel_quiet":
        x[int(rng.integers(0, 2)), a:b] *= 1 + (gain - 1) * w
    return Sound(x.astype(np.float32), RATE, gaps)


def write_audio_set(
    folder: str | os.PathLike[str],
    split: str,
    *,
    per_style: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Generate (or re-use) one split under folder/split; returns its labels.json (vqmon.labels/1)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    out = Path(folder) / split
    out.mkdir(parents=True, exist_ok=True)
    specs = plan(split, per_style)
    make_cached(out, [(sp.name, spec_hash(VERSION, sp), partial(_encode, sp)) for sp in specs], progress)
    clips = [
        {
            "file": f"{s.name}.mp4",
            "duration": s.duration,
            "faults": s.faults,
            "note": f"{s.style} {s.start:g}-{s.end:g} s ({s.amount_db:+g} dB) over {'+'.join(s.kinds)}",
        }
        for s in specs
    ]
    return write_labels(out / "labels.json", f"audio-{split}", clips)


def _encode(spec: AudioClipSpec, path: Path) -> None:
    w, h, fps = 320, 180, 10
    renderer = SceneRenderer(w, h, fps, seed=spec.seed, scene_s=spec.duration)
    images = (renderer.render(i / fps) for i in range(int(spec.duration * fps)))
    encode_frames(path, images, width=w, height=h, fps=fps, sound=render(spec))
