"""Stages that the pipeline builds from their config sections: the CLIP scoring worker and the
VLM escalation worker. A stage whose model or prompt cannot be loaded is left out with a
one-line error; the picture checks run on without it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from monitor.config import EscalationConfig, ScoringConfig
from monitor.escalation.worker import EscalationResult, EscalationWorker
from monitor.scoring.worker import ScoreResult, ScoringWorker

log = logging.getLogger(__name__)


def load_scorer(cfg: ScoringConfig, deliver: Callable[[ScoreResult], None]) -> ScoringWorker | None:
    from monitor.errors import VqmonError
    from monitor.scoring.clip_iqa import ClipIqa, SessionOptions

    try:
        model = ClipIqa(
            cfg.model_dir,  # type: ignore[arg-type]
            SessionOptions(cfg.device, cfg.precision, cfg.threads, cfg.trt_cache_dir),
        )
    except VqmonError as exc:
        # The picture checks do not need the model: run on without CLIP scores.
        log.error("CLIP scoring off: %s", exc)
        return None
    if model.random_init:
        log.warning(
            "CLIP model %s has random weights (exported with --random-init): its scores are reported, "
            "but it raises no quality alerts; export real weights for that",
            cfg.model_dir,
        )
    return ScoringWorker(model, deliver, cfg.max_batch, cfg.max_wait_ms)


def load_escalation(
    cfg: EscalationConfig, deliver: Callable[[EscalationResult], None], offline: bool
) -> EscalationWorker | None:
    from pathlib import Path

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
