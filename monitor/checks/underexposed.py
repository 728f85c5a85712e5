"""underexposed: much darker than this stream normally is, but not black.

A night scene is dark all the time, so darkness alone is no fault: the frame must be well below
the stream's own brightness baseline. Black pictures are the black check's job.
"""

from __future__ import annotations

from pydantic import Field

from monitor.checks.base import BaselineCheck, BaselineCheckConfig, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView


class UnderexposedConfig(BaselineCheckConfig):
    # Longer than a fade through black between scenes.
    raise_after_s: float = Field(2.0, ge=0)
    clear_after_s: float = Field(2.0, ge=0)
    max_mean: float = Field(
        80.0,
        ge=0,
        le=255,
        description="only pictures darker than this mean luma (under a third of full scale): a bright room under a "
        "gamma of 3 reads 68 (train footage), and at 60 was never underexposed however far it fell",
    )
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

    def evaluate(self, view: FrameView) -> CheckResult:
        c = self.config
        mean = view.mean_luma
        ratio = self._baseline.ratio(mean, floor=1.0)
        # Only the same scene gone darker is underexposure; a cut or a pan to dark content is not.
        active, corr = self.judge(view, mean, ratio is not None and mean < c.max_mean and ratio < c.max_ratio)
        m = {"mean_luma": round(mean, 1)}
        if ratio is not None:
            m["ratio"] = round(ratio, 3)
        if corr is not None:
            m["layout_correlation"] = round(corr, 2)
        return CheckResult(active, "critical" if ratio is not None and ratio < c.critical_ratio else "warning", m)
