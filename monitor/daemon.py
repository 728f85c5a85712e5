"""`vqmon run`: the long-running service. Builds the pipeline from the config, runs it until
signalled, and speaks to systemd (ready, watchdog while every loop turns, status, stopping) and
to local tools over HTTP (/metrics, /healthz, /api/status)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from monitor.config import Config, load_config
from monitor.errors import VqmonError
from monitor.http_api import HttpApi
from monitor.metrics import REGISTRY, PipelineCollector
from monitor.runtime import Pipeline
from monitor.runtime.assemble import build_sinks, snapshot_store, stream_specs
from monitor.runtime.loop import Reconfigure
from monitor.shard import apply_shard
from monitor.systemd import Notifier

log = logging.getLogger(__name__)

SERVICE_TICK_S = 5.0  # status and watchdog pings at most this far apart


def summary(status: dict[str, Any]) -> str:
    """One line for systemd's STATUS (shown by `systemctl status`)."""
    streams = status["streams"]
    up = sum(1 for s in streams.values() if s["state"] == "up")
    alerts = sum(len(s["active_alerts"]) for s in streams.values())
    health = "" if status["ok"] else "; a loop is stuck (see /healthz)"
    return f"{len(streams)} stream(s): {up} up, {len(streams) - up} not; {alerts} active alert(s){health}"


class Service(threading.Thread):
    """Tells systemd how the daemon is: WATCHDOG=1 only while every loop turns (a hung loop
    stops the pings, and systemd restarts the service), and STATUS with streams and alerts."""

    def __init__(self, pipeline: Pipeline, notifier: Notifier, stop: threading.Event) -> None:
        super().__init__(name="systemd-notify", daemon=True)
        self.pipeline, self.notifier, self._stop = pipeline, notifier, stop
        self.interval_s = min(SERVICE_TICK_S, notifier.watchdog_s / 2) if notifier.watchdog_s else SERVICE_TICK_S
        self._stuck: set[str] = set()

    def tick(self) -> None:
        h = self.pipeline.health()
        stuck = {name for name, lp in h["loops"].items() if not lp["ok"]}
        for name in sorted(stuck - self._stuck):
            lp = h["loops"][name]
            log.error(
                "%s has not turned for %.0fs (allowed %.0fs)%s: withholding systemd's watchdog ping",
                name, lp["silent_s"], lp["allowed_s"], "" if lp["alive"] else ", its thread is dead",
            )  # fmt: skip
        for name in sorted(self._stuck - stuck):
            log.info("%s turns again", name)
        self._stuck = stuck
        if h["ok"]:
            self.notifier.watchdog()
        self.notifier.status(summary(self.pipeline.status()))

    def run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # the service thread must outlive any one bad tick
                log.exception("service tick failed")


def start_http(cfg: Config, pipeline: Pipeline) -> HttpApi | None:
    if not cfg.http.enabled:
        return None
    own = CollectorRegistry()
    own.register(PipelineCollector(pipeline.stats_snapshot, pipeline.health, pipeline.sink.backlog))
    api = HttpApi(cfg.http, [REGISTRY, own], pipeline.health, pipeline.status, pipeline.request)
    return api if api.start() else None


def reload(old: Config, path: str, pipeline: Pipeline, notifier: Notifier, shard: tuple[int, int] | None) -> bool:
    """SIGHUP: the config file again. Its streams are handed to the analysis loop to apply; an
    invalid file is one log line and the running config carries on. Sections other than
    streams (sinks, scoring, http...) take a restart, and the log says which changed."""
    notifier.reloading()
    try:
        try:
            new = load_config(path)
            if shard is not None:
                new = apply_shard(new, shard)
        except VqmonError as exc:
            log.error("reload refused, the running config carries on: %s", exc)
            return False
        pipeline.request(Reconfigure(stream_specs(new)))
        if new.defaults != old.defaults:
            log.info("reload: the stream defaults changed; streams whose settings differ are restarted")
        others = [
            k for k in Config.model_fields if k not in ("streams", "defaults") and getattr(new, k) != getattr(old, k)
        ]
        if others:
            log.warning("reload: %s changed; those take effect at the next restart", ", ".join(others))
        return True
    finally:
        notifier.ready(summary(pipeline.status()))


def run_daemon(
    cfg: Config,
    stop: threading.Event | None = None,
    config_path: str | None = None,
    shard: tuple[int, int] | None = None,
) -> int:
    if shard is not None:
        cfg = apply_shard(cfg, shard)
    specs = stream_specs(cfg)
    if not specs and shard is not None:
        raise VqmonError(f"shard {shard[0]}/{shard[1]} has none of the config's streams: fewer shards, or more streams")
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
        evidence=cfg.evidence,
        evidence_dir=Path(cfg.state_dir) / "clips",
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
    notifier = Notifier()

    def on_hup(_signum: int, _frame: object) -> None:
        # Read and check the file off the signal handler; the analysis loop applies the result.
        threading.Thread(target=reload, args=(cfg, config_path, pipeline, notifier, shard), name="reload").start()

    if config_path is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, on_hup)
    http = start_http(cfg, pipeline)
    pipeline.start()
    notifier.ready(summary(pipeline.status()))
    service = Service(pipeline, notifier, stop)
    service.start()
    try:
        pipeline.run()
    finally:
        stop.set()
        notifier.stopping()
        pipeline.shutdown()
        if http is not None:
            http.stop()
        notifier.close()
        log.info("stopped; %d alert event(s) emitted", pipeline.events_emitted)
    return 0
