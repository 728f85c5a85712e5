"""How well a quality score ranks pictures the way people do: the four figures IQA papers report
(VQEG's conventions, as pyiqa's benchmark uses them).

- SRCC: Spearman's rank correlation (ties share their average rank);
- KRCC: Kendall's tau-b;
- PLCC: Pearson's correlation after mapping the score onto the opinion scale with the standard
  4-parameter logistic, fitted by least squares (a score need not be linear in MOS to rank
  well, only monotone);
- RMSE: of that mapped score against MOS, in MOS units.

Scores where lower is better (BRISQUE, NIQE) correlate negatively; callers compare magnitudes
or flip the sign first. PLCC after the mapping is never negative (a falling curve fits a score
that ranks backwards): the direction shows in SRCC and KRCC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Agreement:
    n: int
    srcc: float
    krcc: float
    plcc: float
    rmse: float

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "srcc": self.srcc, "krcc": self.krcc, "plcc": self.plcc, "rmse": self.rmse}


def ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    x = np.asarray(x, np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # Runs of equal values: each gets the mean of the positions it spans.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_x)) + 1]
    ends = np.r_[starts[1:], x.size]
    avg = (starts + ends + 1) / 2.0
    out = np.empty(x.size)
    out[order] = np.repeat(avg, ends - starts)
    return out


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, np.float64).ravel() - np.mean(x)
    y = np.asarray(y, np.float64).ravel() - np.mean(y)
    den = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / den) if den > 0 else 0.0


def srcc(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(ranks(x), ranks(y))


def krcc(x: np.ndarray, y: np.ndarray, chunk: int = 2048) -> float:
    """Kendall's tau-b, over all pairs in row blocks (memory stays at chunk x n)."""
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    n = x.size
    concordant_minus_discordant = 0.0
    tied_x = tied_y = 0
    for i0 in range(0, n, chunk):
        dx = np.sign(x[i0 : i0 + chunk, None] - x[None, :])
        dy = np.sign(y[i0 : i0 + chunk, None] - y[None, :])
        concordant_minus_discordant += float((dx * dy).sum())
        tied_x += int(np.count_nonzero(dx == 0))
        tied_y += int(np.count_nonzero(dy == 0))
    # Every pair was seen twice and every item paired with itself once (a tie in both).
    pairs = n * (n - 1) / 2.0
    n1 = (tied_x - n) / 2.0
    n2 = (tied_y - n) / 2.0
    den = float(np.sqrt((pairs - n1) * (pairs - n2)))
    return concordant_minus_discordant / 2.0 / den if den > 0 else 0.0


def logistic4(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """VQEG's monotone mapping from a score to the opinion scale."""
    z = np.clip(-(x - b[2]) / max(abs(float(b[3])), 1e-9), -500, 500)
    return (b[0] - b[1]) / (1.0 + np.exp(z)) + b[1]


def fit_logistic4(x: np.ndarray, y: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Least-squares fit of logistic4 (Levenberg-Marquardt on a numeric Jacobian)."""
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    spread = float(np.std(x)) or 1.0
    # The curve rises with x when the score and MOS agree in sign, falls otherwise.
    rising = pearson(x, y) >= 0
    b = np.array([y.max() if rising else y.min(), y.min() if rising else y.max(), float(np.mean(x)), spread])
    damping = 1e-3

    def residual(p: np.ndarray) -> np.ndarray:
        return logistic4(x, p) - y

    r = residual(b)
    cost = float(r @ r)
    for _ in range(iterations):
        jac = np.empty((x.size, 4))
        for k in range(4):
            step = 1e-6 * max(abs(float(b[k])), 1.0)
            bk = b.copy()
            bk[k] += step
            jac[:, k] = (residual(bk) - r) / step
        jtj = jac.T @ jac
        grad = jac.T @ r
        try:
            delta = np.linalg.solve(jtj + damping * np.diag(np.diag(jtj) + 1e-12), -grad)
        except np.linalg.LinAlgError:
            break
        trial = b + delta
        r_trial = residual(trial)
        trial_cost = float(r_trial @ r_trial)
        if trial_cost < cost:
            improved = cost - trial_cost
            b, r, cost = trial, r_trial, trial_cost
            damping = max(damping / 3.0, 1e-12)
            if improved <= 1e-12 * max(cost, 1e-12):
                break
        else:
            damping *= 4.0
            if damping > 1e12:
                break
    return b


def agreement(scores: np.ndarray, mos: np.ndarray) -> Agreement:
    """SRCC, KRCC, PLCC (after the logistic mapping) and RMSE of ``scores`` against ``mos``."""
    s = np.asarray(scores, np.float64).ravel()
    m = np.asarray(mos, np.float64).ravel()
    if s.size != m.size:
        raise ValueError(f"{s.size} scores for {m.size} opinion scores")
    if s.size < 4:
        raise ValueError(f"{s.size} pictures: at least 4 are needed to fit the logistic mapping")
    mapped = logistic4(s, fit_logistic4(s, m))
    return Agreement(
        n=int(s.size),
        srcc=srcc(s, m),
        krcc=krcc(s, m),
        plcc=pearson(mapped, m),
        rmse=float(np.sqrt(np.mean((mapped - m) ** 2))),
    )
