"""`vqmon run`: the long-running service. Builds the pipeline from the config and runs until signalled."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from monitor.alerts.snapshots import SnapshotStore
from monitor.capture.urls import classify
from monitor.config import Config
from monitor.errors import SourceError, VqmonError
from monitor.runtime import Pipeline, StreamSpec
from monitor.sinks import Fanout

log = logging.getLogger(__name__)


def build_sinks(cfg: Config) -> Fanout:
    sinks = [section.build(cfg.state_dir) for section in cfg.sinks.enabled()]
    if not sinks:
        log.warning("no sinks enabled: alerts will only be logged")
    return Fanout(sinks)


def stream_specs(cfg: Config) -> list[StreamSpec]:
    specs = []
    for i, s in enumerate(cfg.streams):
        if not s.enabled:
            log.info("stream %s is disabled in the config", s.name)
            continue
        try:
            classify(s.url)
        except SourceError as exc:
            # Keep it in the pipeline: its capture thread reports it as down, so the operator sees
            # an alert for the camera nobody is watching, and the other streams run on.
            log.error("streams[%d] %s: %s", i, s.name, exc)
        specs.append(StreamSpec(s.name, s.url, s))
    return specs


def run_daemon(cfg: Config, stop: threading.Event | None = None) -> int:
    specs = stream_specs(cfg)
    if not specs:
        raise VqmonError("no enabled streams in the config: add one under streams: (name, url)")
    Path(cfg.state_dir).mkdir(parents=True, exist_ok=True)
    snapshots = None
    if cfg.snapshots.enabled:
        snapshots = SnapshotStore(
            Path(cfg.state_dir) / "snapshots",
            int(cfg.snapshots.max_mb * 1024 * 1024),
            cfg.snapshots.quality,
            cfg.snapshots.max_width,
        )
    pipeline = Pipeline(
        specs,
        build_sinks(cfg),
        stats_interval_s=cfg.stats_interval_s,
        snapshots=snapshots,
        iqa=cfg.iqa,
        scoring=cfg.scoring,
        escalation=cfg.escalation,
    )
    stop = stop or threading.Event()

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
