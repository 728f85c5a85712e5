"""BRISQUE (Mittal, Moorthy, Bovik 2012) through OpenCV contrib's quality module.

Lower is better (about 0-100). OpenCV needs its trained model files; Debian's `opencv-data`
package ships them (Apache-2.0/BSD, like OpenCV) in /usr/share/opencv4/quality/, which is where
they are looked for unless the config names a folder.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np

from monitor.errors import ConfigError

MODEL = "brisque_model_live.yml"
RANGE = "brisque_range_live.yml"
SEARCH = ("/usr/share/opencv4/quality", "/usr/share/opencv/quality", "/usr/local/share/opencv4/quality")


def find_model(folder: str | None = None) -> tuple[str, str]:
    places = [folder] if folder else list(SEARCH)
    for p in places:
        model, rng = Path(p) / MODEL, Path(p) / RANGE
        if model.is_file() and rng.is_file():
            return str(model), str(rng)
    where = folder or ", ".join(SEARCH)
    raise ConfigError(
        f"BRISQUE model files {MODEL}/{RANGE} not found in {where} "
        "(install Debian's opencv-data, or set quality.brisque_model_dir)"
    )


class Brisque:
    def __init__(self, folder: str | None = None) -> None:
        if not hasattr(cv2, "quality"):
            raise ConfigError("this OpenCV has no quality module (install opencv-contrib-python-headless)")
        self.model, self.range = find_model(folder)
        self._local = threading.local()  # an OpenCV algorithm object per thread

    def score(self, image: np.ndarray) -> float:
        alg = getattr(self._local, "alg", None)
        if alg is None:
            # opencv-contrib's stubs leave out the quality module
            alg = self._local.alg = cv2.quality.QualityBRISQUE_create(self.model, self.range)  # type: ignore[attr-defined]
        return float(alg.compute(image)[0])


def available(folder: str | None = None) -> bool:
    try:
        find_model(folder)
    except ConfigError:
        return False
    return hasattr(cv2, "quality") and os.environ.get("VQMON_NO_BRISQUE") is None
