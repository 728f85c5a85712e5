"""Prometheus metrics (`/metrics`): what the daemon does, per stream and per loop.

Two kinds: histograms and counters observed where the work happens (check and scorer latency,
scorer batch sizes, alert events), kept in this module's registry; and per-stream figures
(fps, frames, drops, errors, reconnects, queue depths, VLM calls, loop health) read from the
pipeline's own counters at scrape time, so nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

CHECK_SECONDS = Histogram(
    "vqmon_check_seconds",
    "Time to run every picture check on one sampled frame",
    ["stream"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    registry=REGISTRY,
)
SCORER_SECONDS = Histogram(
    "vqmon_scorer_batch_seconds",
    "Time of one CLIP scorer call (all views of a batch of frames)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
    registry=REGISTRY,
)
SCORER_BATCH = Histogram(
    "vqmon_scorer_batch_frames",
    "Frames per CLIP scorer call",
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)
ALERT_EVENTS = Counter("vqmon_alert_events", "Alert events emitted", ["stream", "fault", "event"], registry=REGISTRY)


class PipelineCollector(Collector):
    """Per-stream and per-loop figures read from the pipeline at scrape time."""

    def __init__(self, snapshot: Callable[[], dict[str, dict[str, Any]]], health: Callable[[], dict[str, Any]],
                 outbox: Callable[[], dict[str, int]]) -> None:  # fmt: skip
        self._snapshot, self._health, self._outbox = snapshot, health, outbox

    def collect(self) -> Iterator[Any]:
        snap = self._snapshot()
        gauges = {
            "fps": GaugeMetricFamily("vqmon_stream_fps", "Decoded frames per second", labels=["stream"]),
            "up": GaugeMetricFamily("vqmon_stream_up", "1 while frames flow", labels=["stream"]),
            "active": GaugeMetricFamily("vqmon_active_alerts", "Alerts raised and not cleared", labels=["stream"]),
        }
        counters = {
            key: CounterMetricFamily(f"vqmon_{name}", text, labels=["stream"])
            for key, name, text in (
                ("frames_decoded", "frames_decoded", "Frames decoded"),
                ("frames_sampled", "frames_sampled", "Frames sent on to the checks"),
                ("dropped", "frames_dropped", "Sampled frames dropped because the checks fell behind"),
                ("decode_errors", "decode_errors", "Corrupt packets and frames"),
                ("reconnects", "reconnects", "Reconnection attempts"),
                ("scoring_dropped", "scorer_dropped", "Frames the CLIP scorer had no time for"),
            )
        }
        vlm = {
            key: CounterMetricFamily(f"vqmon_vlm_{key}", f"VLM escalation: {key}")
            for key in ("sent", "diagnosed", "failed", "skipped")
        }
        for stream, d in snap.items():
            gauges["fps"].add_metric([stream], float(d.get("fps", 0.0)))
            gauges["up"].add_metric([stream], 1.0 if d.get("state") == "up" else 0.0)
            gauges["active"].add_metric([stream], float(len(d.get("active_alerts", []))))
            for key, family in counters.items():
                if key in d:
                    family.add_metric([stream], float(d[key]))
        esc = next((d["escalation"] for d in snap.values() if "escalation" in d), None)
        if esc is not None:  # one worker for all streams: the same figures in every stream's stats
            for key, family in vlm.items():
                family.add_metric([], float(esc.get(key, 0)))
            yield from vlm.values()
        yield from gauges.values()
        yield from counters.values()
        h = self._health()
        ok = GaugeMetricFamily("vqmon_loop_healthy", "1 while the loop turns (see /healthz)", labels=["loop"])
        silent = GaugeMetricFamily("vqmon_loop_silent_seconds", "Since the loop last turned", labels=["loop"])
        for name, lp in h["loops"].items():
            ok.add_metric([name], 1.0 if lp["ok"] else 0.0)
            silent.add_metric([name], float(lp["silent_s"]))
        yield ok
        yield silent
        box = self._outbox()
        if box:
            depth = GaugeMetricFamily("vqmon_outbox_messages", "Messages waiting in an outbox", labels=["sink"])
            for sink, n in box.items():
                depth.add_metric([sink], float(n))
            yield depth
