"""`vqmon run`: the long-running service. Builds the pipeline from the config and runs until signalled."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from monitor.config import Config
from monitor.errors import VqmonError
from monitor.runtime import Pipeline
from monitor.runtime.assemble import build_sinks, snapshot_store, stream_specs

log = logging.getLogger(__name__)


def run_daemon(cfg: Config, stop: threading.Event | None = None) -> int:
    specs = stream_specs(cfg)
    if not specs:
        raise VqmonError("no enabled streams in the config: add one under streams: (name, url)")
    Path(cfg.state_dir).mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline(
        specs,
        build_sinks(cfg),
        stats_interval_s=cfg.stats_interval_s,
        snapshots=snapshot_store(cfg),
        iqa=cfg.iqa,
        scoring=cfg.scoring,
        escalation=cfg.escalation,
    )
    from monitor.launch import EARLY_SIGNAL, EARLY_STOP

    stop = stop or EARLY_STOP  # a signal caught while starting is a stop already asked for
    if stop.is_set() and EARLY_SIGNAL:
        log.info("received %s while starting, stopping", signal.Signals(EARLY_SIGNAL[0]).name)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()
        pipeline.stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

    def stop_when_asked() -> None:
        stop.wait()
        pipeline.stop()

    threading.Thread(target=stop_when_asked, name="stop-watch", daemon=True).start()
    pipeline.start()
    try:
        pipeline.run()
    finally:
        pipeline.shutdown()
        log.info("stopped; %d alert event(s) emitted", pipeline.events_emitted)
    return 0
