"""vqmon as a systemd service: the notify protocol on a real datagram socket, the watchdog held
back while a loop is stuck, /metrics parsed by prometheus-client's own parser, /healthz and
/api/status, and the unit files checked by systemd-analyze."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, VQMON, wait_for


class NotifySocket:
    """What systemd listens on: a datagram socket; every message the daemon sends is kept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[str] = []

    def read(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                return self.messages

    def seen(self, field: str) -> int:
        return sum(1 for m in self.read() if field in m.split("\n"))


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_daemon_speaks_systemd_and_http(tmp_path, clips):
    notify = NotifySocket(tmp_path / "notify.sock")
    cfg = {
        "state_dir": str(tmp_path / "state"),
        "http": {"port": 0},
        "streams": [{"name": "studio", "url": str(clips["black"]), "capture": {"loop": True, "realtime": True}}],
        "sinks": {"jsonl": {"enabled": True, "path": str(tmp_path / "alerts.jsonl")}},
    }
    path = tmp_path / "vqmon.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**__import__("os").environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"}
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([*VQMON, "run", "--config", str(path)], cwd=ROOT, env=env, stderr=err, text=True)
    try:
        assert wait_for(lambda: notify.seen("READY=1") == 1, 60), log.read_text()
        ready = next(m for m in notify.messages if "READY=1" in m)
        assert "STATUS=1 stream(s)" in ready
        assert wait_for(lambda: notify.seen("WATCHDOG=1") >= 2, 10)  # every second with WatchdogSec=2
        port = int(re.search(r"/api/status on 127\.0\.0\.1:(\d+)", log.read_text()).group(1))
        base = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: "black" in _get(f"{base}/api/status")[1].decode(), 30)

        def metrics() -> dict:
            code, body = _get(f"{base}/metrics")
            assert code == 200
            return {f.name: f for f in text_string_to_metric_families(body.decode())}

        def black_raised() -> bool:  # the status can show the alert a moment before its event is counted
            events = metrics()["vqmon_alert_events"].samples
            return any(s.labels.get("fault") == "black" and s.labels.get("event") == "raise" for s in events)

        assert wait_for(black_raised, 10)
        families = metrics()
        fps = [s for s in families["vqmon_stream_fps"].samples if s.labels == {"stream": "studio"}]
        assert fps and fps[0].value > 0
        assert any(s.value >= 1 for s in families["vqmon_frames_decoded"].samples)
        assert families["vqmon_check_seconds"].type == "histogram"
        loops = {s.labels["loop"]: s.value for s in families["vqmon_loop_healthy"].samples}
        assert loops["analysis"] == 1.0 and loops["capture-studio"] == 1.0
        code, body = _get(f"{base}/healthz")
        assert code == 200 and json.loads(body)["ok"] is True
        status = json.loads(_get(f"{base}/api/status")[1])
        assert status["streams"]["studio"]["state"] == "up" and status["ok"] is True
        assert _get(f"{base}/nope")[0] == 404
        assert wait_for(lambda: any("active alert" in m and "STATUS=" in m for m in notify.read()), 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()
    assert notify.seen("STOPPING=1") == 1
    assert "Traceback" not in log.read_text()


def test_watchdog_is_held_back_while_a_loop_is_stuck(tmp_path, clips, caplog):
    """A loop that stops turning stops the watchdog pings (so systemd restarts the service) and
    turns /healthz to 503 naming it; pings resume when it turns again."""
    from monitor.config import HttpConfig
    from monitor.daemon import Service, start_http
    from monitor.runtime import Pipeline, StreamSpec
    from monitor.sinks import Fanout
    from monitor.systemd import Notifier
    from tests.conftest import stream_settings

    notify = NotifySocket(tmp_path / "n.sock")
    pipeline = Pipeline([StreamSpec("cam", str(clips["clean"]), stream_settings())], Fanout([]))
    stop = __import__("threading").Event()
    service = Service(pipeline, Notifier({"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}), stop)
    assert service.interval_s == 0.5
    cfg = type("C", (), {"http": HttpConfig(port=0)})()
    http = start_http(cfg, pipeline)
    assert http is not None
    try:
        service.tick()
        assert notify.seen("WATCHDOG=1") == 1
        pipeline.beat.at = time.monotonic() - 100  # the analysis loop has not turned for 100 s
        service.tick()
        assert notify.seen("WATCHDOG=1") == 1  # no ping while it is stuck
        assert "analysis has not turned for 100s" in caplog.text
        code, body = _get(f"http://127.0.0.1:{http.port}/healthz")
        assert code == 503 and json.loads(body)["stuck"] == ["analysis"]
        assert any("a loop is stuck" in m for m in notify.read())
        pipeline.beat()
        service.tick()
        assert notify.seen("WATCHDOG=1") == 2
    finally:
        http.stop()
        pipeline.shutdown()


def test_a_busy_http_port_is_one_warning(caplog):
    from monitor.config import HttpConfig
    from monitor.http_api import HttpApi

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        api = HttpApi(HttpConfig(port=s.getsockname()[1]), [], lambda: {"ok": True, "loops": {}}, dict)
        assert api.start() is False
    assert "running on without /metrics" in caplog.text


def test_http_token(tmp_path):
    from prometheus_client import CollectorRegistry

    from monitor.config import HttpConfig
    from monitor.http_api import HttpApi

    api = HttpApi(HttpConfig(port=0, token="s3cret"), [CollectorRegistry()], lambda: {"ok": True, "loops": {}}, dict)
    assert api.start()
    try:
        url = f"http://127.0.0.1:{api.port}/healthz"
        assert _get(url)[0] == 401
        req = urllib.request.Request(url, headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
    finally:
        api.stop()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing (make test installs it)")
@pytest.mark.parametrize("unit", ["vqmon.service", "vqmon@.service"])
def test_unit_files_pass_systemd_analyze_verify(tmp_path, unit):
    text = (ROOT / "systemd" / unit).read_text().replace("/opt/vqmon/.venv/bin/vqmon", str(ROOT / ".venv/bin/vqmon"))
    assert "Type=notify" in text and "WatchdogSec=" in text and "ExecReload=" in text
    name = unit.replace("@.", "@test.")  # a template is verified as an instance
    (tmp_path / name).write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", str(tmp_path / name)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_sighup_reload_adds_and_removes_streams_and_keeps_the_others(tmp_path, clips):
    """A stream added starts, a stream removed stops (its open alerts cleared), a stream left as
    it was keeps its alert open under the same id; an invalid file is refused in one line and
    the running config carries on."""
    alerts = tmp_path / "alerts.jsonl"
    notify = NotifySocket(tmp_path / "notify.sock")

    def write(streams) -> None:
        cfg = {
            "state_dir": str(tmp_path / "state"),
            "http": {"port": 0},
            "streams": streams,
            "sinks": {"jsonl": {"enabled": True, "path": str(alerts)}},
        }
        path.write_text(yaml.safe_dump(cfg))

    def events() -> list[dict]:
        return [json.loads(x) for x in alerts.read_text().splitlines()] if alerts.exists() else []

    live = {"loop": True, "realtime": True}
    # black clip: black from 3 s to 6 s, so "studio" raises black; "lobby" stays clean
    studio = {"name": "studio", "url": str(clips["black"]), "capture": live, "checks": {"black": {"clear_after_s": 60}}}
    lobby = {"name": "lobby", "url": str(clips["black"]), "capture": live, "checks": {"black": {"clear_after_s": 60}}}
    path = tmp_path / "vqmon.yaml"
    write([studio, lobby])
    log = tmp_path / "stderr.txt"
    env = {**__import__("os").environ, "NOTIFY_SOCKET": str(notify.path)}
    with open(log, "w") as err:
        proc = subprocess.Popen([*VQMON, "run", "--config", str(path)], cwd=ROOT, env=env, stderr=err, text=True)
    try:
        assert wait_for(lambda: {e["stream"] for e in events() if e["event"] == "raise"} == {"studio", "lobby"}, 60)
        studio_id = next(e["id"] for e in events() if e["stream"] == "studio")
        # lobby leaves, cam3 arrives, studio is untouched
        write([studio, {"name": "cam3", "url": str(clips["clean"]), "capture": live}])
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "config reloaded: 1 added (cam3), 1 removed (lobby), 0 changed" in log.read_text(), 30)
        port = int(re.search(r"/api/status on 127\.0\.0\.1:(\d+)", log.read_text()).group(1))
        status = json.loads(_get(f"http://127.0.0.1:{port}/api/status")[1])
        assert set(status["streams"]) == {"studio", "cam3"}
        active = status["streams"]["studio"]["active_alerts"]
        assert [a["id"] for a in active] == [studio_id]  # the untouched stream kept its alert
        cleared = [e for e in events() if e["stream"] == "lobby" and e["event"] == "clear"]
        assert cleared and cleared[0]["measurements"]["reason"] == "stream removed from the config"
        assert notify.seen("RELOADING=1") == 1 and notify.seen("READY=1") == 2
        # an invalid file: refused, the running streams carry on
        path.write_text("streams:\n  - name: a\n    url: x.mp4\n    sample: {every_n: 0}\n")
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reload refused, the running config carries on" in log.read_text(), 30)
        assert proc.poll() is None
        assert set(json.loads(_get(f"http://127.0.0.1:{port}/api/status")[1])["streams"]) == {"studio", "cam3"}
        assert not [e for e in events() if e["stream"] == "studio" and e["event"] == "clear"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in log.read_text(), log.read_text()


def test_stream_down_can_ignore_short_blips():
    """stream_down.raise_after_s: a flaky uplink's outages shorter than that raise nothing; a
    longer one raises once it has lasted that long. The default (0) raises at once."""
    from monitor.capture import CaptureStats
    from monitor.runtime.stream import StreamAnalyzer, StreamSpec
    from tests.conftest import stream_settings

    def analyzer(**down):
        return StreamAnalyzer(StreamSpec("cam", "rtsp://cam/x", stream_settings(stream_down=down)), None, None)

    stats = CaptureStats(state="down", last_error="connection refused")
    a = analyzer(raise_after_s=10)
    assert a.watchdog(stats, 100.0) is None and a.watchdog(stats, 105.0) is None
    stats.state = "up"  # back after 5 s: a blip
    assert a.watchdog(stats, 106.0) is None
    stats.state = "down"
    assert a.watchdog(stats, 200.0) is None
    ev = a.watchdog(stats, 210.0)
    assert ev is not None and ev.event == "raise" and ev.fault == "stream_down"
    assert analyzer().watchdog(CaptureStats(state="down"), 100.0).event == "raise"


def test_json_log_lines(tmp_path, clips):
    path = tmp_path / "vqmon.yaml"
    cfg = {"state_dir": str(tmp_path / "s"), "log_format": "json", "http": {"enabled": False},
           "streams": [{"name": "a", "url": str(clips["clean"])}]}  # fmt: skip
    path.write_text(yaml.safe_dump(cfg))
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([*VQMON, "run", "--config", str(path)], cwd=ROOT, stderr=err, text=True)
    try:
        assert wait_for(lambda: "monitoring 1 stream" in log.read_text(), 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(x) for x in lines)
    assert any(x["message"].startswith("monitoring 1 stream") and x["level"] == "info" for x in lines)


def test_mute_is_a_maintenance_window(tmp_path, clips):
    """`vqmon mute STREAM 1h` on a running daemon: no new alert from that stream while muted (the
    other streams go on); `vqmon mute STREAM 0` lifts it and a fault still there is raised."""
    alerts = tmp_path / "alerts.jsonl"
    live = {"loop": True, "realtime": True}
    cfg = {
        "state_dir": str(tmp_path / "state"),
        "http": {"port": 0},
        "streams": [
            {"name": "studio", "url": str(clips["black"]), "capture": live},
            {"name": "other", "url": str(clips["black"]), "capture": live},
        ],
        "sinks": {"jsonl": {"enabled": True, "path": str(alerts)}},
    }
    path = tmp_path / "vqmon.yaml"
    path.write_text(yaml.safe_dump(cfg))
    log = tmp_path / "stderr.txt"

    def raised(stream: str) -> bool:
        lines = alerts.read_text().splitlines() if alerts.exists() else []
        return any(json.loads(x)["stream"] == stream and json.loads(x)["event"] == "raise" for x in lines)

    with open(log, "w") as err:
        proc = subprocess.Popen([*VQMON, "run", "--config", str(path)], cwd=ROOT, stderr=err, text=True)
    try:
        assert wait_for(lambda: "/api/status on" in log.read_text(), 60), log.read_text()
        url = "http://127.0.0.1:" + re.search(r"/api/status on 127\.0\.0\.1:(\d+)", log.read_text()).group(1)
        r = subprocess.run([*VQMON, "mute", "studio", "1h", "--url", url], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0 and r.stdout.strip() == "studio: muted for 3600 s", r.stderr
        assert wait_for(lambda: raised("other"), 30)  # the black segment came on both streams
        time.sleep(1.0)
        assert not raised("studio")
        status = json.loads(_get(f"{url}/api/status")[1])
        assert status["streams"]["studio"]["muted_until"] > time.time() + 3000
        r = subprocess.run([*VQMON, "mute", "studio", "0", "--url", url], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0 and "mute lifted" in r.stdout
        assert wait_for(lambda: raised("studio"), 30)  # the loop's next black segment, or this one
        bad = subprocess.run([*VQMON, "mute", "nope", "5m", "--url", url], capture_output=True, text=True, cwd=ROOT)
        assert bad.returncode == 2 and "no stream 'nope'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        # An operator accepts what the stream shows now (a camera re-aimed on purpose).
        r = subprocess.run([*VQMON, "rebaseline", "studio", "--url", url], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0 and "normal from now on" in r.stdout, r.stderr
        assert wait_for(lambda: "studio: an operator accepted the current picture" in log.read_text(), 15)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    down = subprocess.run([*VQMON, "mute", "studio", "5m", "--url", url], capture_output=True, text=True, cwd=ROOT)
    assert down.returncode == 2 and "no vqmon daemon answers there" in down.stderr
