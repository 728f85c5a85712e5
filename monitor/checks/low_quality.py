"""low_quality (optional): BRISQUE and/or NIQE above a threshold for a sustained time.

Both are general no-reference quality scores (lower is better), slower than the other checks
(tens of milliseconds), so they are computed at most every ``every_s`` seconds of stream time on
the native-resolution luma crop, and the last decision holds in between. Off by default: the
specific checks say *what* is wrong; this one catches what they do not name.
"""

from __future__ import annotations

from typing import cast

from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.registry import register
from monitor.checks.view import FrameView
from monitor.clock import Interval
from monitor.iqa.scorer import IqaScorer


class LowQualityConfig(CheckConfig):
    enabled: bool = False
    raise_after_s: float = Field(10.0, ge=0)
    clear_after_s: float = Field(10.0, ge=0)
    every_s: float = Field(2.0, gt=0, description="compute the scores at most this often (stream time)")
    max_brisque: float | None = Field(60.0, description="low quality above this BRISQUE score (null: not used)")
    max_niqe: float | None = Field(None, description="low quality above this NIQE score (null: not used)")


@register
class LowQualityCheck(Check):
    name = "low_quality"
    Config = LowQualityConfig
    config: LowQualityConfig

    def __init__(self, config: LowQualityConfig, iqa_scorer: IqaScorer | None = None) -> None:
        """``iqa_scorer``: the pipeline's scorer (its BRISQUE model loaded once); a default one otherwise."""
        super().__init__(config)
        self._iqa_scorer = iqa_scorer if iqa_scorer is not None else IqaScorer()
        self._interval = Interval(config.every_s)
        self._last = CheckResult(False)

    @classmethod
    def build(cls, config: CheckConfig, iqa_scorer: IqaScorer) -> Check:
        return cls(cast(LowQualityConfig, config), iqa_scorer)

    def evaluate(self, view: FrameView) -> CheckResult:
        if not self._interval.due(view.frame.stream_time):
            return self._last
        scores = self._iqa_scorer.score(view.native_crop)
        c = self.config
        bad = (c.max_brisque is not None and scores.get("brisque", 0.0) > c.max_brisque) or (
            c.max_niqe is not None and scores.get("niqe", 0.0) > c.max_niqe
        )
        self._last = CheckResult(bad, "warning", scores)
        return self._last
