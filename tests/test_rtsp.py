"""Live RTSP from a real GStreamer RTSP server on a loopback port: frames, outages, recovery."""

from __future__ import annotations

import itertools
import logging

import pytest

from monitor.checks import all_checks
from monitor.runtime import StreamSpec
from tests.conftest import LiveRun, free_port, stream_settings, wait_for

LIVE = {
    "sample": {"every_n": 5},
    "capture": {
        "stall_timeout_s": 2,
        "open_timeout_s": 3,
        "read_timeout_s": 2,
        "reconnect": {"initial_s": 0.5, "max_s": 2},
    },
}
# These tests are about capture: the test pattern is a ball on black, so picture checks stay off.
LIVE["checks"] = {name: {"enabled": False} for name in all_checks()}
# Generous: these bound a hang, they are not speed requirements.
MARGIN_S = 10


def spec(name: str, url: str) -> StreamSpec:
    return StreamSpec(name, url, stream_settings(**LIVE))


def test_frames_arrive_then_outage_raises_and_recovery_clears(rtsp_server):
    server = rtsp_server()
    with LiveRun([spec("cam", server.url)]) as run:
        stats = run.pipeline.stats("cam")
        assert wait_for(lambda: run.pipeline.analyzers["cam"].frames_checked >= 5, 30), stats
        assert stats.state == "up" and run.events() == []
        assert wait_for(lambda: 15 < stats.fps < 40, 10), stats.fps  # the server sends 25 fps
        frame_count = stats.frames_decoded
        assert frame_count > 10

        server.kill()
        assert wait_for(lambda: run.events("stream_down", "raise"), 2 + MARGIN_S), stats
        down = run.events("stream_down", "raise")[0]
        assert down.severity == "critical" and down.source == server.url
        assert "reason" in down.measurements

        server.start()  # same port
        assert wait_for(lambda: run.events("stream_down", "clear"), 30), stats
        clear = run.events("stream_down", "clear")[0]
        assert clear.id == down.id
        assert wait_for(lambda: stats.frames_decoded > frame_count + 10, 30)
        assert stats.reconnects >= 1 and stats.state == "up"
    assert run.stuck == []  # no capture thread left hanging


def test_paused_server_is_a_stall_not_a_hang(rtsp_server):
    server = rtsp_server()
    with LiveRun([spec("cam", server.url)]) as run:
        stats = run.pipeline.stats("cam")
        assert wait_for(lambda: stats.frames_decoded > 10, 30)
        server.pause()  # the TCP connection stays open but nothing arrives
        assert wait_for(lambda: run.events("stream_down", "raise"), 2 + MARGIN_S)
        server.resume()
        assert wait_for(lambda: run.events("stream_down", "clear"), 30), stats.last_error
    assert run.stuck == []


def test_two_streams_at_once(rtsp_server):
    a, b = rtsp_server(), rtsp_server(path="/other")
    with LiveRun([spec("a", a.url), spec("b", b.url)]) as run:
        assert wait_for(lambda: all(run.pipeline.analyzers[n].frames_checked >= 5 for n in ("a", "b")), 40), (
            run.pipeline.stats_snapshot()
        )
        a.kill()
        assert wait_for(lambda: run.events("stream_down", "raise", stream="a"), 2 + MARGIN_S)
        before = run.pipeline.stats("b").frames_decoded
        assert wait_for(lambda: run.pipeline.stats("b").frames_decoded > before + 10, 20)
        assert run.events(stream="b") == []  # one camera's outage does not touch the other


def test_unreachable_port_and_masked_credentials(caplog):
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/live"
    caplog.set_level(logging.DEBUG)
    with LiveRun([spec("cam", url)]) as run:
        stats = run.pipeline.stats("cam")
        assert wait_for(lambda: run.events("stream_down", "raise"), MARGIN_S)
        assert wait_for(lambda: stats.reconnects >= 2, 20)  # keeps retrying with backoff
        ev = run.events("stream_down", "raise")[0]
    assert "connection refused" in ev.measurements["reason"]
    assert ev.source == url.replace("hunter2", "***")
    assert "hunter2" not in caplog.text and "hunter2" not in ev.to_json()
    assert "admin:***@127.0.0.1" in caplog.text
    assert run.stuck == []


def test_credentials_masked_on_a_working_stream(rtsp_server, caplog):
    server = rtsp_server()
    url = server.url.replace("rtsp://", "rtsp://viewer:pa55word@")
    caplog.set_level(logging.DEBUG)
    with LiveRun([spec("cam", url)]) as run:
        assert wait_for(lambda: run.pipeline.stats("cam").frames_decoded > 5, 30)
        server.kill()
        assert wait_for(lambda: run.events("stream_down", "raise"), 2 + MARGIN_S)
    text = caplog.text + "".join(e.to_json() for e in run.events())
    assert "pa55word" not in text and "viewer:***@" in text


def test_a_hung_source_is_one_outage_told_on_time(rtsp_server):
    """A server that stops sending (SIGSTOP) for longer than the read timeout: stream_down comes
    from the stall timeout, and the frames the decoder releases when the read times out are not
    taken for the stream coming back: one raise, no clear until the server resumes."""
    import time

    live = {**LIVE, "capture": {**LIVE["capture"], "stall_timeout_s": 3, "read_timeout_s": 5}}
    server = rtsp_server()
    with LiveRun([StreamSpec("cam", server.url, stream_settings(**live))]) as run:
        stats = run.pipeline.stats("cam")
        assert wait_for(lambda: stats.frames_decoded > 25, 30)
        server.pause()
        time.sleep(12)  # past the read timeout, the reconnect attempts and their timeouts
        paused = [e for e in run.events("stream_down") if e.event in ("raise", "clear")]
        server.resume()
        assert wait_for(lambda: run.events("stream_down", "clear"), 30), stats.last_error
    assert [e.event for e in paused] == ["raise"], [(e.event, e.id, e.measurements) for e in paused]
    raised = paused[0]
    assert raised.measurements["reason"].startswith("no frame for")
    # told when the stall timeout ran out, not after a read timeout more
    assert 3.0 <= raised.measurements["seconds_since_frame"] < 4.5, raised.measurements
    clears = run.events("stream_down", "clear")
    assert len(run.events("stream_down", "raise")) == 1 and clears[0].id == raised.id


def test_live_sound_over_rtsp_is_measured(rtsp_server):
    """An encoder's programme sound (Opus over RTP beside the H.264): decoded live, on the
    stream's timeline, and measured; no sound fault on a steady tone at a sane level."""
    server = rtsp_server(audio=0.1)
    sound_checks = {name: {"enabled": True} for name, cls in all_checks().items() if cls.domain == "audio"}
    settings = stream_settings(**{**LIVE, "checks": {**LIVE["checks"], **sound_checks}})
    with LiveRun([StreamSpec("cam", server.url, settings)]) as run:
        analyzer = run.pipeline.analyzers["cam"]
        assert wait_for(lambda: analyzer.audio_seconds >= 3.0, 30), analyzer.latest_quality
        audio = analyzer.latest_quality["audio"]
        # A 1 kHz sine at 0.1 in both channels: -20 dBFS peak, about -20 LUFS as two channels sum.
        assert audio["momentary_lufs"] == pytest.approx(-20.0, abs=1.5), audio
        assert abs(audio["stream_time"] - run.pipeline.stats("cam").last_stream_time) < 3.0
        assert run.events() == []


def test_keyframes_only_over_rtsp_decodes_each_key_frame_on_its_own(rtsp_server):
    """A live source's key frames, each by a decoder made for it from the parameter sets the
    server announces (SDP) or sends: one a second (the server's GOP is 25 frames at 25 fps), with
    pictures, and the stream's own decoder never opened."""
    from monitor.capture import open_decoder
    from monitor.config import CaptureConfig

    server = rtsp_server()
    dec = open_decoder(server.url, "rtsp", CaptureConfig(open_timeout_s=5, read_timeout_s=5), True)
    frames = []
    for f in dec.frames():
        frames.append((f.pts_time, f.keyframe, f.small().shape))
        if len(frames) == 4:
            break
    assert not dec.stream.codec_context.is_open
    dec.close()
    # (The first packet over RTSP has no timestamp yet, whichever decoder reads it.)
    times = [t for t, _key, _shape in frames[1:]]
    assert all(key and shape[2] == 3 for _t, key, shape in frames)
    assert all(b - a == pytest.approx(1.0, abs=0.1) for a, b in itertools.pairwise(times))
