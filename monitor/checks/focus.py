"""How fine a picture's detail is: the sharpness blur judges a stream by, and obstruction reads
to tell an in-focus close-up from a cover on the lens."""

from __future__ import annotations

import cv2
import numpy as np


def sharpness(denoised: np.ndarray, block: int = 24, min_std: float = 4.0, min_share: float = 0.25) -> float | None:
    """How fine the detail is, x100: per block with some contrast, the Laplacian's energy over
    the gradient's, and their geometric mean; None when too few blocks have contrast to tell
    (under ``min_share`` of them).

    A block's Laplacian-to-gradient energy goes as 1 / (the width of its edges)^2, whatever the
    edges' contrast and however many of them the block holds: a block crossed by one strong
    edge and a block of fine texture read alike when both are sharp. (Laplacian over the
    picture's own variance, the measure before, read the same sharp notebook 5 on its edges
    and 150 on its grain, so a pan that brought more edges into view halved it.) The geometric
    mean, so a few blocks of sharp graphics (a clock, a caption, a logo) on a soft picture
    neither hide a defocus nor fake one when they come and go, and a shift in the mix of
    blocks moves it only in proportion."""
    h, w = denoised.shape
    hh, ww = h // block * block, w // block * block
    if hh == 0 or ww == 0:
        g = denoised.astype(np.float32)
        lap = cv2.Laplacian(g, cv2.CV_32F)
        grad = float((np.diff(g, axis=1) ** 2).sum() + (np.diff(g, axis=0) ** 2).sum()) / g.size
        return 100.0 * float(np.mean(lap * lap)) / max(4.0 * grad, 1.0)
    size = (ww // block, hh // block)
    # The filters read one pixel past the blocks. One scratch picture takes every filter's result
    # in turn: a fresh full-size array for each made this 2-5x slower.
    g = denoised[: min(h, hh + 1), : min(w, ww + 1)].astype(np.float32)
    scratch = np.empty_like(g)

    def means(a: np.ndarray) -> np.ndarray:  # INTER_AREA on an exact multiple is the block mean
        return cv2.resize(a[:hh, :ww], size, interpolation=cv2.INTER_AREA)

    def energy(a: np.ndarray) -> np.ndarray:
        return means(cv2.multiply(a, a, dst=a))

    mean = means(g)
    var_g = means(cv2.multiply(g, g, dst=scratch)) - mean * mean
    ok = var_g >= min_std * min_std
    if int(ok.sum()) < max(4, min_share * ok.size):
        return None  # hardly any contrast (black, a flat card, deep darkness): nothing to judge
    energy_l = energy(cv2.Laplacian(g, cv2.CV_32F, dst=scratch))
    # Differences between neighbours, not across two pixels: the ratio is then bounded, the
    # detail's mean squared frequency, highest (200) on a pixel-by-pixel checkerboard (noise,
    # codec grain, aliasing). Across two pixels it grew without bound there (a difference across
    # two pixels of a pixel-by-pixel pattern is nought), so a little grain could outweigh every
    # real edge, and a slow pan over fine detail read sharper and softer by turns as its phase moved.
    cv2.subtract(g[:, 1:], g[:, :-1], dst=scratch[:, :-1])
    scratch[:, -1] = 0.0
    energy_g = energy(scratch)
    cv2.subtract(g[1:, :], g[:-1, :], dst=scratch[:-1, :])
    scratch[-1, :] = 0.0
    energy_g += energy(scratch)
    # x4: on coarse detail, a difference across two pixels is twice that between neighbours, and
    # the readings (thresholds in config) stay what they were there.
    ratio = energy_l[ok] / np.maximum(4.0 * energy_g[ok], 1e-3)
    return 100.0 * float(np.exp(np.mean(np.log(np.maximum(ratio, 1e-3)))))
