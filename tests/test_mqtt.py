"""MQTT publishing against a real Mosquitto broker: topics, retained availability, and no alert
lost across a broker outage or a daemon restart (the SQLite outbox)."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt

from monitor.alerts import AlertEvent
from monitor.config import MqttConfig
from monitor.sinks.mqtt import MqttSink
from monitor.sinks.outbox import Outbox
from tests.conftest import wait_for


class Subscriber:
    def __init__(self, port: int, topic: str = "vqmon/#") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{time.time_ns()}")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def alerts(self) -> list[dict]:
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/alerts")]

    def last(self, topic: str) -> bytes | None:
        with self._lock:
            found = [p for t, p, _ in self.messages if t == topic]
        return found[-1] if found else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def event(i: int, stream: str = "cam", severity: str = "warning") -> AlertEvent:
    return AlertEvent(f"id-{i:04d}", stream, "cam.mp4", "blur", "raise", severity, float(i), time.time(), {"i": i})


def cfg(port: int) -> MqttConfig:
    return MqttConfig(enabled=True, port=port, client_id=f"vqmon-test-{time.time_ns()}")


def test_alerts_and_availability_reach_the_broker(mosquitto, tmp_path):
    broker = mosquitto()
    sub = Subscriber(broker.port)
    sink = MqttSink(cfg(broker.port), tmp_path)
    try:
        assert wait_for(sink.connected.is_set, 15)
        for i in range(3):
            sink.emit(event(i))
        assert wait_for(lambda: len(sub.alerts()) == 3, 15), sub.messages
        assert [a["id"] for a in sub.alerts()] == ["id-0000", "id-0001", "id-0002"]
        assert sub.last("vqmon/available") == b"online"
        assert wait_for(lambda: len(sink.outbox) == 0, 10)  # removed only after the PUBACKs
    finally:
        sink.close()
    assert wait_for(lambda: sub.last("vqmon/available") == b"stopped", 10)
    sub.close()
    late = Subscriber(broker.port)  # retained: a new subscriber learns the state at once
    assert wait_for(lambda: late.last("vqmon/available") == b"stopped", 10)
    late.close()


def test_broker_outage_loses_nothing_and_keeps_order(mosquitto, tmp_path):
    broker = mosquitto()
    sink = MqttSink(cfg(broker.port), tmp_path)
    try:
        assert wait_for(sink.connected.is_set, 15)
        sink.emit(event(0))
        assert wait_for(lambda: len(sink.outbox) == 0, 10)
        broker.stop()
        assert wait_for(lambda: not sink.connected.is_set(), 15)
        for i in range(1, 31):  # faults keep being raised while the broker is down
            sink.emit(event(i))
        assert len(sink.outbox) == 30
        broker.start()  # the same port
        sub = Subscriber(broker.port)
        assert wait_for(sink.connected.is_set, 40)
        assert wait_for(lambda: len(sink.outbox) == 0, 30)
        ids = [a["id"] for a in sub.alerts()]
        assert sorted(set(ids)) == [f"id-{i:04d}" for i in range(1, 31)]  # every one arrived
        first_seen = list(dict.fromkeys(ids))
        assert first_seen == sorted(first_seen)  # in order (duplicates allowed: at-least-once)
        sub.close()
    finally:
        sink.close()


def test_outbox_survives_a_restart_and_replays(mosquitto, tmp_path):
    from tests.conftest import free_port

    dead = cfg(free_port())  # nothing listens: the daemon cannot publish
    sink = MqttSink(dead, tmp_path)
    for i in range(5):
        sink.emit(event(i, severity="critical"))
    sink.close(drain_timeout_s=0.5)
    assert len(Outbox(tmp_path / "mqtt-outbox.sqlite")) == 5  # on disk, like after a crash
    broker = mosquitto()
    sub = Subscriber(broker.port)
    sink2 = MqttSink(cfg(broker.port), tmp_path)
    try:
        assert wait_for(lambda: len(sub.alerts()) >= 5, 30)
        assert [a["id"] for a in sub.alerts()][:5] == [f"id-{i:04d}" for i in range(5)]
    finally:
        sink2.close()
        sub.close()


def test_outbox_bound_drops_oldest_non_critical_first(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", max_messages=10)
    for i in range(6):
        box.add("t", f"c{i}".encode(), critical=True)
    for i in range(8):
        box.add("t", f"w{i}".encode())
    kept = [m.payload.decode() for m in box.pending(limit=100)]
    assert len(kept) == 10 and box.evicted == 4
    assert kept == [f"c{i}" for i in range(6)] + [f"w{i}" for i in range(4, 8)]


def test_wrong_password_is_one_clear_error_and_keeps_retrying(mosquitto, tmp_path, caplog):
    import logging
    import subprocess

    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "vqmon", "right"], check=True, capture_output=True)
    broker = mosquitto(f"password_file {pw}\n")
    broker.conf.write_text(broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    broker.stop()
    broker.start()
    caplog.set_level(logging.ERROR)
    bad = MqttConfig(enabled=True, port=broker.port, username="vqmon", password="wrong", client_id="pw-test")
    sink = MqttSink(bad, tmp_path)
    try:
        sink.emit(event(1))
        assert wait_for(lambda: "refused the connection" in caplog.text, 15)
        time.sleep(3)  # several reconnect attempts
        errors = [r for r in caplog.records if "refused the connection" in r.getMessage()]
        assert len(errors) == 1 and "check mqtt.username" in errors[0].getMessage()
        assert "wrong" not in caplog.text  # the password is never logged
        assert len(sink.outbox) == 1  # kept for when the credentials are fixed
    finally:
        sink.close(drain_timeout_s=0.2)
    good = MqttConfig(enabled=True, port=broker.port, username="vqmon", password="right", client_id="pw-test2")
    sink = MqttSink(good, tmp_path)
    try:
        assert wait_for(lambda: len(sink.outbox) == 0, 20)
    finally:
        sink.close()


def test_daemon_over_mqtt_status_ack_and_last_will(mosquitto, tmp_path, clips):
    import signal
    import subprocess

    import yaml

    from tests.conftest import ROOT, VQMON

    broker = mosquitto()
    sub = Subscriber(broker.port)
    config = {
        "state_dir": str(tmp_path / "state"),
        "stats_interval_s": 1,
        "iqa": {"report_every_s": 1},
        "streams": [{"name": "studio", "url": str(clips["black"]), "capture": {"loop": True, "realtime": True}}],
        "sinks": {
            "console": {"enabled": False},
            "mqtt": {"enabled": True, "port": broker.port, "publish_snapshots": True},
        },
    }
    path = tmp_path / "vqmon.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([*VQMON, "run", "--config", str(path)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: sub.last("vqmon/available") == b"online", 30)
        assert wait_for(lambda: any(a["fault"] == "black" and a["event"] == "raise" for a in sub.alerts()), 60)
        raised = next(a for a in sub.alerts() if a["fault"] == "black")

        def status() -> dict:
            return json.loads(sub.last("vqmon/studio/status") or b"{}")

        # the status follows the alert within a pipeline tick
        assert wait_for(lambda: raised["id"] in [a["id"] for a in status().get("active_alerts", [])], 10)
        assert status()["state"] == "up"
        assert wait_for(lambda: sub.last("vqmon/stats") is not None, 10)
        assert wait_for(lambda: sub.last("vqmon/studio/quality") is not None, 10)
        assert "brisque" in json.loads(sub.last("vqmon/studio/quality"))["iqa"]
        assert wait_for(lambda: (sub.last("vqmon/studio/snapshot") or b"")[:2] == b"\xff\xd8", 10)  # a JPEG

        sub.client.publish("vqmon/studio/ack", raised["id"], qos=1)

        def acked() -> bool:
            st = json.loads(sub.last("vqmon/studio/status"))
            return any(a["id"] == raised["id"] and a["acknowledged"] for a in st["active_alerts"])

        assert wait_for(acked, 15)
        assert wait_for(lambda: any(a["id"] == raised["id"] and a["event"] == "clear" for a in sub.alerts()), 30)
        clear = next(a for a in sub.alerts() if a["id"] == raised["id"] and a["event"] == "clear")
        assert clear["acknowledged"] is True
        # a maintenance window over MQTT: the status says so, and a bad duration is one warning
        sub.client.publish("vqmon/studio/mute", "nonsense", qos=1)
        sub.client.publish("vqmon/studio/mute", "30m", qos=1)
        assert wait_for(lambda: status().get("muted_until", 0) > time.time() + 1700, 15)
        sub.client.publish("vqmon/studio/mute", "0", qos=1)
        assert wait_for(lambda: "muted_until" not in status(), 15)
        sub.client.publish("vqmon/studio/rebaseline", "", qos=1)  # an operator accepts the current view
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean shutdown: the broker sends the last will
        proc.wait(10)
    assert "studio: an operator accepted the current picture" in proc.stderr.read()
    assert wait_for(lambda: sub.last("vqmon/available") == b"offline", 30)
    sub.close()


def _make_certs(folder):
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    import subprocess

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=vqmon test CA",
        "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder / "ca.crt"


def test_tls_with_verified_broker_certificate(mosquitto, tmp_path, caplog):
    import logging

    from monitor.config import MqttTlsConfig

    certs = tmp_path / "certs"
    certs.mkdir()
    ca = _make_certs(certs)
    broker = mosquitto(
        f"cafile {ca}\ncertfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"
    )  # the listener itself is TLS
    good = MqttConfig(enabled=True, port=broker.port, client_id="tls-ok", tls=MqttTlsConfig(ca_file=str(ca)))
    sink = MqttSink(good, tmp_path / "a")
    try:
        assert wait_for(sink.connected.is_set, 20)
        sink.emit(event(1))
        assert wait_for(lambda: len(sink.outbox) == 0, 10)
    finally:
        sink.close()
    # Verification is on: a client that does not trust this CA must not connect.
    caplog.set_level(logging.WARNING)
    untrusted = MqttConfig(enabled=True, port=broker.port, client_id="tls-bad", tls=MqttTlsConfig())
    sink = MqttSink(untrusted, tmp_path / "b")
    try:
        sink.emit(event(2))
        time.sleep(3)
        assert not sink.connected.is_set() and len(sink.outbox) == 1
        errors = [r.getMessage() for r in caplog.records if "cannot connect" in r.getMessage()]
        assert len(errors) == 1 and "mqtt.tls.ca_file" in errors[0]
    finally:
        sink.close(drain_timeout_s=0.2)


def test_bench_mqtt_bookkeeping():
    from benchmarks.bench import bench_mqtt

    r = bench_mqtt(count=300)  # numbers only: speed is the benchmark's business, not a test's
    assert r.events == 300 and r.raw_per_s > 0 and r.outbox_per_s > 0 and r.replay_per_s > 0
    assert "outbox cost" in r.report() and r.as_dict()["outbox_cost"] > 0


def test_daemon_killed_during_an_outage_replays_after_restart(mosquitto, tmp_path, clips):
    import signal
    import sqlite3
    import subprocess

    import yaml

    from tests.conftest import ROOT, VQMON

    broker = mosquitto()
    broker.stop()  # the broker is down from the start
    config = {
        "state_dir": str(tmp_path / "state"),
        "streams": [{"name": "studio", "url": str(clips["black"]), "capture": {"loop": True, "realtime": False}}],
        "sinks": {"console": {"enabled": False}, "mqtt": {"enabled": True, "port": broker.port}},
    }
    path = tmp_path / "vqmon.yaml"
    path.write_text(yaml.safe_dump(config))
    outbox = tmp_path / "state" / "mqtt-outbox.sqlite"

    def queued() -> list[str]:
        if not outbox.exists():
            return []
        with sqlite3.connect(outbox) as db:
            try:
                rows = db.execute("SELECT payload FROM outbox").fetchall()
            except sqlite3.OperationalError:
                # The daemon opened the file and has not made its table yet (make test hit this once).
                return []
            return [json.loads(p)["id"] + ":" + json.loads(p)["event"] for (p,) in rows]

    proc = subprocess.Popen([*VQMON, "run", "--config", str(path)], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: len(queued()) >= 3, 60)  # looping fast: black raised and cleared repeatedly
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    waiting = queued()
    broker.start()
    sub = Subscriber(broker.port)
    proc = subprocess.Popen([*VQMON, "run", "--config", str(path)], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        got = lambda: [a["id"] + ":" + a["event"] for a in sub.alerts()]  # noqa: E731
        assert wait_for(lambda: set(waiting) <= set(got()), 60), (waiting, got())
        assert [x for x in got() if x in waiting][: len(waiting)] == waiting  # in the order they were raised
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        sub.close()


def test_home_assistant_discovery_and_reannounce_on_birth(mosquitto, tmp_path):
    from monitor.config import HomeAssistantConfig

    broker = mosquitto()
    sub = Subscriber(broker.port, topic="homeassistant/#")
    c = cfg(broker.port)
    c.home_assistant = HomeAssistantConfig(enabled=True)
    sink = MqttSink(c, tmp_path)
    try:
        assert wait_for(sink.connected.is_set, 15)
        sink.status("cam", {"state": "up", "active_alerts": []})

        def configs() -> list[tuple[str, dict]]:
            with sub._lock:
                return [(t, json.loads(p)) for t, p, _ in sub.messages if t.endswith("/config") and p]

        def removed() -> list[str]:
            with sub._lock:
                return [t for t, p, _ in sub.messages if t.endswith("/config") and not p]

        # One binary sensor per check, clip_quality and stream_down, then the score's sensor: wait
        # for the last (a count went stale when the sound's checks and `moved` were added).
        assert wait_for(lambda: any(t.startswith("homeassistant/sensor/") for t, _ in configs()), 15)
        by_topic = dict(configs())
        assert len(by_topic) >= 14
        assert any(t.endswith("_clip_quality/config") for t in by_topic)
        # the fault's name before 2026-11-27: its retained sensor is removed, not left dead
        assert wait_for(lambda: any(t.endswith("_cam_quality/config") for t in removed()), 15)
        black = next(v for t, v in by_topic.items() if t.startswith("homeassistant/binary_sensor/") and "_black/" in t)
        assert black["state_topic"] == "vqmon/cam/status" and black["device_class"] == "problem"
        assert black["availability_topic"] == "vqmon/available" and "'black'" in black["value_template"]
        score = next(v for t, v in by_topic.items() if t.startswith("homeassistant/sensor/"))
        assert score["state_topic"] == "vqmon/cam/quality"
        before = len(configs())
        sub.client.publish("homeassistant/status", "online")  # Home Assistant's birth message
        assert wait_for(lambda: len(configs()) >= 2 * before, 15)
    finally:
        sink.close()
        sub.close()
