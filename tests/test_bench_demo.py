"""The decode benchmark's bookkeeping (not its speed) and the demo generator."""

from __future__ import annotations

import json
import subprocess

import av

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


def test_a_clip_encoded_as_a_camera_has_no_b_frames_and_keeps_under_its_bitrate(tmp_path):
    """The pipeline bench's clip is encoded as an IP camera's main stream: no B-frames (its
    decoder then keeps half the pictures) and a capped bitrate."""
    from monitor.demo import SceneStyle, write_clip

    kinds = {}
    for name, kbps in (("camera", 400), ("x264", None)):
        path = write_clip(tmp_path / f"{name}.mp4", width=320, height=180, fps=25, duration_s=4.0, crf=20,
                          write_labels=False, style=SceneStyle(noise=4.5), camera_kbps=kbps)  # fmt: skip
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            kinds[name] = (s.codec_context.has_b_frames, path.stat().st_size * 8 / 4.0 / 1000)
    assert kinds["camera"][0] == 0 and kinds["x264"][0] > 0
    assert kinds["camera"][1] <= 1.3 * 400


def test_bench_pipeline_counts_what_the_checks_fell_behind_by(clips):
    """`bench pipeline`'s bookkeeping on a short real run: samples in the window are counted, a
    stream keeps up only with no drops and no backlog growing past 5 % of its samples."""
    from benchmarks.pipeline_bench import PipelineRow, bench_pipeline
    from monitor.config import SampleConfig

    fleet = bench_pipeline(parse_config({}), [2], SampleConfig(every_s=0.2), str(clips["clean"]), window_s=2.0,
                           warmup_s=0.5)  # fmt: skip
    row = fleet.rows[0]
    assert row.streams == 2 and row.sampled > 0 and 0 <= row.behind <= row.sampled
    assert "behind" in fleet.report()
    steady = PipelineRow(2, 25.0, 25.0, 0, 1.0, 100.0, sampled=100, behind=5)
    assert steady.keeps_up(25.0)
    assert not PipelineRow(2, 25.0, 25.0, 0, 1.0, 100.0, sampled=100, behind=6).keeps_up(25.0)
    assert not PipelineRow(2, 25.0, 25.0, 1, 1.0, 100.0, sampled=100, behind=0).keeps_up(25.0)
