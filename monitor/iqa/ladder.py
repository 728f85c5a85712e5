"""The built-in synthetic IQA benchmark: real photographs, each degraded at five graded strengths
per distortion type, whose quality order is known without asking anyone. A scorer is good at a
distortion when it orders each photograph's ladder (the pristine picture and its five levels)
the same way: SRCC per ladder, averaged over the photographs.

The photographs are the corpus's validation stills (`monitor/demo/footage.py`), never used to
tune anything; which are installed depends on the box (vqmon's own four are always there)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from monitor.demo import jpeg_roundtrip
from monitor.demo.footage import CATALOGUE, Split, load_photo
from monitor.iqa.metrics import srcc

# Photographs larger than this are shrunk to fit (keeping their shape), so every ladder costs
# about the same; smaller ones are used as they are: an enlarged photograph is already soft,
# and its "pristine" rung would not be.
LADDER_SIZE = (512, 384)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma)


def _noise(img: np.ndarray, sigma: float) -> np.ndarray:
    rng = np.random.default_rng(0)  # the same noise every run: the benchmark is repeatable
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, quality: float) -> np.ndarray:
    return jpeg_roundtrip(img, int(quality))


def _pixelate(img: np.ndarray, block: float) -> np.ndarray:
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, int(w / block)), max(1, int(h / block))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def _gain(img: np.ndarray, gain: float) -> np.ndarray:
    return cv2.convertScaleAbs(img, alpha=gain)


@dataclass(frozen=True, slots=True)
class Distortion:
    name: str
    apply: Callable[[np.ndarray, float], np.ndarray]
    levels: tuple[float, ...]  # mild to severe


DISTORTIONS: tuple[Distortion, ...] = (
    Distortion("blur", _blur, (0.7, 1.4, 2.5, 4.0, 7.0)),
    Distortion("noise", _noise, (4.0, 8.0, 14.0, 22.0, 35.0)),
    Distortion("jpeg", _jpeg, (50, 30, 18, 10, 4)),
    Distortion("pixelate", _pixelate, (2, 3, 5, 8, 14)),
    Distortion("overexposed", _gain, (1.25, 1.6, 2.0, 2.6, 3.4)),
    Distortion("underexposed", _gain, (0.8, 0.6, 0.42, 0.28, 0.15)),
)


def fit(img: np.ndarray) -> np.ndarray:
    """Shrunk to fit LADDER_SIZE, keeping its shape; never enlarged."""
    h, w = img.shape[:2]
    scale = min(1.0, LADDER_SIZE[0] / w, LADDER_SIZE[1] / h)
    return img if scale >= 1.0 else cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def rungs(img: np.ndarray, d: Distortion) -> list[np.ndarray]:
    """One ladder: the pristine picture, then the distortion's levels from mild to severe."""
    return [img] + [d.apply(img, level) for level in d.levels]


def photographs(split: Split = "val") -> dict[str, np.ndarray]:
    out = {}
    for item in CATALOGUE:
        path = item.path()
        if item.kind == "photo" and item.split == split and path is not None:
            out[item.name] = fit(load_photo(path))
    return out


def ladder_scores(
    scorers: dict[str, Callable[[np.ndarray], float]],
    photos: dict[str, np.ndarray],
    lower_is_better: frozenset[str] = frozenset(),
    distortions: tuple[Distortion, ...] = DISTORTIONS,
) -> dict[str, np.ndarray]:
    """Per scorer, its scores (photographs, distortions, rungs: pristine first), oriented so that
    higher is better."""
    if not photos:
        raise ValueError("no photographs to build ladders from")
    steps = 1 + len(distortions[0].levels)
    out = {name: np.zeros((len(photos), len(distortions), steps)) for name in scorers}
    for p, img in enumerate(photos.values()):
        for k, d in enumerate(distortions):
            ladder = rungs(img, d)
            for name, f in scorers.items():
                sign = -1.0 if name in lower_is_better else 1.0
                out[name][p, k] = [sign * f(r) for r in ladder]
    return out


def srcc_per_distortion(scores: np.ndarray, distortions: tuple[Distortion, ...] = DISTORTIONS) -> dict[str, float]:
    """The mean over photographs of each ladder's SRCC with its known order."""
    order = -np.arange(scores.shape[2], dtype=np.float64)  # the pristine picture is best
    return {d.name: float(np.mean([srcc(row, order) for row in scores[:, k]])) for k, d in enumerate(distortions)}


def ladder_srcc(
    scorers: dict[str, Callable[[np.ndarray], float]],
    photos: dict[str, np.ndarray],
    lower_is_better: frozenset[str] = frozenset(),
    distortions: tuple[Distortion, ...] = DISTORTIONS,
) -> dict[str, dict[str, float]]:
    """Per scorer and distortion, the mean over photographs of the SRCC between the scorer's
    (oriented) scores and the ladder's quality order."""
    scores = ladder_scores(scorers, photos, lower_is_better, distortions)
    return {name: srcc_per_distortion(v, distortions) for name, v in scores.items()}


def ensemble_srcc(
    train: dict[str, np.ndarray], val: dict[str, np.ndarray], distortions: tuple[Distortion, ...] = DISTORTIONS
) -> tuple[dict[str, float], str]:
    """The scorers' ensemble fitted on the train photographs' ladders (within each ladder: the
    order of its rungs) and its SRCC per distortion on the validation ones; and its weights."""
    from monitor.iqa.ensemble import fit

    names = tuple(train)
    x = np.stack([train[n] for n in names], axis=-1)  # (photos, distortions, rungs, scorers)
    groups = np.arange(x.shape[0] * x.shape[1]).repeat(x.shape[2])
    target = np.tile(-np.arange(x.shape[2], dtype=np.float64), x.shape[0] * x.shape[1])
    model = fit(names, x.reshape(-1, len(names)), target, groups)
    v = np.stack([val[n] for n in names], axis=-1)
    return srcc_per_distortion(model.predict(v), distortions), model.describe()


def table(results: dict[str, dict[str, float]], n_photos: int, random_init: bool) -> str:
    names = [d.name for d in DISTORTIONS]
    lines = [f"{'scorer':<12} " + " ".join(f"{n:>12}" for n in names) + f" {'mean':>8}"]
    for scorer, per in results.items():
        vals = [per[n] for n in names]
        lines.append(f"{scorer:<12} " + " ".join(f"{v:>12.3f}" for v in vals) + f" {np.mean(vals):>8.3f}")
    lines.append(
        f"(SRCC within each photograph's ladder of 6 - pristine and 5 levels - averaged over {n_photos} "
        "validation photographs, none enlarged; BRISQUE and NIQE sign-flipped: 1 = every ladder in order)"
    )
    if random_init:
        lines.append("note: the CLIP model has random weights (random_init: true); its figures mean nothing")
    return "\n".join(lines)
