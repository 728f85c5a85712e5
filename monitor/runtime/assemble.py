"""Stages built from their config sections: the sinks, the streams, the snapshot store (for the
daemon), the CLIP scoring worker and the VLM escalation worker (for the pipeline). A stage whose
model or prompt cannot be loaded is left out with a one-line error; the picture checks run on
without it, and a stream with a bad URL is kept, so its capture thread reports it as down."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from monitor.alerts.snapshots import SnapshotStore
from monitor.capture.urls import classify
from monitor.config import Config, EscalationConfig, ScoringConfig
from monitor.errors import SourceError
from monitor.escalation.worker import EscalationResult, EscalationWorker
from monitor.runtime.stream import StreamSpec
from monitor.scoring.worker import ScoreResult, ScoringWorker
from monitor.sinks import Fanout

log = logging.getLogger(__name__)


def load_scorer(cfg: ScoringConfig, deliver: Callable[[ScoreResult], None]) -> ScoringWorker | None:
    from monitor.errors import VqmonError
    from monitor.scoring.clip_iqa import ClipIqa, SessionOptions, views_per_frame

    try:
        model = ClipIqa(
            cfg.model_dir,  # type: ignore[arg-type]
            SessionOptions(
                cfg.device,
                cfg.precision,
                cfg.threads,
                cfg.trt_cache_dir,
                prompts=cfg.prompts,
                runtime=cfg.runtime,
                max_views=cfg.max_batch * views_per_frame(cfg.tiles),
            ),
        )
    except VqmonError as exc:
        # The picture checks do not need the model: run on without CLIP scores.
        log.error("CLIP scoring off: %s", exc)
        return None
    if model.random_init:
        log.warning(
            "CLIP model %s has random weights (exported with --random-init): its scores are reported, "
            "but it raises no clip_quality alerts; export real weights for that",
            cfg.model_dir,
        )
    return ScoringWorker(model, deliver, cfg.max_batch, cfg.max_wait_ms, tiles=cfg.tiles)


def load_escalation(
    cfg: EscalationConfig, deliver: Callable[[EscalationResult], None], offline: bool
) -> EscalationWorker | None:
    from monitor.escalation.client import SYSTEM_PROMPT, VlmClient

    if offline:
        log.info("VLM escalation runs in the daemon only, not for recorded files")
        return None
    prompt = SYSTEM_PROMPT
    if cfg.prompt_file:
        try:
            prompt = Path(cfg.prompt_file).read_text()
        except OSError as exc:
            log.error("escalation.prompt_file %s unreadable (%s): using the built-in prompt", cfg.prompt_file, exc)
    client = VlmClient(cfg.base_url, cfg.model, cfg.api_key_env, cfg.timeout_s, cfg.image_size, prompt)
    return EscalationWorker(
        client, deliver, cfg.queue_size, cfg.min_interval_s, cfg.max_calls_per_minute, cfg.max_concurrency
    )


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


def snapshot_store(cfg: Config) -> SnapshotStore | None:
    if not cfg.snapshots.enabled:
        return None
    return SnapshotStore(
        Path(cfg.state_dir) / "snapshots",
        int(cfg.snapshots.max_mb * 1024 * 1024),
        cfg.snapshots.quality,
        cfg.snapshots.max_width,
    )
