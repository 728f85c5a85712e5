"""The camera-moved tamper check on real encoded fixed-camera clips: a turned camera is raised
and stays raised until an operator accepts the new view; passers-by, an IR switch and a PTZ
tour with its views declared are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.analyze import analyze_files
from monitor.capture.pyav_decoder import PyAVDecoder
from monitor.config import CaptureConfig, Config
from monitor.demo import encode_frames
from monitor.demo.moved_set import MovedClipSpec, _frames
from monitor.runtime import Pipeline, StreamSpec
from monitor.sinks import Ack, Fanout, Rebaseline
from tests.conftest import stream_settings


def clip(folder: Path, style: str, seed: int = 7, **aim) -> Path:
    spec = MovedClipSpec(
        name=style, split="train", seed=seed, footage="building", style=style, width=640, height=360, fps=10,
        duration=30.0, at=12.0, swing_s=0.0, **aim,
    )  # fmt: skip
    return encode_frames(folder / f"{style}.mp4", _frames(spec), width=640, height=360, fps=10)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("cv2")
    folder = tmp_path_factory.mktemp("moved")
    return {
        "turned": clip(folder, "turned", dx=0.4, dy=0.1),
        "knocked": clip(folder, "knocked", angle=12.0, dx=0.1, dy=0.1),
        "passers": clip(folder, "passers"),
        "ir_switch": clip(folder, "ir_switch"),
        "ptz_tour": clip(folder, "ptz_tour"),
    }


def moved_raises(path: Path, cfg: Config | None = None) -> list[float]:
    result = analyze_files([str(path)], cfg or Config(), profile="cctv")
    assert not result.errors
    return [e.stream_time for e in result.events if e.fault == "moved" and e.event == "raise"]


@pytest.mark.parametrize("style", ["turned", "knocked"])
def test_a_re_aimed_camera_is_raised_and_stays_raised(clips, style):
    raised = moved_raises(clips[style])
    assert len(raised) == 1 and 12.0 < raised[0] <= 12.0 + 8.0 + 3.0, raised  # raise_after_s 8, smoothing


@pytest.mark.parametrize("style", ["passers", "ir_switch"])
def test_a_scene_that_changes_but_stays_put_is_not_moved(clips, style):
    assert moved_raises(clips[style]) == []


def test_a_ptz_tour_needs_its_views_declared(clips):
    from monitor.config import parse_config

    assert moved_raises(clips["ptz_tour"])  # one view expected: the tour's second preset is a move
    declared = parse_config({"defaults": {"checks": {"moved": {"known_views": 3}}}})
    assert moved_raises(clips["ptz_tour"], declared) == []


def test_off_unless_the_profile_turns_it_on(clips):
    result = analyze_files([str(clips["turned"])], Config())  # the default profile: edited content cuts
    assert not [e for e in result.events if e.fault == "moved"]


def sampled(path: Path, every_s: float = 0.5):
    dec = PyAVDecoder(str(path), "file", CaptureConfig())
    last = -1.0
    for i, raw in enumerate(dec.frames()):
        if raw.pts_time is not None and raw.pts_time - last >= every_s:
            last = raw.pts_time
            yield raw.to_frame(path.stem, i, raw.pts_time, raw.pts_time, 0)


@pytest.mark.parametrize("how", ["rebaseline", "ack"])
def test_an_operator_accepts_the_new_view(clips, how):
    """After the raise, a rebaseline (CLI/HTTP/MQTT) or an ack of the moved alert makes the new
    view the reference: the alert clears and stays cleared while the camera keeps pointing there."""
    from monitor.analyze import CollectSink

    sink = CollectSink()
    pipeline = Pipeline(
        [StreamSpec("turned", str(clips["turned"]), stream_settings(profile="cctv"))], Fanout([sink]), offline=True
    )
    raise_ev = None
    for frame in sampled(clips["turned"]):
        pipeline._analyse(frame)
        if raise_ev is None and (raise_ev := next((e for e in sink.events if e.fault == "moved"), None)):
            if how == "rebaseline":
                pipeline.request(Rebaseline("turned"))
            else:
                pipeline.request(Ack("turned", raise_ev.id))
            pipeline._take_inbox()
    moved = [(e.event, round(e.stream_time, 1)) for e in sink.events if e.fault == "moved"]
    assert [e for e, _ in moved] == ["raise", "clear"], moved
    assert moved[1][1] - moved[0][1] < 8.0  # learned within learn_s, then clear_after_s
    pipeline.shutdown()
