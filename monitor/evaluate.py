"""`vqmon eval`: detection quality on labelled clips (vqmon.labels/1).

The definitions are those of the project's grading tool (../shared/tools/score_alerts.py), so
numbers printed here and there agree (a test checks it):

- a labelled segment [start, end] of fault F is detected by the first raise of F on that clip
  with stream_time in [start - 0.5, end + tol]; its latency is max(0, raise - start), its clear
  latency (first clear of F after that raise) - end;
- every raise is one of: TP (detects a fresh segment), duplicate (its segment was already
  detected), confused (no same-fault segment near, but a segment of another fault within
  [start - tol, end + tol]), or false alarm. Raises of names outside the vocabulary are ignored
  inside a labelled segment ± tol;
- precision = TP / raises, recall = detected / segments, F1; micro over all faults; false alarms
  per hour of clean time (clip time outside every segment widened by tol).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.errors import VqmonError

VOCAB = ("black", "freeze", "blur", "noise", "overexposed", "underexposed", "blocking", "obstruction", "no_signal")
ONSET_SLACK_S = 0.5


@dataclass
class Segment:
    fault: str
    start: float
    end: float
    hit: float | None = None


@dataclass
class LabelledClip:
    file: str
    duration: float
    segments: list[Segment]


@dataclass
class FaultScore:
    segments: int = 0
    detected: int = 0
    raises: int = 0
    tp: int = 0
    duplicates: int = 0
    confused: int = 0
    false_alarms: int = 0
    ignored: int = 0
    latencies: list[float] = field(default_factory=list)
    clear_latencies: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.detected / self.segments if self.segments else None

    @property
    def precision(self) -> float | None:
        return self.tp / self.raises if self.raises else None

    @property
    def f1(self) -> float | None:
        return _f1(self.precision, self.recall or 0.0) if self.segments else None


def _f1(p: float | None, r: float) -> float:
    p = p or 0.0
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _names(value: Any) -> set[str]:
    """A clip is matched by its file name, with or without extension, or any path ending in it."""
    if not isinstance(value, str) or not value:
        return set()
    base = value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    out = {value, base}
    for v in (value, base):
        stem, ext = os.path.splitext(v)
        if ext:
            out.add(stem)
    return out


def load_labels(path: str | os.PathLike[str]) -> list[LabelledClip]:
    try:
        data = json.loads(Path(path).read_text())
        return [
            LabelledClip(
                str(c["file"]),
                float(c["duration"]),
                [Segment(str(f["fault"]), float(f["start"]), float(f["end"])) for f in c.get("faults", [])],
            )
            for c in data["clips"]
        ]
    except FileNotFoundError:
        raise VqmonError(f"{path}: labels file not found") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise VqmonError(f"{path}: not a vqmon.labels/1 file ({type(exc).__name__}: {exc})") from None


def _union_length(intervals: list[tuple[float, float]]) -> float:
    total, cur = 0.0, None
    for a, b in sorted(intervals):
        if cur is None or a > cur[1]:
            if cur:
                total += cur[1] - cur[0]
            cur = [a, b]
        else:
            cur[1] = max(cur[1], b)
    if cur:
        total += cur[1] - cur[0]
    return total


@dataclass
class Report:
    per_fault: dict[str, FaultScore]
    clean_hours: float
    unmatched_events: int
    details: list[tuple[str, float, str, str]]
    tol: float

    def overall(self) -> dict[str, Any]:
        v = list(self.per_fault.values())
        seg, det = sum(x.segments for x in v), sum(x.detected for x in v)
        tp, raises, fa = sum(x.tp for x in v), sum(x.raises for x in v), sum(x.false_alarms for x in v)
        p = tp / raises if raises else None
        r = det / seg if seg else 0.0
        f1s = [x.f1 for x in v if x.segments and x.f1 is not None]
        lats = [lat for x in v for lat in x.latencies]
        return {
            "segments": seg,
            "detected": det,
            "raises": raises,
            "tp": tp,
            "false_alarms": fa,
            "precision": p,
            "recall": r,
            "f1": _f1(p, r),
            "macro_f1": sum(f1s) / len(f1s) if f1s else None,
            "clean_hours": self.clean_hours,
            "fa_per_clean_hour": fa / self.clean_hours if self.clean_hours > 0 else None,
            "latency_median": statistics.median(lats) if lats else None,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": "vqmon.score/1",
            "tol": self.tol,
            "per_fault": {
                f: {
                    "segments": s.segments,
                    "detected": s.detected,
                    "recall": s.recall,
                    "raises": s.raises,
                    "tp": s.tp,
                    "duplicates": s.duplicates,
                    "confused": s.confused,
                    "false_alarms": s.false_alarms,
                    "precision": s.precision,
                    "f1": s.f1,
                    "latency_median": statistics.median(s.latencies) if s.latencies else None,
                    "latency_p90": _percentile(s.latencies, 0.9),
                    "clear_latency_median": statistics.median(s.clear_latencies) if s.clear_latencies else None,
                }
                for f, s in self.per_fault.items()
            },
            "overall": self.overall(),
            "details": [{"file": a, "time": b, "fault": c, "what": d} for a, b, c, d in self.details],
        }

    def table(self) -> str:
        def fmt(x: float | None, nd: int = 2) -> str:
            return "-" if x is None else f"{x:.{nd}f}"

        head = f"{'fault':<13} {'segs':>4} {'det':>4} {'recall':>6} {'raises':>6} {'TP':>3} {'dup':>3} "
        head += f"{'conf':>4} {'FA':>3} {'prec':>5} {'F1':>5} {'lat_med':>7} {'lat_p90':>7} {'clr_med':>7}"
        lines = [head]
        for f, s in self.per_fault.items():
            lines.append(
                f"{f:<13} {s.segments:>4} {s.detected:>4} {fmt(s.recall):>6} {s.raises:>6} {s.tp:>3} "
                f"{s.duplicates:>3} {s.confused:>4} {s.false_alarms:>3} {fmt(s.precision):>5} {fmt(s.f1):>5} "
                f"{fmt(statistics.median(s.latencies) if s.latencies else None, 1):>7} "
                f"{fmt(_percentile(s.latencies, 0.9), 1):>7} "
                f"{fmt(statistics.median(s.clear_latencies) if s.clear_latencies else None, 1):>7}"
            )
        o = self.overall()
        lines.append("-" * len(head))
        lines.append(
            f"{'ALL(micro)':<13} {o['segments']:>4} {o['detected']:>4} {fmt(o['recall']):>6} {o['raises']:>6} "
            f"{o['tp']:>3} {'':>3} {'':>4} {o['false_alarms']:>3} {fmt(o['precision']):>5} {fmt(o['f1']):>5} "
            f"{fmt(o['latency_median'], 1):>7}"
        )
        lines.append(
            f"micro-F1 {fmt(o['f1'])} | macro-F1 {fmt(o['macro_f1'])} | false alarms {o['false_alarms']} in "
            f"{o['clean_hours']:.3f} clean h = {fmt(o['fa_per_clean_hour'], 1)} FA/clean-hour | tol {self.tol:.1f} s"
        )
        for file, t, fault, what in self.details:
            lines.append(f"  {file:<34} {t:8.2f}  {fault:<13} {what}")
        return "\n".join(lines)


def score(clips: list[LabelledClip], events: list[dict[str, Any]], tol: float = 2.0) -> Report:
    lookup: dict[str, int] = {}
    for k, c in enumerate(clips):
        for n in _names(c.file):
            lookup.setdefault(n, k)
    vocab = set(VOCAB) | {s.fault for c in clips for s in c.segments}
    per_clip: list[list[dict[str, Any]]] = [[] for _ in clips]
    unmatched = 0
    for ev in events:
        clip = next((lookup[n] for key in ("source", "stream") for n in _names(ev.get(key)) if n in lookup), None)
        if clip is None:
            unmatched += 1
        else:
            per_clip[clip].append(ev)
    faults = sorted(
        {s.fault for c in clips for s in c.segments}
        | {e["fault"] for evs in per_clip for e in evs if e["event"] == "raise"}
    )
    pf = {f: FaultScore() for f in faults}
    details: list[tuple[str, float, str, str]] = []
    clean_s = 0.0
    for c, evs in zip(clips, per_clip, strict=True):
        segs = [Segment(s.fault, s.start, s.end) for s in c.segments]
        widened = [(max(0.0, s.start - tol), min(c.duration, s.end + tol)) for s in segs]
        clean_s += c.duration - _union_length([(a, b) for a, b in widened if b > a])
        for s in segs:
            pf[s.fault].segments += 1
        evs = sorted(evs, key=lambda e: (e["stream_time"], e["event"] != "clear"))
        clears = [e for e in evs if e["event"] == "clear"]
        for e in (e for e in evs if e["event"] == "raise"):
            f, t = e["fault"], float(e["stream_time"])
            st = pf[f]
            own = [s for s in segs if s.fault == f and s.start - ONSET_SLACK_S <= t <= s.end + tol]
            inside = [s for s in segs if s.start - tol <= t <= s.end + tol]
            if f not in vocab and inside:
                st.ignored += 1
                continue
            st.raises += 1
            fresh = [s for s in own if s.hit is None]
            if fresh:
                s = min(fresh, key=lambda s: s.start)
                s.hit = t
                st.tp += 1
                st.detected += 1
                st.latencies.append(max(0.0, t - s.start))
                clr = next((float(x["stream_time"]) for x in clears if x["fault"] == f and x["stream_time"] > t), None)
                if clr is not None:
                    st.clear_latencies.append(clr - s.end)
            elif own:
                st.duplicates += 1
                details.append((c.file, t, f, "duplicate"))
            elif inside:
                st.confused += 1
                details.append((c.file, t, f, "confused with " + "/".join(sorted({s.fault for s in inside}))))
            else:
                st.false_alarms += 1
                details.append((c.file, t, f, "false alarm"))
        for s in segs:
            if s.hit is None:
                details.append((c.file, s.start, s.fault, f"missed {s.start:g}-{s.end:g}"))
    return Report(pf, clean_s / 3600.0, unmatched, sorted(details), tol)
