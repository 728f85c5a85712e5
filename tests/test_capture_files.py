"""Capture from real encoded files: frame fields, timestamps, looping, keyframes-only, HEVC."""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time

import av
import numpy as np
import pytest

from monitor.capture import CaptureWorker, open_decoder
from monitor.config import CaptureConfig, SampleConfig
from monitor.queues import StreamMux


def run_worker(url, capture: CaptureConfig, sample: SampleConfig, limit: int = 10_000, retry: bool = False):
    mux = StreamMux(maxsize=100_000, block_when_full=True)
    w = CaptureWorker("cam", url, capture, sample, mux, retry=retry)
    w.start()
    frames = []
    while len(frames) < limit:
        item = mux.get(timeout=0.2)
        if item is None:
            if not w.is_alive():
                break
            continue
        frames.append(item[1])
    w.stop()
    mux.close()
    w.join(10)
    assert not w.is_alive()
    return w, frames


def test_file_frames_carry_stream_time_keyframes_and_pixels(clips):
    w, frames = run_worker(str(clips["clean"]), CaptureConfig(), SampleConfig(every_n=1))
    assert len(frames) == 100 and w.stats.frames_decoded == 100 and w.stats.state == "finished"
    f = frames[10]
    assert f.stream == "cam" and f.index == 10 and f.image.shape == (180, 320, 3) and f.image.dtype.name == "uint8"
    assert f.stream_time == pytest.approx(10 / 25, abs=1e-3)
    assert [x.index for x in frames if x.keyframe] == [0, 50]  # 2 s GOP at 25 fps
    assert all(b.stream_time > a.stream_time for a, b in itertools.pairwise(frames))


def test_loop_keeps_stream_time_monotonic(clips):
    cap = CaptureConfig(loop=True)
    _w, frames = run_worker(str(clips["clean"]), cap, SampleConfig(every_n=1), limit=250)
    assert len(frames) == 250
    times = [f.stream_time for f in frames]
    assert all(b > a for a, b in itertools.pairwise(times))
    assert times[-1] == pytest.approx(249 / 25, abs=0.05)


def test_realtime_paces_at_timestamps(clips):
    # Behaviour, not speed: a paced 1 s of video cannot be delivered in much less than 1 s.
    t0 = time.monotonic()
    _, frames = run_worker(str(clips["clean"]), CaptureConfig(realtime=True), SampleConfig(every_n=5), limit=6)
    assert len(frames) == 6 and time.monotonic() - t0 >= 0.9 * frames[-1].stream_time


def test_keyframes_only_skips_decoding_other_frames(clips):
    w, frames = run_worker(str(clips["black"]), CaptureConfig(), SampleConfig(keyframes_only=True))
    # 10 s, 2 s GOP: only the 5 key frames are ever decoded, not just filtered after decoding
    assert w.stats.frames_decoded == 5 and len(frames) == 5 and all(f.keyframe for f in frames)


def _key_pictures(path) -> list[tuple[float | None, np.ndarray]]:
    """The key frames' times and luma as the stream's own decoder gives them, decoding every frame."""
    from monitor.capture.pyav_decoder import _y_plane

    with av.open(str(path)) as c:
        return [(f.time, _y_plane(f).copy()) for f in c.decode(video=0) if f.key_frame]


@pytest.mark.parametrize("name", ["black", "hevc"])
def test_keyframes_only_decodes_each_key_frame_on_its_own_to_the_same_picture(clips, name):
    """Key frames only, H.264 and HEVC: each key frame goes to a decoder made for it, so the
    stream's own decoder (its tables and frame pools, 7.5-9 MB at 720p) never opens, and the
    pictures and times are those of decoding every frame."""
    if name not in clips:
        pytest.skip("this ffmpeg build has no HEVC encoder")
    expected = _key_pictures(clips[name])
    dec = open_decoder(str(clips[name]), "file", CaptureConfig(), True)
    got = [(f.pts_time, f.luma()) for f in dec.frames() if f.luma is not None]
    assert not dec.stream.codec_context.is_open
    assert len(got) == len(expected) >= 2
    for (t, y), (t_exp, y_exp) in zip(got, expected, strict=True):
        assert t == pytest.approx(t_exp) and np.array_equal(y, y_exp)
    dec.close()


def test_key_frames_from_many_streams_share_one_decode_slot_per_core(clips):
    """More streams than cores decode their key frames at once: each waits for a slot, all get
    the right pictures, and a key frame that fails to decode gives its slot back."""
    from monitor.capture import pyav_decoder
    from monitor.capture.pyav_decoder import PictureDecoder
    from monitor.cores import usable_cores

    slots = usable_cores()
    expected = [y for _t, y in _key_pictures(clips["black"])]
    results: dict[int, list[np.ndarray]] = {}

    def stream(i: int) -> None:
        with av.open(str(clips["black"])) as c:
            dec = PictureDecoder(c.streams.video[0], keyframes_only=True, threads=1)
            junk = av.Packet(bytes(2000))
            junk.is_keyframe = True
            pictures = []
            for packet in c.demux(video=0):
                if packet.is_keyframe and dec._proven:
                    with contextlib.suppress(av.error.FFmpegError):
                        dec.decode(junk)  # damaged: an error or nothing, never a held slot
                pictures += [pyav_decoder._y_plane(f).copy() for f in dec.decode(packet)]
            results[i] = pictures

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(slots + 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == slots + 3
    for pictures in results.values():
        assert len(pictures) == len(expected) and all(map(np.array_equal, pictures, expected))
    taken = [pyav_decoder._KEYFRAME_SLOTS.acquire(blocking=False) for _ in range(slots)]
    for _ in range(sum(taken)):
        pyav_decoder._KEYFRAME_SLOTS.release()
    assert all(taken)


def _annexb(clip, out, parameter_sets_once: bool):
    """The clip's H.264 as a raw Annex B stream (SPS and PPS before every key frame, as cameras
    send them), or with them only before the first key frame."""
    with av.open(str(clip)) as src, av.open(str(out), "w", format="h264") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    if parameter_sets_once:
        data = out.read_bytes()
        starts = [i for i in range(len(data) - 3) if data[i : i + 3] == b"\0\0\1"]
        kept, seen_idr = bytearray(), False
        for a, b in zip(starts, [*starts[1:], len(data)], strict=True):
            kind = data[a + 3] & 0x1F
            if kind in (7, 8) and seen_idr:
                continue
            seen_idr = seen_idr or kind == 5
            kept += data[a:b]
        out.write_bytes(bytes(kept))
    return out


@pytest.mark.parametrize("once", [False, True])
def test_keyframes_only_when_the_parameter_sets_came_once(clips, tmp_path, once):
    """Raw H.264 whose SPS and PPS come only with its first key frame, and a container that does
    not hold them either (ffmpeg's probe lifts them from a file's first key frame; here they are
    taken away again, as a source probed before they arrived would have none): a decoder made for
    a later key frame cannot start, so the stream's own decoder takes over, shown the first key
    frame again for its parameter sets, and every key frame still comes out as it should. With
    the parameter sets before every key frame, the stream's own decoder stays closed."""
    raw = _annexb(clips["black"], tmp_path / "cam.h264", once)
    expected = _key_pictures(raw)
    dec = open_decoder(str(raw), "file", CaptureConfig(), True)
    if once:
        dec.stream.codec_context.extradata = None
    got = [f.luma() for f in dec.frames() if f.luma is not None]
    assert dec.stream.codec_context.is_open == once
    assert len(got) == len(expected) == 5 and dec.decode_errors == 0
    assert all(np.array_equal(y, y_exp) for y, (_t, y_exp) in zip(got, expected, strict=True))
    dec.close()


def test_every_s_samples_by_stream_time(clips):
    _, frames = run_worker(str(clips["clean"]), CaptureConfig(), SampleConfig(every_s=1.0))
    assert [round(f.stream_time, 2) for f in frames] == [0.0, 1.0, 2.0, 3.0]


def test_hevc_clip_decodes(clips):
    if "hevc" not in clips:
        pytest.skip("this ffmpeg build has no HEVC encoder")
    with av.open(str(clips["hevc"])) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
    w, frames = run_worker(str(clips["hevc"]), CaptureConfig(), SampleConfig(every_n=1))
    assert len(frames) == 75 and w.stats.decode_errors == 0


def test_opencv_decoder_same_interface(clips):
    _w, frames = run_worker(str(clips["clean"]), CaptureConfig(decoder="opencv"), SampleConfig(every_n=10))
    assert len(frames) == 10 and frames[0].image.shape == (180, 320, 3)
    assert frames[1].stream_time == pytest.approx(0.4, abs=0.05)


def test_corrupt_packets_are_counted_not_fatal(clips, tmp_path):
    data = bytearray(clips["black"].read_bytes())
    # Damage the middle of the media data (past the header) so some packets fail to decode.
    for off in range(len(data) // 3, len(data) // 3 + 40_000, 997):
        data[off : off + 64] = bytes(64)
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(bytes(data))
    w, frames = run_worker(str(bad), CaptureConfig(), SampleConfig(every_n=1))
    assert w.stats.state == "finished" and len(frames) > 100
    assert w.stats.decode_errors > 0


def test_missing_file_is_a_clear_error(tmp_path):
    w, frames = run_worker(str(tmp_path / "nope.mp4"), CaptureConfig(), SampleConfig())
    assert frames == [] and w.stats.state == "down"
    assert w.fatal_error == f"{tmp_path / 'nope.mp4'}: file not found (check the path)"


def test_open_decoder_on_garbage(tmp_path):
    from monitor.errors import SourceError

    p = tmp_path / "garbage.mp4"
    p.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(SourceError, match=r"garbage.mp4: not a readable video"):
        open_decoder(str(p), "file", CaptureConfig(), False)


@pytest.mark.parametrize("kind", ["one-frame clip", "png"])
def test_looped_single_pictures_are_paced_too(tmp_path, kind):
    """A looped 1-frame clip or a still image in real time plays at its frame rate, not as fast as
    the CPU allows: the pacing clock carries on across loops."""
    import cv2
    import numpy as np

    from monitor.demo import write_clip

    if kind == "png":
        path = tmp_path / "still.png"
        cv2.imwrite(str(path), np.full((90, 160, 3), 120, np.uint8))
    else:
        path = write_clip(tmp_path / "one.mp4", width=160, height=90, fps=25, duration_s=0.04, write_labels=False)
        with av.open(str(path)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 1
    t0 = time.monotonic()
    _, frames = run_worker(str(path), CaptureConfig(realtime=True, loop=True), SampleConfig(every_n=1), limit=13)
    elapsed = time.monotonic() - t0
    assert len(frames) == 13
    # Behaviour, not speed: 12 frame intervals of stream time cannot go by in much less wall time.
    assert frames[-1].stream_time > frames[0].stream_time and elapsed >= 0.9 * (
        frames[-1].stream_time - frames[0].stream_time
    )
    assert frames[-1].stream_time - frames[0].stream_time >= 12 * 0.02  # and stream time does advance per loop


def test_capture_threads_leave_the_cores_to_the_checks_first(clips):
    """A capture thread runs CAPTURE_NICE nicer than the thread that started it, so that on a box
    short of CPU the analysis thread is served before the decoders."""
    from monitor.capture.worker import CAPTURE_NICE

    mux = StreamMux(maxsize=4)
    capture = CaptureConfig(loop=True, realtime=True)
    w = CaptureWorker("cam", str(clips["clean"]), capture, SampleConfig(every_n=25), mux)
    w.start()
    try:
        deadline = time.monotonic() + 30
        while (w.native_id is None or w.stats.frames_decoded == 0) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert w.native_id is not None and w.is_alive()
        nice = os.getpriority(os.PRIO_PROCESS, w.native_id)
        assert nice == min(19, os.getpriority(os.PRIO_PROCESS, 0) + CAPTURE_NICE)
    finally:
        w.stop()
        mux.close()
        w.join(10)
