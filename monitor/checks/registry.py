"""Registry of checks: adding a check is adding one module to monitor/checks/ with @register."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from monitor.checks.base import AnyCheck

C = TypeVar("C", bound="type[AnyCheck]")

_CHECKS: dict[str, type[AnyCheck]] = {}
_NOT_CHECKS = {"audio_base", "base", "baseline", "focus", "registry", "view"}
_loaded = False


def register(cls: C) -> C:
    if cls.name in _CHECKS and _CHECKS[cls.name] is not cls:
        raise ValueError(f"two checks claim the fault name {cls.name!r}")
    _CHECKS[cls.name] = cls
    return cls


def all_checks() -> dict[str, type[AnyCheck]]:
    global _loaded
    if not _loaded:
        import monitor.checks as pkg

        for mod in pkgutil.iter_modules(pkg.__path__):
            if mod.name not in _NOT_CHECKS:
                importlib.import_module(f"monitor.checks.{mod.name}")
        _loaded = True
    return dict(sorted(_CHECKS.items()))
