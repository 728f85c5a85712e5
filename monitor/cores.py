"""How many CPU cores this process may run on: the one count the stages' defaults scale by."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity: systemd's CPUAffinity=, a container's
    cpuset), which can be fewer than the box has."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
