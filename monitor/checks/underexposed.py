"""underexposed: much darker than this stream normally is, but not black.

A night scene is dark all the time, so darkness alone is no fault: the frame must be well below
the stream's own brightness baseline, and darker all over, not only where something covers the
lens (obstruction's). Black pictures are the black check's job.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from monitor.checks.base import BaselineCheck, BaselineCheckConfig, CheckResult
from monitor.checks.baseline import best_shift
from monitor.checks.registry import register
from monitor.checks.view import FrameView

# A cell of the picture at its normal this bright (mean luma) had light to lose; a black border,
# a night sky or a crushed shadow did not, and says nothing about how the picture darkened.
LIT_LEVEL = 16.0
# The picture last seen this close to its baseline brightness (or brighter) is the one a darker
# one is compared with cell by cell.
NORMAL_RATIO = 0.8


class UnderexposedConfig(BaselineCheckConfig):
    # Longer than a fade through black between scenes.
    raise_after_s: float = Field(2.0, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    max_mean: float = Field(60.0, ge=0, le=255, description="only pictures darker than this mean luma")
    dim_max_mean: float = Field(
        80.0,
        ge=0,
        le=255,
        description="...or darker than this (a third of full scale) when the whole picture darkened: at least "
        "min_darkened_share of the cells that were lit (see LIT_LEVEL) below max_cell_ratio x their brightness when "
        "the picture was last at its normal. A bright room under a gamma of 3 read 68 on train footage (97-100 % "
        "of its cells darker); a lens sprayed over three quarters read 62-64 (73-79 %): a cover darkens where it lies",
    )
    min_darkened_share: float = Field(0.9, gt=0, le=1)
    max_cell_ratio: float = Field(0.8, gt=0, lt=1)
    max_ratio: float = Field(0.5, gt=0, lt=1, description="...and below this x the stream's baseline brightness")
    critical_ratio: float = Field(0.2, gt=0, lt=1)
    # Clipping to white / crushing to black ties much of the picture, which shuffles the ranks
    # the layout is compared by: only a bigger jump is a cut.
    min_layout_correlation: float = Field(0.6, ge=-1, le=1)
    # A fade through black (or white) just after a cut must not become the new scene's normal.
    warmup_steady: float | None = Field(0.25, gt=0)


@register
class UnderexposedCheck(BaselineCheck):
    name = "underexposed"
    alters_picture = True
    Config = UnderexposedConfig
    config: UnderexposedConfig
    # A low-contrast scene (a brick wall, fog) darkened several times goes flat: its layout is
    # gone, but the darkness is the fault's own symptom.
    flat_is_symptom = True

    def __init__(self, config: UnderexposedConfig) -> None:
        super().__init__(config)
        self._normal: np.ndarray | None = None  # the thumbnail last seen at about normal brightness

    def new_scene(self) -> None:
        super().new_scene()
        self._normal = None

    def _darkened_share(self, thumb: np.ndarray) -> float | None:
        """The share of the cells lit in the picture at its normal that are now under
        max_cell_ratio x their brightness then, the most over shifts of up to one cell (the camera
        may have moved a little since)."""
        normal = self._normal
        if normal is None:
            return None
        least = self.config.max_cell_ratio

        def share(cur: np.ndarray, ref: np.ndarray) -> float | None:
            lit = ref >= LIT_LEVEL
            n = int(lit.sum())
            return None if n < lit.size // 4 else float(np.count_nonzero(cur[lit] < least * ref[lit])) / n

        return best_shift(thumb, normal, share, good_enough=1.0)

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        mean = view.mean_luma
        ratio = self._baseline.ratio(mean, floor=1.0)
        dark = ratio is not None and ratio < c.max_ratio and mean < c.dim_max_mean
        darkened = None
        if dark and not self._flagging:
            # Only the whole picture gone darker is underexposure: a cover darkens where it lies
            # (spray paint over 60 % of a coffee cup, train study set s8313: mean 105 -> 45, 83 %
            # of the lit cells darker). Dim rather than dark, that is needed to start a flag;
            # darker, it only vetoes one when a picture at its normal is known to compare with
            # (after a cut, the scene may not have been seen at its normal yet).
            darkened = self._darkened_share(view.thumbnail)
            if darkened is not None:
                dark = darkened >= c.min_darkened_share
            elif mean >= c.max_mean:
                dark = False
        # Only the same scene gone darker is underexposure; a cut or a pan to dark content is not.
        active, corr = self.judge(view, mean, dark)
        if not active and ratio is not None and ratio >= NORMAL_RATIO:
            self._normal = view.thumbnail
        m = {"mean_luma": round(mean, 1)}
        if ratio is not None:
            m["ratio"] = round(ratio, 3)
        if darkened is not None:
            m["darkened_share"] = round(darkened, 2)
        if corr is not None:
            m["layout_correlation"] = round(corr, 2)
        return CheckResult(active, "critical" if ratio is not None and ratio < c.critical_ratio else "warning", m)
