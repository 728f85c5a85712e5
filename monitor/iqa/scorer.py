"""One place that computes the no-reference scores (BRISQUE, NIQE). The pipeline makes one
IqaScorer from the config's ``iqa`` section and hands it to what needs it: the
low_quality check, the scores attached to raised alerts, the periodic per-stream report."""

from __future__ import annotations

import logging
import math

import numpy as np

from monitor.errors import ConfigError
from monitor.iqa.brisque import Brisque
from monitor.iqa.niqe import PATCH, niqe

log = logging.getLogger(__name__)


class IqaScorer:
    def __init__(self, brisque: bool = True, niqe_enabled: bool = True, brisque_model_dir: str | None = None) -> None:
        self.brisque: Brisque | None = None
        self.niqe_enabled = niqe_enabled
        if brisque:
            try:
                self.brisque = Brisque(brisque_model_dir)
            except ConfigError as exc:
                # Scores are extra information: without the model the daemon runs on without BRISQUE.
                log.warning("BRISQUE scores off: %s", exc)

    def score(self, luma: np.ndarray) -> dict[str, float]:
        """{'brisque': .., 'niqe': ..} for a luma image; a score that cannot be computed is left out."""
        out: dict[str, float] = {}
        if self.brisque is not None:
            value = self.brisque.score(luma)
            if math.isfinite(value):
                out["brisque"] = round(value, 2)
        h, w = luma.shape[:2]
        if self.niqe_enabled and (h // PATCH) * (w // PATCH) >= 4:
            value = niqe(luma)
            if math.isfinite(value):
                out["niqe"] = round(value, 2)
        return out
