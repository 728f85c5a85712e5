"""`make soak-service`: the daemon for VQMON_SOAK_MIN minutes (default 30) on 8 live RTSP streams
from 4 real servers with faults: a black picture, a noise pattern, and a server that hangs for
15 s every minute (stream_down raised and cleared again and again). Measured on the daemon's
process from /proc after a warm-up: RSS growth (< 5 %), threads and open file descriptors (flat),
and that no alert event was lost: every one the daemon counted is in the JSONL file, and every
clear follows a raise of the same id. Not part of `make test`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, VQMON, RtspServer, wait_for

pytestmark = pytest.mark.soak_service

WARMUP_S = 120.0
SAMPLE_S = 30.0


def _proc(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def test_eight_rtsp_streams_for_half_an_hour(tmp_path):
    minutes = float(os.environ.get("VQMON_SOAK_MIN", "30"))
    servers = {}
    for name, pattern in (("ball", "ball"), ("black", "black"), ("snow", "snow"), ("hangs", "ball")):
        servers[name] = RtspServer(tmp_path, None, "/live", pattern)
        servers[name].start()
    alerts = tmp_path / "alerts.jsonl"
    capture = {"stall_timeout_s": 3, "read_timeout_s": 5, "reconnect": {"initial_s": 0.5, "max_s": 4}}
    streams = [{"name": f"{name}-{k}", "url": s.url, "capture": capture} for name, s in servers.items() for k in (1, 2)]
    cfg = {
        "state_dir": str(tmp_path / "state"),
        "http": {"port": 0},
        "stats_interval_s": 60,
        "streams": streams,
        "sinks": {"jsonl": {"enabled": True, "path": str(alerts)}},
    }
    path = tmp_path / "vqmon.yaml"
    path.write_text(yaml.safe_dump(cfg))
    log = tmp_path / "stderr.txt"
    stop = threading.Event()

    def hang_every_minute() -> None:
        hangs = servers["hangs"]
        while not stop.wait(45):
            hangs.pause()
            if stop.wait(15):
                break
            hangs.resume()
        hangs.resume()

    # As the systemd units run it (see systemd/vqmon.service).
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    with open(log, "w") as err:
        proc = subprocess.Popen([*VQMON, "run", "--config", str(path)], cwd=ROOT, stderr=err, env=env, text=True)
    samples: list[tuple[float, dict[str, float]]] = []
    t0 = time.monotonic()
    hanger = threading.Thread(target=hang_every_minute, daemon=True)
    hanger.start()
    try:
        assert wait_for(lambda: "monitoring 8 stream" in log.read_text(), 60), log.read_text()
        while time.monotonic() - t0 < minutes * 60:
            time.sleep(SAMPLE_S)
            assert proc.poll() is None, log.read_text()[-3000:]
            if time.monotonic() - t0 >= WARMUP_S:
                samples.append((time.monotonic() - t0, _proc(proc.pid)))
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        for s in servers.values():
            if s.proc and s.proc.poll() is None:
                s.resume()
            s.kill()
    text = log.read_text()
    emitted_line = next(line for line in reversed(text.splitlines()) if "alert event(s) emitted" in line)
    emitted = int(emitted_line.split("stopped; ")[1].split()[0])
    events = [json.loads(x) for x in alerts.read_text().splitlines()]
    raised = {e["id"] for e in events if e["event"] == "raise"}
    orphan_clears = [e for e in events if e["event"] == "clear" and e["id"] not in raised]
    first, last = samples[0][1], samples[-1][1]
    rss_growth = (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"]
    print(
        f"\nservice soak: {minutes:g} min, 8 streams; after {WARMUP_S:.0f} s warm-up RSS {first['rss_mb']:.0f} -> "
        f"{last['rss_mb']:.0f} MB ({100 * rss_growth:+.1f} %), max {max(s['rss_mb'] for _, s in samples):.0f} MB; "
        f"threads {first['threads']:.0f} -> {last['threads']:.0f} (max {max(s['threads'] for _, s in samples):.0f}); "
        f"fds {first['fds']:.0f} -> {last['fds']:.0f} (max {max(s['fds'] for _, s in samples):.0f}); "
        f"{len(events)} events written, {emitted} emitted; "
        f"stream_down raises {sum(1 for e in events if e['fault'] == 'stream_down' and e['event'] == 'raise')}"
    )
    print("RSS MB every", SAMPLE_S, "s:", " ".join(f"{x['rss_mb']:.0f}" for _, x in samples))
    assert proc.returncode == 0 and "Traceback" not in text
    assert len(events) == emitted and not orphan_clears  # no alert lost
    assert any(e["fault"] == "black" and e["stream"].startswith("black") for e in events)
    assert sum(1 for e in events if e["fault"] == "stream_down" and e["event"] == "raise") >= 2 * (minutes - 2)
    assert rss_growth < 0.05
    assert last["threads"] <= first["threads"] + 2 and last["fds"] <= first["fds"] + 4
