"""Audio: loudness per BS.1770 against pyloudnorm and ffmpeg, the audio checks block by block,
and the sound's way through capture and the daemon's pipeline on real AAC clips."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import yaml

from monitor.analyze import analyze_files
from monitor.capture.audio import AudioCapture
from monitor.checks.audio_base import AudioBlock, blocks
from monitor.checks.audio_missing import AudioMissing, AudioMissingConfig
from monitor.checks.clipping import Clipping, ClippingConfig, clipped_runs
from monitor.checks.loudness import Loudness, LoudnessConfig, gated_loudness
from monitor.checks.silence import Silence, SilenceConfig
from monitor.config import AudioConfig, Config, ConfigError, parse_config
from monitor.demo import Sound, write_clip
from monitor.frames import AudioChunk

RATE = 48000


def sine(freq: float, dbfs: float, seconds: float, channels: int = 2, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    x = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t + phase)
    return np.tile(x, (channels, 1)).astype(np.float32)


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise in syllables with real pauses: something the gating has work to do on."""
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    env = np.clip(np.sin(2 * np.pi * 4.3 * t), 0, None) * (np.sin(2 * np.pi * 0.23 * t) > -0.3)
    # A voice's band: white noise up to 24 kHz would lose its top to any codec's low-pass.
    voice = sosfilt(butter(4, [200, 4000], btype="band", fs=RATE, output="sos"), rng.standard_normal((2, n)))
    return (0.5 * voice * env).astype(np.float32)


def feed(check, x: np.ndarray, start: float = 0.0, block_s: float = 0.1):
    """Every block of x through the check; the results in order."""
    chunk = AudioChunk("s", start, x.shape[1] / RATE, RATE, x, 0.0)
    return [(b.stream_time, check.evaluate(b)) for b in blocks(chunk, block_s)]


# --- loudness --------------------------------------------------------------------------------


def test_ebu_reference_sine_reads_minus_23_lufs():
    """EBU Tech 3341's first case: a stereo 1 kHz sine at -23 dBFS is -23.0 LUFS (± 0.1)."""
    check = Loudness(LoudnessConfig())
    feed(check, sine(1000, -23, 20))
    f = check.figures()
    for key in ("momentary_lufs", "short_term_lufs", "integrated_lufs"):
        assert f[key] == pytest.approx(-23.0, abs=0.1), (key, f)
    assert pyloudnorm.Meter(RATE).integrated_loudness(sine(1000, -23, 20).T) == pytest.approx(-23.0, abs=0.1)


@pytest.mark.parametrize(
    "parts",
    [
        [(-36, 10), (-23, 60), (-36, 10)],  # EBU Tech 3341 case 3: the relative gate drops the quiet ends
        [(-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)],  # case 4: the absolute gate drops -72
    ],
)
def test_ebu_gating_cases_read_minus_23_lufs(parts):
    x = np.concatenate([sine(1000, level, seconds) for level, seconds in parts], axis=1)
    check = Loudness(LoudnessConfig())
    feed(check, x)
    assert check.figures()["integrated_lufs"] == pytest.approx(-23.0, abs=0.1)


@pytest.mark.parametrize("seed", [0, 1])
def test_integrated_loudness_agrees_with_pyloudnorm_on_the_whole_signal(seed):
    """The integrated figure gates the momentary blocks as BS.1770 does: pyloudnorm's own
    integrated_loudness over the whole signal (gating included) agrees."""
    x = speechlike(40, seed)
    x[:, 10 * RATE : 14 * RATE] *= 0.01  # a quiet stretch the relative gate must drop
    check = Loudness(LoudnessConfig())
    feed(check, x)
    reference = pyloudnorm.Meter(RATE).integrated_loudness(x.T.astype(np.float64))
    assert check.figures()["integrated_lufs"] == pytest.approx(reference, abs=0.1)


def test_gating_drops_silence_and_quiet_blocks():
    loud = np.full(20, -20.0)
    assert gated_loudness(np.concatenate([loud, np.full(20, -80.0)])) == pytest.approx(-20.0, abs=1e-6)
    assert gated_loudness(np.concatenate([loud, np.full(20, -35.0)])) == pytest.approx(-20.0, abs=1e-6)
    assert gated_loudness(np.full(5, -90.0)) == float("-inf")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="Debian's ffmpeg is not installed (make test installs it)")
def test_integrated_loudness_and_true_peak_agree_with_ffmpeg_ebur128(tmp_path):
    x = speechlike(30, seed=3)
    x[0] *= 0.5  # unequal channels
    path = tmp_path / "speech.wav"
    _write_wav(path, x)
    out = subprocess.run(
        ["ffmpeg", "-nostats", "-hide_banner", "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stderr
    summary = out[out.rindex("Summary:") :]
    ffmpeg_i = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    ffmpeg_tp = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    check = Loudness(LoudnessConfig())
    feed(check, x)
    f = check.figures()
    assert f["integrated_lufs"] == pytest.approx(ffmpeg_i, abs=0.2)
    assert f["max_true_peak_dbtp"] == pytest.approx(ffmpeg_tp, abs=0.3)


def _write_wav(path: Path, x: np.ndarray) -> None:
    """32-bit float WAV, written by hand: no audio library needed just for a test file."""
    import struct

    data = x.T.astype("<f4").tobytes()
    ch = x.shape[0]
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 3, ch, RATE, RATE * ch * 4, ch * 4, 32)
    path.write_bytes(header + b"data" + struct.pack("<I", len(data)) + data)


def test_true_peak_finds_the_peak_between_samples():
    """A sine at a quarter of the rate, sampled 45° off its crests: every sample reads -3 dBFS,
    the wave itself reaches 0 dBTP (BS.1770-4 annex 2's reason for oversampling)."""
    x = sine(RATE / 4, 0.0, 5, phase=np.pi / 4) * 0.999
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(-3.0, abs=0.05)
    check = Loudness(LoudnessConfig())
    results = feed(check, x)
    assert check.figures()["max_true_peak_dbtp"] == pytest.approx(0.0, abs=0.3)
    assert results[-1][1].active and "true peak" in results[-1][1].measurements["reason"]


def test_loudness_outside_the_target_window_and_back():
    c = LoudnessConfig()
    check = Loudness(c)
    normal = [r.active for _, r in feed(check, sine(1000, -23, 10))]
    loud = feed(check, sine(1000, -10, 10), start=10)
    quiet_check = Loudness(c)
    quiet = feed(quiet_check, sine(1000, -40, 10))
    assert not any(normal)
    assert loud[-1][1].active and loud[-1][1].measurements["reason"].startswith("too loud")
    assert quiet[-1][1].active and quiet[-1][1].measurements["reason"].startswith("too quiet")
    # An ATSC A/85 site moves the target, not the code.
    atsc = Loudness(LoudnessConfig(target_lufs=-24, tolerance_lu=2))
    assert not feed(atsc, sine(1000, -24.5, 10))[-1][1].active


def test_silence_is_not_a_loudness_fault():
    check = Loudness(LoudnessConfig())
    results = feed(check, np.zeros((2, 10 * RATE), np.float32))
    assert not any(r.active for _, r in results)
    assert check.figures()["integrated_lufs"] is None


# --- silence, clipping, missing ----------------------------------------------------------------


def test_silence_per_channel_names_the_dead_one():
    x = sine(440, -20, 1)
    x[0] = 1e-5  # left dead (-100 dBFS), right live
    whole = feed(Silence(SilenceConfig()), x)
    each = feed(Silence(SilenceConfig(per_channel=True)), x)
    assert not any(r.active for _, r in whole)
    assert all(r.active for _, r in each)
    m = each[0][1].measurements
    assert m["silent_channels"] == ["left"] and m["live_channels"] == ["right"]
    dead = feed(Silence(SilenceConfig()), np.full((2, RATE), 5e-4, np.float32))  # -66 dBFS hiss
    assert all(r.active and r.severity == "critical" for _, r in dead)
    assert not any(r.active for _, r in feed(Silence(SilenceConfig()), np.full((2, RATE), 2e-3, np.float32)))


def test_clipping_counts_flat_tops_not_loud_peaks():
    loud = sine(100, -0.9, 2)  # peaks at 0.90: loud, not clipped
    clipped = np.clip(sine(100, 6, 2), -1, 1)
    rippled = clipped * (1 + 0.01 * np.random.default_rng(0).standard_normal(clipped.shape)).astype(np.float32)
    assert not any(r.active for _, r in feed(Clipping(ClippingConfig()), loud))
    # 100 Hz: a flat top and a flat bottom each cycle, 200 runs a second per channel.
    assert clipped_runs(clipped[:, :RATE], 10 ** (-0.5 / 20), 4).tolist() == [200, 200]
    results = feed(Clipping(ClippingConfig()), rippled)  # as a lossy codec returns a flat top
    assert results[-1][1].active and results[-1][1].measurements["channels"] == ["left", "right"]


def test_audio_missing_reports_capture_s_reason():
    check = AudioMissing(AudioMissingConfig())
    gap = AudioChunk("s", 3.0, 1.0, RATE, None, 0.0, "no sound since stream time 3.0s")
    results = [check.evaluate(b) for b in blocks(gap, 0.1)]
    assert len(results) == 10 and all(r.active for r in results)
    assert results[0].measurements["reason"].startswith("no sound since")
    assert not check.evaluate(AudioBlock(4.0, 0.1, RATE, sine(1, -20, 0.1), 0.0)).active


# --- capture ---------------------------------------------------------------------------------


def test_capture_chunks_follow_the_stream_timeline_and_mark_missing_sound():
    out: list[AudioChunk] = []
    cap = AudioCapture("s", AudioConfig(), out.append)
    offset = {"v": None}
    cap.start_session(True, lambda pts: None if offset["v"] is None else pts + offset["v"])
    import av

    def frame(pts_samples: int, n: int = 1024) -> av.AudioFrame:
        f = av.AudioFrame.from_ndarray(sine(440, -20, n / RATE), format="fltp", layout="stereo")
        f.sample_rate, f.pts = RATE, pts_samples
        from fractions import Fraction

        f.time_base = Fraction(1, RATE)
        return f

    for k in range(30):  # 0.64 s of sound before the picture has fixed the timeline
        cap.on_frame(frame(k * 1024))
    assert out == []  # held, not dropped
    offset["v"] = 100.0  # the picture's first frame: source time 0 is stream time 100
    cap.on_video(100.0)
    for k in range(30, 60):
        cap.on_frame(frame(k * 1024))
    assert out and out[0].stream_time == pytest.approx(100.0)
    heard = out[-1].stream_time + out[-1].duration
    assert sum(c.duration for c in out) == pytest.approx(heard - 100.0)
    # The sound stops; the picture goes on.
    n = len(out)
    for k in range(1, 40):
        cap.on_video(heard + 0.1 * k)
    missing = [c for c in out[n:] if c.samples is None]
    decoded_end = 100.0 + 60 * 1024 / RATE  # the sound held back (under a chunk) was heard too
    assert missing and missing[0].stream_time == pytest.approx(decoded_end)
    assert "no sound since" in missing[0].reason
    # Reported in stretches of at least chunk_s, end to end, up to the picture's last half second.
    last_picture = heard + 3.9
    assert sum(c.duration for c in missing) == pytest.approx(
        missing[-1].stream_time + missing[-1].duration - decoded_end
    )
    assert last_picture - decoded_end - 0.5 <= sum(c.duration for c in missing) <= last_picture - decoded_end


def test_audio_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"block_s .* must not exceed chunk_s"):
        config_text("streams: [{name: a, url: a.mp4, audio: {block_s: 0.8, chunk_s: 0.5}}]")
    with pytest.raises(ConfigError, match="enabled"):
        config_text("streams: [{name: a, url: a.mp4, audio: {enabled: sometimes}}]")
    cfg = config_text("streams: [{name: a, url: a.mp4, profile: cctv}, {name: b, url: b.mp4}]")
    assert cfg.streams[0].audio.enabled is False  # CCTV: sound off unless asked
    assert cfg.streams[1].audio.enabled == "auto"


def config_text(text: str) -> Config:
    return parse_config(yaml.safe_load(text))


# --- the daemon's pipeline on real AAC clips ---------------------------------------------------


def programme(seconds: float) -> np.ndarray:
    """About -23 LUFS of speech-like sound."""
    x = speechlike(seconds, seed=7).astype(np.float64)
    x *= 10 ** ((-23 - pyloudnorm.Meter(RATE).integrated_loudness(x.T)) / 20)
    return x.astype(np.float32)


def dead_air_sound() -> np.ndarray:
    x = programme(24)
    x[:, 5 * RATE : 11 * RATE] = 0.0
    return x


@pytest.fixture(scope="module")
def dead_air_clip(tmp_path_factory) -> Path:
    """24 s: dead air 5-11 s (the track goes on), no audio packets at all 14-19 s."""
    x = dead_air_sound()
    path = tmp_path_factory.mktemp("audio") / "dead_air.mp4"
    return write_clip(
        path, width=320, height=180, fps=10, duration_s=24, write_labels=False, sound=Sound(x, RATE, ((14.0, 19.0),))
    )


def raises(events, fault: str) -> list[float]:
    return [e.stream_time for e in events if e.fault == fault and e.event == "raise"]


def test_dead_air_and_a_dropped_track_through_the_pipeline(dead_air_clip):
    result = analyze_files([str(dead_air_clip)], Config(), profile="broadcast")
    assert not result.errors
    silence, missing = raises(result.events, "silence"), raises(result.events, "audio_missing")
    assert len(silence) == 1 and 7.5 <= silence[0] <= 9.5, silence  # raise_after_s 3
    assert len(missing) == 1 and 15.0 <= missing[0] <= 17.5, missing  # raise_after_s 2 (+ missing_after_s 1)
    m = next(e for e in result.events if e.fault == "audio_missing" and e.event == "raise").measurements
    assert "no sound since" in m["reason"]
    clears = [e.stream_time for e in result.events if e.fault in ("silence", "audio_missing") and e.event == "clear"]
    assert len(clears) == 2
    others = {e.fault for e in result.events} - {"silence", "audio_missing"}
    assert not others, others  # the programme's level is right and nothing clipped; the picture is fine
    stats = next(iter(result.stats.values()))
    assert stats["audio"]["dropped_chunks"] == 0 and stats["audio"]["decode_errors"] == 0
    assert stats["audio"]["seconds_judged"] == pytest.approx(24.0, abs=0.6)  # the sound and the stretch without
    audio = stats["quality"]["audio"]
    x = dead_air_sound()
    heard = np.concatenate([x[:, : 14 * RATE], x[:, 19 * RATE :]], axis=1)  # the gap has no sound to measure
    reference = pyloudnorm.Meter(RATE).integrated_loudness(heard.T.astype(np.float64))
    assert audio["integrated_lufs"] == pytest.approx(reference, abs=0.5)  # through AAC at 128 kbit/s
    assert audio["max_true_peak_dbtp"] < -1.0


def test_sound_off_for_cctv_and_expected_where_enabled(dead_air_clip, tmp_path):
    cctv = analyze_files([str(dead_air_clip)], Config(), profile="cctv")
    assert not [e for e in cctv.events if e.fault in ("silence", "audio_missing")]
    assert "audio" not in next(iter(cctv.stats.values()))["quality"]
    mute = write_clip(tmp_path / "no_track.mp4", width=320, height=180, fps=10, duration_s=8, write_labels=False)
    cfg = config_text("defaults: {audio: {enabled: true}}")
    result = analyze_files([str(mute)], cfg)
    missing = [e for e in result.events if e.fault == "audio_missing" and e.event == "raise"]
    assert len(missing) == 1 and "has no audio track" in missing[0].measurements["reason"]
    assert not [e for e in analyze_files([str(mute)], Config()).events if e.fault == "audio_missing"]


def test_a_black_picture_does_not_explain_dead_air(tmp_path):
    """Picture and sound are judged apart: both faults are raised when both happen."""
    from monitor.demo import FaultSpan

    x = programme(16)
    x[:, 5 * RATE : 12 * RATE] = 0.0
    path = write_clip(
        tmp_path / "black_and_silent.mp4",
        width=320,
        height=180,
        fps=10,
        duration_s=16,
        faults=(FaultSpan("black", 5.0, 12.0),),
        write_labels=False,
        sound=Sound(x, RATE),
    )
    result = analyze_files([str(path)], Config(), profile="broadcast")
    assert raises(result.events, "black") and raises(result.events, "silence")


def test_a_reconnect_is_not_missing_sound():
    """The outage between two sessions is stream_down's business: the new session's sound has
    its grace period from its first picture again."""
    out: list[AudioChunk] = []
    cap = AudioCapture("s", AudioConfig(), out.append)
    cap.start_session(True, lambda pts: pts)
    cap.on_video(0.0)
    cap.on_video(0.4)
    cap.start_session(True, lambda pts: pts)  # reconnected 60 s later
    cap.on_video(60.0)
    cap.on_video(60.5)
    assert out == []
    for k in range(1, 20):  # ...and then no sound at all: missing, from the session's start
        cap.on_video(60.0 + 0.1 * k)
    assert out and all(c.samples is None for c in out) and out[0].stream_time == pytest.approx(60.0)


def test_capture_hands_on_sound_and_gaps_in_order(dead_air_clip):
    """Through the capture thread on a real clip with a dropped track: every stretch, sound or
    none, follows the one before it and none overlaps (the last piece of a gap, under chunk_s,
    is not told: the sound came back first)."""
    from monitor.capture.worker import CaptureWorker
    from monitor.queues import StreamMux
    from tests.conftest import stream_settings

    s = stream_settings(profile="broadcast")
    mux: StreamMux = StreamMux(8, block_when_full=True)  # as `vqmon analyze` runs it
    worker = CaptureWorker("x", str(dead_air_clip), s.capture, s.sample, mux, retry=False, audio=s.audio)
    worker.start()
    chunks = []
    while worker.is_alive() or mux.depth(("x", "audio")) or mux.depth("x"):
        item = mux.get(timeout=0.5)
        if item is not None and isinstance(item[1], AudioChunk):
            chunks.append(item[1])
    assert chunks and all(c.duration > 0 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        gap = after.stream_time - (before.stream_time + before.duration)
        assert -0.01 <= gap < s.audio.chunk_s, (before, after)
    missing = [c for c in chunks if c.samples is None]
    assert 14.0 <= missing[0].stream_time <= 14.1 and sum(c.duration for c in missing) == pytest.approx(5.0, abs=0.6)


def test_a_slow_consumer_is_no_stalled_source(dead_air_clip):
    """`vqmon analyze` makes capture wait while the checks are busy: time spent handing sound
    and pictures on is not time without pictures (it once ended files with "no picture decoded")."""
    import time as _time

    from monitor.capture.pyav_decoder import PyAVDecoder
    from monitor.config import CaptureConfig

    dec = PyAVDecoder(str(dead_air_clip), "file", CaptureConfig(stall_timeout_s=0.1), audio=AudioConfig())
    try:
        frames = 0
        for _ in dec.frames(audio_sink=lambda f: _time.sleep(0.03)):
            frames += 1
            _time.sleep(0.15)  # the consumer of each picture is slow too
            if frames == 8:
                break
        assert frames == 8
    finally:
        dec.close()
