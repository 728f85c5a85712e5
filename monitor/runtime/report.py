"""What the daemon reports about itself: the per-stream stats snapshot (log line and sinks) and
each stream's retained status."""

from __future__ import annotations

import logging
import time
from typing import Any

from monitor.capture import CaptureWorker
from monitor.escalation.worker import EscalationWorker
from monitor.frames import AudioChunk, Frame
from monitor.queues import StreamMux
from monitor.runtime.stream import StreamAnalyzer
from monitor.scoring.worker import ScoringWorker

log = logging.getLogger(__name__)


def stats_snapshot(
    workers: dict[str, CaptureWorker],
    mux: StreamMux[Frame | AudioChunk],
    analyzers: dict[str, StreamAnalyzer],
    scorer: ScoringWorker | None,
    escalation: EscalationWorker | None,
) -> dict[str, dict[str, Any]]:
    """Every stream's counters, alerts and quality scores, for the log line and the sinks."""
    out = {}
    for name, w in workers.items():
        d = w.stats.as_dict()
        d["dropped"] = mux.dropped(name)
        d["frames_checked"] = analyzers[name].frames_checked
        alerts = analyzers[name].alerts
        d["active_alerts"] = alerts.active_faults()
        d["suppressed"] = dict(alerts.suppressed)
        d["held_back"] = alerts.held_back()
        d["quality"] = dict(analyzers[name].latest_quality)
        if w.audio is not None:
            d["audio"] = {
                "seconds_judged": round(analyzers[name].audio_seconds, 1),
                "dropped_chunks": mux.dropped((name, "audio")),
                "decode_errors": w.stats.audio_decode_errors,
            }
        if scorer is not None:
            d["scoring_dropped"] = scorer.dropped(name)
        if escalation is not None:
            c = escalation.counters
            d["escalation"] = {
                "sent": c.sent,
                "diagnosed": c.diagnosed,
                "failed": c.failed,
                "unexpected": c.unexpected,
                "restarts": c.restarts,
                "skipped": c.skipped_queue_full + c.skipped_rate_limit + c.skipped_duplicate,
            }
        out[name] = d
    return out


def stream_status(worker: CaptureWorker, analyzer: StreamAnalyzer) -> dict[str, Any]:
    """A stream's retained status (MQTT <prefix>/<stream>/status)."""
    st = worker.stats
    return {
        "state": st.state,
        "fps": round(st.fps, 2),
        "last_frame_time": st.last_frame_wall,
        "last_error": st.last_error,
        "active_alerts": analyzer.alerts.active_alerts(),
        **({"muted_until": analyzer.alerts.muted_until} if analyzer.alerts.muted_until > time.time() else {}),
        **({"period": analyzer.period} if analyzer.daynight is not None else {}),
    }


def log_stats(snapshot: dict[str, dict[str, Any]], scorer: ScoringWorker | None) -> None:
    for name, s in snapshot.items():
        log.info(
            "stats %s: %s fps=%.1f decoded=%d sampled=%d checked=%d dropped=%d decode_errors=%d "
            "reconnects=%d alerts=%s quality=%s",
            name,
            s["state"],
            s["fps"],
            s["frames_decoded"],
            s["frames_sampled"],
            s["frames_checked"],
            s["dropped"],
            s["decode_errors"],
            s["reconnects"],
            ",".join(s["active_alerts"]) or "-",
            s["quality"] or "-",
        )
    if scorer is not None:
        dropped = sum(s["scoring_dropped"] for s in snapshot.values())
        log.info(
            "stats CLIP scorer: %s scored=%d batches=%d (%.1f frames per call, largest %d) dropped=%d errors=%d",
            scorer.model.provider,
            scorer.scored,
            scorer.batches,
            scorer.scored / scorer.batches if scorer.batches else 0.0,
            scorer.largest_batch,
            dropped,
            scorer.errors,
        )
