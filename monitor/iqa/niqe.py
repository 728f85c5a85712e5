"""NIQE (Mittal, Soundararajan, Bovik 2013): distance of a picture's natural-scene statistics
from those of pristine images. Lower is better; ~3-5 for good pictures, larger when blurred,
noisy or compressed.

Follows the authors' reference implementation: MSCN coefficients (7x7 Gaussian, C=1), an
asymmetric generalised Gaussian fitted to them and to their four pairwise products, on 96x96
patches at full and half scale (36 features per patch), then the Mahalanobis-like distance
between the patches' mean/covariance and the pristine model. The pristine model
(niqe_pristine.npz) holds the published parameters (see README.md in this folder).
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources

import cv2
import numpy as np

PATCH = 96
_GAMMAS = np.arange(0.2, 10.0, 0.001)
_R_GAM = np.array([math.gamma(2 / g) ** 2 / (math.gamma(1 / g) * math.gamma(3 / g)) for g in _GAMMAS])


@cache
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    with resources.files("monitor.iqa").joinpath("niqe_pristine.npz").open("rb") as f:
        data = np.load(f)
        return data["mu"], data["cov"]


def _gaussian_window() -> np.ndarray:
    k = cv2.getGaussianKernel(7, 7 / 6)
    w = k @ k.T
    return (w / w.sum()).astype(np.float64)


_WINDOW = _gaussian_window()


def mscn(img: np.ndarray) -> np.ndarray:
    mu = cv2.filter2D(img, -1, _WINDOW, borderType=cv2.BORDER_REPLICATE)
    var = cv2.filter2D(img * img, -1, _WINDOW, borderType=cv2.BORDER_REPLICATE) - mu * mu
    return (img - mu) / (np.sqrt(np.abs(var)) + 1.0)


def aggd(vec: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalised Gaussian fit: (shape alpha, left std beta_l, right std beta_r)."""
    left, right = vec[vec < 0], vec[vec > 0]
    lstd = math.sqrt(float(np.mean(left * left))) if left.size else 0.0
    rstd = math.sqrt(float(np.mean(right * right))) if right.size else 0.0
    sq = float(np.mean(vec * vec))
    if lstd == 0 or rstd == 0 or sq == 0:
        return 10.0, lstd, rstd  # a flat patch: no distribution to fit
    ghat = lstd / rstd
    rhat = float(np.mean(np.abs(vec))) ** 2 / sq
    rnorm = rhat * (ghat**3 + 1) * (ghat + 1) / (ghat**2 + 1) ** 2
    alpha = float(_GAMMAS[np.argmin((_R_GAM - rnorm) ** 2)])
    k = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, lstd * k, rstd * k


def patch_features(m: np.ndarray) -> list[float]:
    alpha, bl, br = aggd(m.ravel())
    feats = [alpha, (bl + br) / 2]
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        shifted = np.roll(m, (dy, dx), axis=(0, 1))
        a, left, right = aggd((m * shifted).ravel())
        mean = (right - left) * math.gamma(2 / a) / math.gamma(1 / a)
        feats += [a, mean, left, right]
    return feats


def _scale_features(img: np.ndarray, size: int) -> np.ndarray:
    m = mscn(img)
    rows, cols = m.shape[0] // size, m.shape[1] // size
    return np.array(
        [
            patch_features(m[r * size : (r + 1) * size, c * size : (c + 1) * size])
            for r in range(rows)
            for c in range(cols)
        ]
    )


def niqe(luma: np.ndarray) -> float:
    """NIQE of a luma image (uint8 or float, 0-255). Needs at least 2x2 patches of 96 px."""
    img = luma.astype(np.float64)
    h, w = img.shape
    rows, cols = h // PATCH, w // PATCH
    if rows * cols < 4 or rows < 1 or cols < 1:
        raise ValueError(f"NIQE needs at least {2 * PATCH}x{2 * PATCH} pixels, got {w}x{h}")
    img = img[: rows * PATCH, : cols * PATCH]
    half = cv2.resize(img, (cols * PATCH // 2, rows * PATCH // 2), interpolation=cv2.INTER_AREA)
    feats = np.hstack([_scale_features(img, PATCH), _scale_features(half, PATCH // 2)])
    mu_p, cov_p = pristine_model()
    mu_d = feats.mean(axis=0)
    cov_d = np.cov(feats, rowvar=False)
    diff = mu_p - mu_d
    return float(np.sqrt(diff @ np.linalg.pinv((cov_p + cov_d) / 2) @ diff))
