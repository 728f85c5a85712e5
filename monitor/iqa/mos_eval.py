"""`vqmon eval iqa --mos FILE.csv`: how well each quality scorer ranks pictures the way people
rated them (SRCC, KRCC, PLCC, RMSE; see metrics.py).

The CSV names a picture and its mean opinion score per row. Column names of the public sets
are understood as they ship:

- KonIQ-10k: ``koniq10k_scores_and_distributions.csv`` (``image_name``, ``MOS`` on 1-5), the
  pictures in ``1024x768/`` (``--images``);
- KADID-10k: ``dmos.csv`` (``dist_img``, ``dmos`` on 1-5), the pictures in ``images/``;
- LIVE In the Wild: the scores ship as MATLAB files (``Data/AllImages_release.mat``,
  ``Data/AllMOS_release.mat``); write them out as ``file,mos`` (e.g. with scipy.io.loadmat)
  and point ``--images`` at ``Images/``;
- anything else: a ``file,mos`` header.

BRISQUE and NIQE fall as quality rises: their sign is flipped so that for every scorer a
positive correlation means agreement."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from monitor.errors import VqmonError
from monitor.iqa.metrics import Agreement, agreement

FILE_COLUMNS = ("file", "image_name", "dist_img", "image")
MOS_COLUMNS = ("mos", "dmos")
# clip: the overall score, the mean over the prompt set's overall pairs with the fixed prompts;
# clip_pair: its first pair alone (CLIP-IQA's single fixed "Good photo." / "Bad photo.");
# clip_learned: the overall score with the learned prompts of a `vqmon prompts learn` model.
SCORERS = ("brisque", "niqe", "clip_pair", "clip", "clip_learned")
LOWER_IS_BETTER = {"brisque", "niqe"}


@dataclass(frozen=True, slots=True)
class Rated:
    path: Path
    mos: float


def load_mos(csv_path: str | Path, images: str | Path | None = None) -> list[Rated]:
    """The rated pictures of a MOS file; ``images``: where its file names are (default: beside it)."""
    path = Path(csv_path)
    root = Path(images) if images is not None else path.parent
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = {name.strip().lower(): name for name in reader.fieldnames or []}
            file_col = next((header[c] for c in FILE_COLUMNS if c in header), None)
            mos_col = next((header[c] for c in MOS_COLUMNS if c in header), None)
            if file_col is None or mos_col is None:
                raise VqmonError(
                    f"{path}: needs a picture column ({', '.join(FILE_COLUMNS)}) and a score column "
                    f"({', '.join(MOS_COLUMNS)}); found {', '.join(reader.fieldnames or []) or 'no header'}"
                )
            rows = []
            for line, row in enumerate(reader, start=2):
                try:
                    rows.append(Rated(root / row[file_col].strip(), float(row[mos_col])))
                except (TypeError, ValueError):
                    raise VqmonError(f"{path}:{line}: {mos_col} {row[mos_col]!r} is not a number") from None
    except OSError as exc:
        raise VqmonError(f"{path}: cannot read ({exc.strerror})") from None
    missing = [r.path for r in rows if not r.path.is_file()]
    if missing:
        raise VqmonError(
            f"{missing[0]}: missing ({len(missing)} of {len(rows)} pictures); give --images, the folder they are in"
        )
    if len(rows) < 4:
        raise VqmonError(f"{path}: {len(rows)} rated pictures; at least 4 are needed")
    return rows


def scorer_functions(names: list[str], model_dir: str | None) -> dict[str, Callable[[np.ndarray], float]]:
    """One function per scorer: a BGR picture in, its score out (higher or lower is better as
    the scorer has it)."""
    unknown = [n for n in names if n not in SCORERS]
    if unknown:
        raise VqmonError(f"unknown scorer(s) {', '.join(unknown)}; choose from {', '.join(SCORERS)}")
    out: dict[str, Callable[[np.ndarray], float]] = {}
    if "brisque" in names or "niqe" in names:
        from monitor.iqa.scorer import IqaScorer

        iqa = IqaScorer(brisque="brisque" in names, niqe_enabled="niqe" in names)

        def classical(name: str) -> Callable[[np.ndarray], float]:
            def f(img: np.ndarray) -> float:
                scores = iqa.score(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
                if name not in scores:
                    raise VqmonError(f"{name} is unavailable on this box (see the log); leave it out of --scorers")
                return float(scores[name])

            return f

        for name in ("brisque", "niqe"):
            if name in names:
                out[name] = classical(name)
    if {"clip", "clip_pair", "clip_learned"} & set(names):
        if model_dir is None:
            raise VqmonError("the clip scorers need --model DIR (an exported CLIP model)")
        from monitor.scoring.clip_iqa import ClipIqa, SessionOptions
        from monitor.scoring.prompts import OVERALL

        model = ClipIqa(model_dir, SessionOptions(device="cpu"))
        first, overall = model.prompts.pair_aspects.index(OVERALL), model.aspects.index(OVERALL)
        learned = model.prompts.learned
        if "clip_learned" in names and not learned:
            raise VqmonError(f"{model_dir} has no learned prompts (vqmon prompts learn); leave out clip_learned")
        fixed = model.text
        if learned and {"clip", "clip_pair"} & set(names):
            from monitor.scoring.text_encoder import TextEncoder

            fixed = TextEncoder(model_dir, model.manifest).embed(model.prompts)  # the words without the context

        def embed(img: np.ndarray) -> np.ndarray:
            return model.embed_pictures([img])

        # Unrounded (the daemon's scores are rounded to 4 places): ties would cost rank agreement.
        if "clip_pair" in names:
            out["clip_pair"] = lambda img: float(model.pair_scores(embed(img), fixed)[0, first])
        if "clip" in names:
            out["clip"] = lambda img: float(model.aspect_scores(embed(img), fixed)[0, overall])
        if "clip_learned" in names:
            out["clip_learned"] = lambda img: float(model.aspect_scores(embed(img))[0, overall])
    return out


def evaluate(
    rated: list[Rated], scorers: dict[str, Callable[[np.ndarray], float]]
) -> tuple[dict[str, Agreement], str | None]:
    """Each scorer's agreement with the opinion scores, and with two or more scorers their
    ensemble's (5-fold out-of-fold) with its weights fitted on all pictures."""
    values: dict[str, list[float]] = {name: [] for name in scorers}
    for r in rated:
        img = cv2.imread(str(r.path), cv2.IMREAD_COLOR)
        if img is None:
            raise VqmonError(f"{r.path}: not a picture OpenCV can read")
        for name, f in scorers.items():
            values[name].append(f(img))
    mos = np.array([r.mos for r in rated])
    out = {}
    oriented = {}
    for name, v in values.items():
        s = np.array(v, np.float64)
        oriented[name] = -s if name in LOWER_IS_BETTER else s
        out[name] = agreement(oriented[name], mos)
    if len(oriented) < 2:
        return out, None
    from monitor.iqa.ensemble import fit, out_of_fold

    names = tuple(oriented)
    x = np.stack([oriented[n] for n in names], axis=1)
    out["ensemble"] = agreement(out_of_fold(names, x, mos), mos)
    return out, fit(names, x, mos).describe()


def table(results: dict[str, Agreement], random_init: bool) -> str:
    lines = [f"{'scorer':<12} {'n':>6} {'SRCC':>7} {'KRCC':>7} {'PLCC':>7} {'RMSE':>7}"]
    for name, a in results.items():
        lines.append(f"{name:<12} {a.n:>6} {a.srcc:>7.3f} {a.krcc:>7.3f} {a.plcc:>7.3f} {a.rmse:>7.3f}")
    lines.append("(BRISQUE and NIQE with their sign flipped: positive = agrees with the opinion scores)")
    if random_init:
        lines.append("note: the CLIP model has random weights (random_init: true); its figures mean nothing")
    return "\n".join(lines)
