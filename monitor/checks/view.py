"""A sampled frame plus derived images computed once and shared by all checks."""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np

from monitor.frames import Frame

# Checks look at a copy about this wide: enough detail for blockiness/blur statistics,
# small enough that the whole set stays cheap at 1080p.
ANALYSIS_WIDTH = 480


class FrameView:
    def __init__(self, frame: Frame, analysis_width: int = ANALYSIS_WIDTH) -> None:
        self.frame = frame
        self._width = analysis_width

    @cached_property
    def small(self) -> np.ndarray:
        """BGR, downscaled (area interpolation) to about ANALYSIS_WIDTH wide."""
        img = self.frame.image
        h, w = img.shape[:2]
        if w <= self._width:
            return img
        nh = max(1, round(h * self._width / w))
        return cv2.resize(img, (self._width, nh), interpolation=cv2.INTER_AREA)

    @cached_property
    def gray(self) -> np.ndarray:
        """Luma of ``small`` (uint8, full range)."""
        return cv2.cvtColor(self.small, cv2.COLOR_BGR2GRAY)
