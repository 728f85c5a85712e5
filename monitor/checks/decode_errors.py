"""decode_errors: corrupt or undecodable packets arrive at a sustained rate (from capture counters)."""

from __future__ import annotations

from collections import deque

from pydantic import Field

from monitor.checks.base import Check, CheckConfig, CheckResult, Severity
from monitor.checks.registry import register
from monitor.checks.view import FrameView


class DecodeErrorsConfig(CheckConfig):
    raise_after_s: float = Field(0.0, ge=0)
    clear_after_s: float = Field(10.0, ge=0)
    window_s: float = Field(10.0, gt=0, description="errors are counted over this much stream time")
    min_errors: int = Field(5, ge=1, description="errors in the window that raise")
    critical_errors: int = Field(50, ge=1)


@register
class DecodeErrorsCheck(Check):
    name = "decode_errors"
    Config = DecodeErrorsConfig
    config: DecodeErrorsConfig

    def __init__(self, config: DecodeErrorsConfig) -> None:
        super().__init__(config)
        self._history: deque[tuple[float, int]] = deque()

    def evaluate(self, view: FrameView) -> CheckResult:
        t, total = view.frame.stream_time, view.frame.decode_errors
        h = self._history
        if h and (t < h[-1][0] or total < h[-1][1]):
            h.clear()  # a new session of the source
        h.append((t, total))
        while len(h) > 1 and t - h[1][0] >= self.config.window_s:
            h.popleft()
        recent = total - h[0][1]
        severity: Severity = "critical" if recent >= self.config.critical_errors else "warning"
        return CheckResult(recent >= self.config.min_errors, severity, {"errors_in_window": recent})
