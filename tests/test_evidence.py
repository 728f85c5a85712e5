"""Evidence clips: an MP4 around each raise, remuxed from the stream's own packets; played back
here to check its length and that the fault is inside."""

from __future__ import annotations

import av
import numpy as np

from monitor.config import EvidenceConfig
from monitor.runtime import StreamSpec
from tests.conftest import LiveRun, stream_settings, wait_for


def test_a_raise_comes_with_a_clip_around_it(clips, tmp_path):
    settings = stream_settings(capture={"loop": False, "realtime": True})
    evidence = EvidenceConfig(clip=True, pre_s=2.5, post_s=2.0, max_mb=50)
    with LiveRun([StreamSpec("cam", str(clips["black"]), settings)], evidence=evidence, evidence_dir=tmp_path) as run:
        assert wait_for(lambda: any(e.clip for e in run.events("black", "update")), 30)
        raised = run.events("black", "raise")[0]
        update = next(e for e in run.events("black", "update") if e.clip)
        ring = run.pipeline.recorders["cam"].ring_bytes
    assert update.id == raised.id and update.to_dict()["clip"] == update.clip
    with av.open(update.clip) as c:
        stream = c.streams.video[0]
        lumas = [float(np.mean(f.to_ndarray(format="gray"))) for f in c.decode(stream)]
        duration = len(lumas) / float(stream.average_rate)
    # from a key frame at least pre_s before the raise to post_s after it
    assert evidence.pre_s + evidence.post_s - 0.5 <= duration <= evidence.pre_s + evidence.post_s + 2.5, duration
    assert min(lumas) < 20 < max(lumas)  # the picture before the fault, and the black itself
    assert ring > 0


def test_old_clips_go_past_max_mb(tmp_path):
    from monitor.capture.evidence import EvidenceRecorder

    for i in range(5):
        (tmp_path / f"2026-0{i}_cam_x.mp4").write_bytes(b"\0" * 400_000)
    rec = EvidenceRecorder("cam", tmp_path, 1.0, 1.0, 1.0, lambda clip: None)  # 1 MB
    rec._prune()
    assert len(list(tmp_path.glob("*.mp4"))) == 2


def test_clips_from_a_live_rtsp_stream(rtsp_server, tmp_path):
    server = rtsp_server(pattern="black")
    live = {"stall_timeout_s": 3, "open_timeout_s": 5, "read_timeout_s": 5}
    settings = stream_settings(capture=live, checks={"black": {"raise_after_s": 3.0}})
    evidence = EvidenceConfig(clip=True, pre_s=2.0, post_s=1.5)
    with LiveRun([StreamSpec("cam", server.url, settings)], evidence=evidence, evidence_dir=tmp_path) as run:
        assert wait_for(lambda: any(e.clip for e in run.events("black", "update")), 40)
        clip = next(e for e in run.events("black", "update") if e.clip).clip
    with av.open(clip) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert frames >= 25 * (evidence.pre_s + evidence.post_s) * 0.8  # the server sends 25 fps
