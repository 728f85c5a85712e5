"""Picture and audio checks. Each module holds one check class registered under its fault name."""

from monitor.checks.base import Check, CheckConfig, CheckResult
from monitor.checks.registry import all_checks, register
from monitor.checks.view import FrameView

__all__ = ["Check", "CheckConfig", "CheckResult", "FrameView", "all_checks", "register"]
