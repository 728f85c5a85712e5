"""A sampled frame plus derived images computed once and shared by all checks."""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np

from monitor.frames import Frame


class FrameView:
    def __init__(self, frame: Frame) -> None:
        self.frame = frame

    @property
    def small(self) -> np.ndarray:
        """BGR, at most ANALYSIS_WIDTH wide (made by the decoder's scaler)."""
        return self.frame.small

    @cached_property
    def gray(self) -> np.ndarray:
        """Luma of ``small`` (uint8, full range)."""
        return cv2.cvtColor(self.frame.small, cv2.COLOR_BGR2GRAY)
