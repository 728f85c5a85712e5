"""`vqmon run` as the service runs it: a subprocess, a config file, signals, a JSONL file."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import yaml

from tests.conftest import ROOT, VQMON, wait_for


def read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_daemon_runs_good_streams_beside_bad_ones_and_stops_cleanly(tmp_path, clips):
    alerts = tmp_path / "alerts.jsonl"
    cfg = {
        "state_dir": str(tmp_path / "state"),
        "defaults": {"capture": {"reconnect": {"initial_s": 0.5, "max_s": 1}}},
        "streams": [
            {"name": "studio", "url": str(clips["black"]), "capture": {"loop": True, "realtime": True}},
            {"name": "bad-scheme", "url": "ftp://cam.example/feed"},
            {"name": "missing-file", "url": str(tmp_path / "nope.mp4")},
        ],
        "sinks": {"console": {"enabled": True}, "jsonl": {"enabled": True, "path": str(alerts)}},
    }
    path = tmp_path / "vqmon.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(
        [*VQMON, "run", "--config", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The black segment (3-6 s of the clip) is played in real time, so this takes ~4 s.
        assert wait_for(lambda: any(e["fault"] == "black" for e in read_events(alerts)), 60), proc.poll()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    events = read_events(alerts)
    down = {e["stream"]: e for e in events if e["fault"] == "stream_down" and e["event"] == "raise"}
    assert set(down) == {"bad-scheme", "missing-file"}  # unmonitored cameras are alerts, not silence
    assert "unknown URL scheme 'ftp'" in down["bad-scheme"]["measurements"]["reason"]
    assert "file not found" in down["missing-file"]["measurements"]["reason"]
    black = [e for e in events if e["fault"] == "black"]
    assert black[0]["stream"] == "studio" and black[0]["event"] == "raise" and black[0]["source"] == "black.mp4"
    # every event also went to the console, one line each
    assert sum(1 for line in out.splitlines() if " RAISE " in line) == sum(1 for e in events if e["event"] == "raise")
    assert "Traceback" not in err
    assert "received SIGTERM, stopping" in err


def test_daemon_config_errors_are_one_line(tmp_path):
    path = tmp_path / "vqmon.yaml"
    path.write_text("streams:\n  - name: a\n    url: x.mp4\n    sample: {every_n: 0}\n")
    r = subprocess.run([*VQMON, "run", "--config", str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == "vqmon: config error: streams[0].sample.every_n: must be ≥ 1 (got 0)"
    r = subprocess.run(
        [*VQMON, "run", "--config", str(tmp_path / "none.yaml")], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "config file not found" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_shutdown_checks_the_frames_already_captured():
    """Frames waiting in the queue when the daemon is told to stop are still checked: four
    streams that all turned black at once give four raises, not however many the loop reached."""
    import numpy as np

    from monitor.analyze import CollectSink
    from monitor.frames import Frame
    from monitor.runtime import Pipeline, StreamSpec
    from monitor.sinks import Fanout
    from tests.conftest import stream_settings

    settings = stream_settings(checks={"black": {"raise_after_s": 0.0}})
    names = [f"cam{i}" for i in range(4)]
    sink = CollectSink()
    pipeline = Pipeline([StreamSpec(n, f"{n}.mp4", settings) for n in names], Fanout([sink]))
    for n in names:
        for k in range(2):
            pipeline.mux.put(n, Frame.from_image(np.zeros((180, 320, 3), np.uint8), stream=n, stream_time=k * 0.2))
    pipeline.shutdown()
    raised = sorted(e.stream for e in sink.events if e.fault == "black" and e.event == "raise")
    assert raised == names


def test_a_busy_box_buffers_fewer_samples_per_stream():
    """Past 8 streams a core each stream buffers 3 sampled frames (a full one holds its full-size
    picture), and the oldest goes when a fourth comes; a configured queue_size still rules."""
    import numpy as np

    from monitor.cores import usable_cores
    from monitor.frames import Frame
    from monitor.runtime import Pipeline, StreamSpec
    from monitor.sinks import Fanout
    from tests.conftest import stream_settings

    many = 8 * usable_cores()
    busy = Pipeline([StreamSpec(f"cam{i}", f"cam{i}.mp4", stream_settings()) for i in range(many)], Fanout([]))
    for k in range(4):
        busy.mux.put("cam0", Frame.from_image(np.zeros((18, 32, 3), np.uint8), stream="cam0", index=k))
    assert busy.mux.depth("cam0") == 3 and busy.mux.dropped("cam0") == 1
    item = busy.mux.get(timeout=0)
    assert item is not None and item[1].index == 1
    busy.shutdown()
    settings = stream_settings()
    settings.capture.queue_size = 6
    told = Pipeline([StreamSpec(f"cam{i}", f"cam{i}.mp4", settings) for i in range(many)], Fanout([]))
    assert told.mux.maxsize == 6
    told.shutdown()


def test_a_stop_during_start_up_is_a_clean_exit(tmp_path, clips):
    """systemd may stop a service that is still starting: SIGTERM before the daemon is up must
    not kill it mid-import, but stop it once it is up, cleanly."""
    import time

    path = tmp_path / "vqmon.yaml"
    cfg = {"state_dir": str(tmp_path / "state"), "streams": [{"name": "a", "url": str(clips["clean"])}]}
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([*VQMON, "run", "--config", str(path)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    time.sleep(0.1)  # well inside the imports
    proc.send_signal(signal.SIGHUP)  # a reload while starting does not kill it either
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "received SIGTERM while starting, stopping" in err and "Traceback" not in err
