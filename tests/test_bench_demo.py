"""The decode benchmark's bookkeeping (not its speed) and the demo generator."""

from __future__ import annotations

import json
import subprocess

from benchmarks.bench import bench_decode
from monitor.config import parse_config
from monitor.demo import DEMO_FAULTS, colour_bars
from tests.conftest import ROOT, VQMON


def test_bench_decode_counts_match(clips):
    r = bench_decode(str(clips["black"]), parse_config({}), repeats=1)
    assert r.raw_frames == 250 and r.pipeline_frames == 250
    assert r.frames_checked == 50  # every_n=5 by default
    assert r.keyframes == 5  # 2 s GOP over 10 s
    assert r.raw_fps > 0 and r.pipeline_fps > 0 and r.keyframe_s > 0
    assert abs(r.pipeline_ratio - r.pipeline_fps / r.raw_fps) < 1e-9


def test_bench_cli_json(clips):
    out = subprocess.run(
        [*VQMON, "bench", "decode", str(clips["clean"]), "--json", "--repeats", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["width"] == 320 and d["raw_frames"] == 100 and "pipeline_ratio" in d and "keyframe_saving" in d


def test_demo_faults_are_labelled_and_bars_look_like_bars():
    assert {f.fault for f in DEMO_FAULTS} >= {"black", "freeze", "blur", "no_signal"}
    bars = colour_bars(320, 180)
    top = bars[:100]
    assert len({tuple(top[50, x]) for x in range(5, 320, 46)}) == 7  # seven distinct bars


def test_test_clips_have_labels(clips):
    labels = json.loads(clips["black"].with_suffix(".labels.json").read_text())
    assert labels["schema"] == "vqmon.labels/1"
    assert labels["clips"][0]["faults"] == [{"fault": "black", "start": 3.0, "end": 6.0}]
