"""The `vqmon` command's entry point, kept free of heavy imports.

For `vqmon run` it catches SIGTERM and SIGINT before anything else loads: a stop asked while
the daemon is still starting (systemd stopping a service it just started) is remembered and
honoured once the pipeline is up, with a clean exit, instead of killing the process mid-import.
SIGHUP (a reload) is ignored until the daemon's own handler is in place.
"""

from __future__ import annotations

import signal
import sys
import threading

EARLY_STOP = threading.Event()
EARLY_SIGNAL: list[int] = []  # the signal that asked, for the log


def _remember(signum: int, _frame: object) -> None:
    EARLY_SIGNAL.append(signum)
    EARLY_STOP.set()


def main() -> int:
    if "run" in sys.argv[1:]:
        signal.signal(signal.SIGTERM, _remember)
        signal.signal(signal.SIGINT, _remember)
        # A reload asked for while starting would read the config being loaded anyway; its
        # default action would kill the process.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from monitor.cli import main as cli_main

    return cli_main()
