"""schedule.night: a stream judged by the night profile's checks at night, by the clock or by
its picture's brightness with hysteresis."""

from __future__ import annotations

import time

import numpy as np
import pytest

from monitor.config import ConfigError, NightConfig, parse_config
from monitor.frames import Frame
from monitor.runtime.daynight import DayNight
from monitor.runtime.stream import StreamAnalyzer, StreamSpec
from tests.conftest import stream_settings


def test_night_schedule_errors_name_the_key():
    def cfg(night):
        return parse_config({"streams": [{"name": "a", "url": "a.mp4", "schedule": {"night": night}}]})

    with pytest.raises(ConfigError, match=r"schedule\.night.*hours, or dark_below and light_above"):
        cfg({})
    with pytest.raises(ConfigError, match=r"light_above \(30\) must exceed dark_below \(40\)"):
        cfg({"dark_below": 40, "light_above": 30})
    with pytest.raises(ConfigError, match="unknown profile 'moon'"):
        cfg({"profile": "moon", "hours": "19:00-07:00"})
    with pytest.raises(ConfigError, match="HH:MM-HH:MM"):
        cfg({"hours": "7pm-7am"})
    night = cfg({"hours": "19:00-07:00"}).streams[0].night_settings()
    assert night is not None and night.checks.noise.min_sigma == 3.0  # the night preset's
    assert cfg({"hours": "19:00-07:00"}).streams[0].checks.noise.min_sigma != 3.0  # by day, unchanged


def test_brightness_switch_holds_and_has_hysteresis():
    dn = DayNight(NightConfig(dark_below=40, light_above=60, hold_s=10))
    t = 0.0
    for luma in [100] * 5 + [30] * 9:  # dark for 9 s: not yet
        assert not dn.update(0, t, luma)
        t += 1
    assert not dn.update(0, t, 50)  # between the levels: the dark spell is broken, and night is not day
    for _ in range(11):
        t += 1
        night = dn.update(0, t, 30)
    assert night
    for _ in range(20):  # a headlight or dusk hovering between the levels does not bring day back
        t += 1
        assert dn.update(0, t, 55)
    for _ in range(11):
        t += 1
        night = dn.update(0, t, 80)
    assert not night


def test_clock_switch_in_local_time():
    now = time.time()
    lt = time.localtime(now)
    start = f"{lt.tm_hour:02d}:{lt.tm_min:02d}"
    end = f"{(lt.tm_hour + 1) % 24:02d}:{lt.tm_min:02d}"
    assert DayNight(NightConfig(hours=f"{start}-{end}")).update(now, 0, 200)
    assert not DayNight(NightConfig(hours=f"{end}-{start}")).update(now, 0, 0)


def test_the_analyzer_switches_check_sets_when_the_picture_goes_dark():
    settings = stream_settings(schedule={"night": {"dark_below": 50, "light_above": 70, "hold_s": 5}})
    a = StreamAnalyzer(StreamSpec("cam", "x.mp4", settings))
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (180, 320, 3), dtype=np.uint8)
    assert a.period == "day" and a.checks is a.day_checks
    for i in range(40):
        t = i * 0.5
        gain = 1.0 if t < 5 else 0.15  # the lights go off at 5 s
        img = (scene * gain).astype(np.uint8)
        a.process(Frame.from_image(img, "cam", i, t, 1000.0 + t))
    assert a.period == "night" and a.checks is a.night_checks
    noise = next(c for c in a.checks if c.name == "noise")
    assert noise.config.min_sigma == 3.0


def test_a_real_clip_that_goes_dark_switches_to_the_night_checks(tmp_path):
    """Through capture and the pipeline on an encoded clip: the lights go off at 4 s (an IR
    camera at dusk), and after hold_s of a dark picture the stream is judged by night's checks;
    its status says so."""
    from monitor.analyze import CollectSink
    from monitor.demo import SceneRenderer, encode_frames
    from monitor.runtime import Pipeline
    from monitor.runtime.report import stream_status
    from monitor.sinks import Fanout

    r = SceneRenderer(320, 180, 10, seed=3)
    frames = ((r.render(i / 10) * (1.0 if i < 40 else 0.2)).astype(np.uint8) for i in range(120))
    clip = encode_frames(tmp_path / "dusk.mp4", frames, width=320, height=180, fps=10)
    settings = stream_settings(
        capture={"loop": False}, schedule={"night": {"dark_below": 50, "light_above": 70, "hold_s": 3}}
    )
    pipeline = Pipeline([StreamSpec("cam", str(clip), settings)], Fanout([CollectSink()]), offline=True)
    pipeline.start()
    pipeline.run()
    pipeline.shutdown()
    analyzer = pipeline.analyzers["cam"]
    assert analyzer.period == "night" and analyzer.checks is analyzer.night_checks
    assert stream_status(pipeline.workers["cam"], analyzer)["period"] == "night"
