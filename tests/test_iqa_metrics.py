"""The agreement figures against scipy's, on data with ties, negative correlation and a
non-linear (but monotone) relation between score and opinion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from monitor.iqa.metrics import agreement, fit_logistic4, krcc, logistic4, ranks, srcc


def _data(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mos = rng.uniform(1, 5, n)
    # A saturating score with noise and ties (rounded), as a real scorer's output looks.
    score = np.round(np.tanh((mos - 3) * 0.9) * 40 + rng.normal(0, 6, n))
    return score, mos


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_correlations_match_scipy(seed):
    score, mos = _data(seed)
    assert np.allclose(ranks(score), stats.rankdata(score))
    assert srcc(score, mos) == pytest.approx(stats.spearmanr(score, mos).statistic, abs=1e-12)
    assert krcc(score, mos, chunk=64) == pytest.approx(stats.kendalltau(score, mos).statistic, abs=1e-12)
    assert srcc(-score, mos) == pytest.approx(-srcc(score, mos))  # lower-is-better scorers


def test_logistic_fit_matches_scipy_least_squares():
    score, mos = _data(3)
    b = fit_logistic4(score, mos)
    ours = float(np.sum((logistic4(score, b) - mos) ** 2))
    ref, _ = optimize.curve_fit(
        lambda x, b1, b2, b3, b4: logistic4(x, np.array([b1, b2, b3, b4])),
        score,
        mos,
        p0=[mos.max(), mos.min(), score.mean(), score.std()],
        maxfev=20000,
    )
    theirs = float(np.sum((logistic4(score, ref) - mos) ** 2))
    assert ours <= theirs * 1.001
    a = agreement(score, mos)
    mapped = logistic4(score, b)
    assert a.plcc == pytest.approx(stats.pearsonr(mapped, mos).statistic, abs=1e-9)
    assert a.plcc > stats.pearsonr(score, mos).statistic  # the mapping straightens the saturation
    assert a.rmse == pytest.approx(float(np.sqrt(np.mean((mapped - mos) ** 2))))
    flipped = agreement(-score, mos)  # a falling curve fits a lower-is-better score as well
    assert flipped.plcc == pytest.approx(a.plcc, abs=1e-3) and flipped.srcc == pytest.approx(-a.srcc)


def test_agreement_refuses_what_it_cannot_measure():
    with pytest.raises(ValueError, match="4 are needed"):
        agreement(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="3 scores for 4"):
        agreement(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0]))


def _ladder(tmp_path, header: str = "image_name,MOS") -> tuple:
    """A blur ladder of two photographs, rated so that sharper is better (as people rate it)."""
    from pathlib import Path

    import cv2

    assets = Path(__file__).resolve().parents[1] / "monitor" / "demo" / "assets"
    (tmp_path / "pics").mkdir()
    rows = [header]
    for name in ("coffee", "chelsea"):
        photo = cv2.resize(cv2.imread(str(assets / f"{name}.jpg")), (320, 240), interpolation=cv2.INTER_AREA)
        for level, sigma in enumerate((0.0, 1.5, 3.0, 6.0)):
            img = photo if sigma == 0 else cv2.GaussianBlur(photo, (0, 0), sigma)
            cv2.imwrite(str(tmp_path / "pics" / f"{name}_{level}.png"), img)
            rows.append(f"{name}_{level}.png,{5.0 - level}")
    (tmp_path / "mos.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "mos.csv", tmp_path / "pics"


def test_eval_iqa_cli_on_a_rated_ladder(tmp_path):
    import json
    import subprocess
    from pathlib import Path

    import cv2

    from monitor.iqa.scorer import IqaScorer

    vqmon = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "vqmon")
    csv_path, pics = _ladder(tmp_path)  # KonIQ's column names
    r = subprocess.run(
        [vqmon, "eval", "iqa", "--mos", str(csv_path), "--images", str(pics), "--scorers", "niqe", "--json"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    # the same figures as computing the scores and the agreement here (sign flipped: lower is better)
    iqa = IqaScorer(brisque=False)
    files = sorted(pics.iterdir(), key=lambda p: (p.name.split("_")[0] != "coffee", p.name))
    scores = [-iqa.score(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2GRAY))["niqe"] for f in files]
    mos = [5.0 - int(f.stem.split("_")[1]) for f in files]
    want = agreement(np.array(scores), np.array(mos))
    assert got["niqe"]["srcc"] == pytest.approx(want.srcc) and got["niqe"]["plcc"] == pytest.approx(want.plcc)
    assert got["random_init"] is False and got["niqe"]["n"] == 8

    # bad input: one line naming the problem and the fix
    (tmp_path / "bad.csv").write_text("path,score\na.png,3\n")
    r = subprocess.run([vqmon, "eval", "iqa", "--mos", str(tmp_path / "bad.csv")], capture_output=True, text=True)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "image_name" in r.stderr, r.stderr
    r = subprocess.run([vqmon, "eval", "iqa", "--mos", str(csv_path)], capture_output=True, text=True)
    assert r.returncode != 0 and "give --images" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_synthetic_ladders_reward_a_scorer_that_orders_them():
    """A scorer that measures exactly what a distortion takes away orders every ladder of it
    (SRCC 1); one that ignores the picture orders none (0)."""
    import cv2

    from monitor.iqa.ladder import DISTORTIONS, ladder_srcc, photographs

    photos = dict(list(photographs("val").items())[:2])
    blur = tuple(d for d in DISTORTIONS if d.name in ("blur", "underexposed"))

    def sharpness(img: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())

    def brightness(img: np.ndarray) -> float:
        return float(img.mean())

    got = ladder_srcc({"sharp": sharpness, "flat": lambda img: 1.0, "dark": brightness}, photos, frozenset(), blur)
    assert got["sharp"]["blur"] == pytest.approx(1.0) and got["flat"]["blur"] == 0.0
    assert got["dark"]["underexposed"] == pytest.approx(1.0)
    # lower-is-better scorers are flipped before ranking
    flipped = ladder_srcc({"sharp": lambda img: -sharpness(img)}, photos, frozenset({"sharp"}), blur)
    assert flipped["sharp"]["blur"] == pytest.approx(1.0)


def test_eval_iqa_cli_runs_the_synthetic_benchmark_without_a_mos_file():
    import json
    import subprocess
    from pathlib import Path

    vqmon = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "vqmon")
    r = subprocess.run([vqmon, "eval", "iqa", "--scorers", "brisque", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["photographs"] >= 4 and got["random_init"] is False
    assert set(got["brisque"]) == {"blur", "noise", "jpeg", "pixelate", "overexposed", "underexposed"}
    assert got["brisque"]["blur"] > 0.5  # BRISQUE does see blur (0.995 on this box's 12 photographs)


def test_the_fitted_ensemble_combines_what_each_scorer_sees():
    """Sharpness orders blur, brightness orders darkening: fitted on the train photographs'
    ladders, their ensemble orders both on the validation ones, better than either alone."""
    import cv2

    from monitor.iqa.ensemble import fit, out_of_fold
    from monitor.iqa.ladder import DISTORTIONS, ensemble_srcc, ladder_scores, photographs, srcc_per_distortion

    kinds = tuple(d for d in DISTORTIONS if d.name in ("blur", "underexposed"))

    def sharpness(img: np.ndarray) -> float:  # relative to brightness: blind to a gain
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)
        return float(np.log(cv2.Laplacian(gray, cv2.CV_64F).var() / (gray.mean() ** 2 + 1)))

    scorers = {"sharp": sharpness, "bright": lambda img: float(img.mean())}
    train = ladder_scores(scorers, dict(list(photographs("train").items())[:3]), frozenset(), kinds)
    val = ladder_scores(scorers, dict(list(photographs("val").items())[:3]), frozenset(), kinds)
    got, weights = ensemble_srcc(train, val, kinds)
    alone = {n: np.mean(list(srcc_per_distortion(v, kinds).values())) for n, v in val.items()}
    assert np.mean(list(got.values())) > max(alone.values()), (got, alone)
    assert "sharp +" in weights and "bright +" in weights  # both count, both the right way round
    # against opinion scores: out-of-fold predictions of an informative and an useless feature
    rng = np.random.default_rng(0)
    mos = rng.uniform(1, 5, 60)
    x = np.stack([mos + rng.normal(0, 0.3, 60), rng.normal(0, 1, 60)], axis=1)
    model = fit(("good", "noise"), x, mos)
    assert abs(model.weights[0]) > 5 * abs(model.weights[1])
    assert np.corrcoef(out_of_fold(("good", "noise"), x, mos), mos)[0, 1] > 0.9
