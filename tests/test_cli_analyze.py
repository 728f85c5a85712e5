"""`vqmon analyze` end to end on real clips, and its one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from monitor.alerts import SCHEMA
from tests.conftest import ROOT, VQMON


def vqmon(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VQMON, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_analyze_raises_and_clears_black(clips):
    r = vqmon("analyze", str(clips["black"]), str(clips["clean"]))
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(e["stream"], e["fault"], e["event"]) for e in events] == [
        ("black", "black", "raise"),
        ("black", "black", "clear"),
    ]
    raise_ev, clear_ev = events
    assert raise_ev["schema"] == SCHEMA and raise_ev["source"] == "black.mp4" and raise_ev["id"] == clear_ev["id"]
    # black spans 3-6 s; default raise_after 1 s, clear_after 3 s, sampled every 5th frame (0.2 s)
    assert 3.0 <= raise_ev["stream_time"] <= 4.5
    assert 6.0 <= clear_ev["stream_time"] <= 9.5
    assert raise_ev["measurements"]["dark_fraction"] >= 0.98


def test_analyze_table_output(clips):
    r = vqmon("analyze", "--output", "table", str(clips["black"]))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["stream", "fault", "severity", "raised_s", "cleared_s", "length_s"]
    assert lines[2].split()[:3] == ["black", "black", "critical"]


def test_analyze_output_is_gradeable_by_the_shared_scorer(clips, tmp_path):
    scorer = ROOT.parent / "shared" / "tools" / "score_alerts.py"
    if not scorer.exists():
        pytest.skip("../shared/tools/score_alerts.py not present in this checkout")
    r = vqmon("analyze", str(clips["black"]))
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text(r.stdout)
    labels = clips["black"].with_suffix(".labels.json")
    s = subprocess.run(
        ["python3", str(scorer), "--labels", str(labels), str(alerts), "--json"],
        capture_output=True,
        text=True,
    )
    assert s.returncode == 0, s.stderr
    report = json.loads(s.stdout)
    assert report["input"] == {"events": 2, "invalid_lines": 0, "unmatched_events": 0}
    black = report["per_fault"]["black"]
    assert black["recall"] == 1.0 and black["precision"] == 1.0 and black["latency_median"] <= 1.5


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (lambda d, c: str(d / "missing.mp4"), "missing.mp4: file not found (check the path)"),
        (
            lambda d, c: _write(d / "garbage.mp4", bytes(range(256)) * 100),
            "garbage.mp4: not a readable video",
        ),
        (
            lambda d, c: _write(d / "truncated.mp4", c["black"].read_bytes()[:30_000]),
            "truncated.mp4: not a readable video",
        ),
        (lambda d, c: "ftp://cam.example/x.mp4", "unknown URL scheme 'ftp'"),
        (lambda d, c: "rtsp://cam.example/x", "analyze reads recorded files"),
    ],
    ids=["missing", "garbage", "truncated", "scheme", "live-url"],
)
def test_analyze_bad_input_one_line_error(tmp_path, clips, make, expect):
    target = make(tmp_path, clips)
    r = vqmon("analyze", target)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vqmon: error: ") and expect in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_analyze_bad_file_does_not_stop_the_good_one(tmp_path, clips):
    r = vqmon("analyze", str(tmp_path / "missing.mp4"), str(clips["black"]))
    assert r.returncode == 2
    assert "missing.mp4: file not found" in r.stderr
    assert [json.loads(x)["event"] for x in r.stdout.splitlines()] == ["raise", "clear"]


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("defaults: {sample: {every_n: 0}}\n", "defaults.sample.every_n: must be ≥ 1"),
        ("defaults: [\n", "malformed YAML"),
    ],
)
def test_analyze_bad_config_one_line(tmp_path, clips, text, expect):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    r = vqmon("analyze", "--config", str(cfg), str(clips["black"]))
    assert r.returncode == 2 and expect in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_analyze_raises_decode_errors_on_a_damaged_clip(clips, tmp_path):
    """The corrupt-packet count must reach the check through the daemon's own capture path."""
    data = bytearray(clips["clean"].read_bytes())
    # Zero runs through the middle of the media data: many packets fail to decode, the file stays readable.
    for off in range(len(data) // 3, 2 * len(data) // 3, 499):
        data[off : off + 64] = bytes(64)
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(bytes(data))
    r = vqmon("analyze", str(bad))
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    raised = [e for e in events if e["event"] == "raise" and e["fault"] == "decode_errors"]
    assert raised, (events, r.stderr)
    assert raised[0]["measurements"]["errors_in_window"] >= 5
    assert "corrupt packet(s) skipped" in r.stderr
