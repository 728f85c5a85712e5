"""A fitted ensemble of IQA scorers: a ridge-regularised linear combination of their standardised,
sign-oriented scores. Scorers that fail in different places (BRISQUE misses exposure, CLIP
misses fine noise) can cover each other; the weights say how much each one counts.

It is always reported on pictures it was not fitted on: k-fold out-of-fold predictions against
opinion scores, or weights fitted on the train-split photographs' ladders and reported on the
validation split's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIDGE = 1e-2  # relative to the features' (unit) variance: keeps correlated scorers stable


@dataclass(frozen=True, slots=True)
class Ensemble:
    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``features``: (..., scorers), oriented so higher is better, in ``names`` order."""
        return ((features - self.mean) / self.std) @ self.weights

    def describe(self) -> str:
        return ", ".join(f"{n} {w:+.2f}" for n, w in zip(self.names, self.weights, strict=True))


def fit(names: tuple[str, ...], features: np.ndarray, target: np.ndarray, groups: np.ndarray | None = None) -> Ensemble:
    """Least squares with a small ridge on standardised features. With ``groups`` (one id per
    row) each group is centred first, features and target alike: only differences within a
    group (a photograph's ladder) are learned, not the level of each photograph."""
    x = np.asarray(features, np.float64)
    y = np.asarray(target, np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    z = (x - mean) / std
    if groups is not None:
        for g in np.unique(groups):
            rows = groups == g
            z[rows] -= z[rows].mean(axis=0)
            y = y.copy()
            y[rows] -= y[rows].mean()
    else:
        y = y - y.mean()
    k = z.shape[1]
    w = np.linalg.solve(z.T @ z + RIDGE * len(z) * np.eye(k), z.T @ y)
    return Ensemble(names, mean, std, w)


def out_of_fold(names: tuple[str, ...], features: np.ndarray, target: np.ndarray, folds: int = 5) -> np.ndarray:
    """Each picture's ensemble score from weights fitted on the other folds (a fixed shuffle)."""
    n = len(target)
    order = np.random.default_rng(0).permutation(n)
    pred = np.empty(n, np.float64)
    for f in range(min(folds, n)):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        pred[test] = fit(names, features[train], target[train]).predict(features[test])
    return pred
