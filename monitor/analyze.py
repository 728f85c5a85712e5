"""`vqmon analyze`: the live pipeline over recorded files, as fast as decoding allows."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from monitor.alerts import AlertEvent
from monitor.capture import open_decoder
from monitor.capture.urls import classify
from monitor.config import Config, StreamSettings
from monitor.errors import SourceError
from monitor.runtime import Pipeline, StreamSpec
from monitor.sinks import Fanout, JsonlSink, Sink


class CollectSink(Sink):
    name = "collect"

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []

    def emit(self, event: AlertEvent) -> None:
        self.events.append(event)


@dataclass
class AnalyzeResult:
    events: list[AlertEvent]
    errors: list[str] = field(default_factory=list)  # one line per file that could not be analysed
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)


def offline_settings(cfg: Config, profile: str | None = None) -> StreamSettings:
    """Stream settings for recorded files: each read once, as fast as it decodes."""
    settings = cfg.stream_settings(profile)
    settings.capture.loop = False
    settings.capture.realtime = False
    return settings


def stream_name_for(path: str, taken: set[str]) -> str:
    stem = os.path.splitext(os.path.basename(path))[0] or "clip"
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip("._-")[:60] or "clip"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def preflight(path: str, settings: StreamSettings) -> str | None:
    """Open the file once so a bad one fails with one clear line before any decoding starts."""
    try:
        kind = classify(path)
        if kind != "file":
            return f"{path}: analyze reads recorded files; use `vqmon run` with a config for live sources"
        open_decoder(path, kind, settings.capture, False).close()
    except SourceError as exc:
        return str(exc)
    return None


def analyze_files(
    paths: list[str],
    cfg: Config,
    *,
    profile: str | None = None,
    jsonl_out: TextIO | None = None,
    progress: bool = False,
) -> AnalyzeResult:
    settings = offline_settings(cfg, profile)
    errors: list[str] = []
    specs: list[StreamSpec] = []
    taken: set[str] = set()
    for path in paths:
        problem = preflight(path, settings)
        if problem:
            errors.append(problem)
            continue
        specs.append(StreamSpec(stream_name_for(path, taken), path, settings))
    collector = CollectSink()
    sinks: list[Sink] = [collector]
    if jsonl_out is not None:
        sinks.append(JsonlSink(stream=jsonl_out))
    if not specs:
        return AnalyzeResult([], errors)
    pipeline = Pipeline(specs, Fanout(sinks), offline=True, stats_interval_s=1e9, iqa=cfg.iqa, scoring=cfg.scoring)
    bar = ProgressBar(pipeline) if progress else None
    pipeline.start()
    try:
        pipeline.run(on_tick=bar.update if bar else None)
    finally:
        pipeline.shutdown()
        if bar:
            bar.close()
    result = AnalyzeResult(collector.events, errors, stats=pipeline.stats_snapshot())
    for w in pipeline.workers.values():
        if w.fatal_error:
            result.errors.append(w.fatal_error)
        if w.stats.decode_errors:
            result.warnings.append(
                f"{os.path.basename(w.url)}: {w.stats.decode_errors} corrupt packet(s) skipped (damaged or truncated?)"
            )
    return result


class ProgressBar:
    def __init__(self, pipeline: Pipeline) -> None:
        from tqdm import tqdm

        self.pipeline = pipeline
        self.bar = tqdm(total=None, unit="frame", file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(self) -> None:
        stats = [w.stats for w in self.pipeline.workers.values()]
        totals = [s.total_frames for s in stats]
        if self.bar.total is None and all(totals):
            self.bar.total = sum(t for t in totals if t)
        self.bar.n = sum(s.frames_decoded for s in stats)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def format_table(events: list[AlertEvent]) -> str:
    """One row per alert episode: when it was raised and cleared, in stream time."""
    rows: list[dict[str, Any]] = []
    open_rows: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.event == "raise":
            row: dict[str, Any] = {
                "stream": e.stream,
                "fault": e.fault,
                "severity": e.severity,
                "raised": e.stream_time,
                "cleared": None,
            }
            open_rows[e.id] = row
            rows.append(row)
        elif e.id in open_rows:
            row = open_rows[e.id]
            if e.event == "update":
                row["severity"] = e.severity
            else:
                row["cleared"] = e.stream_time
    if not rows:
        return "no alerts"
    header = f"{'stream':<28} {'fault':<13} {'severity':<9} {'raised_s':>9} {'cleared_s':>9} {'length_s':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        cleared = f"{r['cleared']:9.2f}" if r["cleared"] is not None else f"{'-':>9}"
        length = f"{r['cleared'] - r['raised']:9.2f}" if r["cleared"] is not None else f"{'open':>9}"
        lines.append(
            f"{r['stream'][:28]:<28} {r['fault']:<13} {r['severity']:<9} {r['raised']:9.2f} {cleared} {length}"
        )
    return "\n".join(lines)


def format_loudness(stats: dict[str, dict[str, Any]]) -> str:
    """Each file's sound, as a broadcast QC report gives it: integrated loudness (BS.1770-4,
    gated) and the highest true peak; empty when no file had sound."""
    lines = []
    for name, s in stats.items():
        audio = s.get("quality", {}).get("audio")
        if audio:

            def show(x: float | None, unit: str) -> str:
                return "-" if x is None else f"{x:.1f} {unit}"

            lines.append(
                f"{name[:28]:<28} integrated {show(audio.get('integrated_lufs'), 'LUFS'):>11}  "
                f"max true peak {show(audio.get('max_true_peak_dbtp'), 'dBTP'):>10}"
            )
    return ("sound:\n" + "\n".join(lines)) if lines else ""
