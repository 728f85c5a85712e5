"""The webhook and apprise notification sinks against a real HTTP server on loopback: signed
POSTs, retries with backoff through an outage, nothing lost across a restart, 4xx dropped, the
per-stream rate limit, and apprise's own json:// target."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitor.alerts import AlertEvent
from monitor.config import NotifySinkConfig, WebhookSinkConfig, parse_config
from monitor.errors import ConfigError
from tests.conftest import wait_for


class Receiver:
    """An HTTP endpoint that records what it gets, or fails on demand."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.status == 200:
                    outer.received.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def event(i: int, kind: str = "raise", stream: str = "cam", severity: str = "critical") -> AlertEvent:
    return AlertEvent(f"id-{i}", stream, "cam.mp4", "black", kind, severity, float(i), time.time(), {"mean_luma": 3.2})


def test_webhook_posts_signed_events(receiver, tmp_path):
    from monitor.sinks.webhook import WebhookSink, signature

    sink = WebhookSink(WebhookSinkConfig(enabled=True, url=receiver.url, secret="s3cret"), tmp_path)
    try:
        for i in range(3):
            sink.emit(event(i))
        assert wait_for(lambda: len(receiver.received) == 3, 10)
    finally:
        sink.close()
    for i, (headers, body) in enumerate(receiver.received):  # in order
        d = json.loads(body)
        assert d["schema"] == "vqmon.alert/1" and d["id"] == f"id-{i}" and headers["X-Vqmon-Event"] == "raise"
        assert headers["X-Vqmon-Signature"] == signature("s3cret", body)  # the receiver can check it
    assert len({h["X-Vqmon-Delivery"] for h, _ in receiver.received}) == 3


def test_webhook_loses_nothing_through_an_outage_and_a_restart(receiver, tmp_path, monkeypatch):
    from monitor.sinks import delivery
    from monitor.sinks.webhook import WebhookSink

    monkeypatch.setattr(delivery, "BACKOFF_S", (0.05, 0.2))  # the outage's retries, compressed
    cfg = WebhookSinkConfig(enabled=True, url=receiver.url, timeout_s=2)
    receiver.status = 503
    sink = WebhookSink(cfg, tmp_path)
    for i in range(5):
        sink.emit(event(i))
    assert wait_for(lambda: sink.delivery.failed >= 3, 10)
    sink.close()  # the daemon stops in the middle of the outage
    assert len(receiver.received) == 0
    receiver.status = 200
    again = WebhookSink(cfg, tmp_path)  # the next start sends what was left, in order
    try:
        assert wait_for(lambda: len(receiver.received) == 5, 10)
        assert [json.loads(b)["id"] for _, b in receiver.received] == [f"id-{i}" for i in range(5)]
        # a 4xx (a wrong URL or secret) is not retried for ever: dropped, counted, the rest go on
        receiver.status = 404
        again.emit(event(9))
        assert wait_for(lambda: again.delivery.dropped == 1, 10)
        receiver.status = 200
        again.emit(event(10))
        assert wait_for(lambda: len(receiver.received) == 6, 10)
    finally:
        again.close()


def test_notify_through_apprise_json_target(receiver, tmp_path):
    pytest.importorskip("apprise")
    from monitor.sinks.notify import NotifySink

    url = receiver.url.replace("http://", "json://")
    cfg = NotifySinkConfig(enabled=True, urls=[url], max_per_minute=2, min_severity="critical")
    sink = NotifySink(cfg, tmp_path)
    try:
        sink.emit(event(1, severity="warning"))  # below min_severity
        sink.emit(event(2, kind="update"))  # not among the events
        for i in range(3, 6):
            sink.emit(event(i))  # the third in a minute is held back
        sink.emit(event(6, stream="other"))  # another stream has its own limit
        assert wait_for(lambda: len(receiver.received) == 3, 15)
        time.sleep(0.5)
        assert len(receiver.received) == 3 and sink.rate_limited == 1
    finally:
        sink.close()
    first = json.loads(receiver.received[0][1])
    assert first["title"] == "vqmon RAISE critical: cam black" and "mean_luma=3.2" in first["message"]
    assert first["type"] == "failure"  # critical


def test_sink_config_errors_are_one_line():
    with pytest.raises(ConfigError, match=r"sinks\.webhook: url: an http:// or https:// URL is needed"):
        parse_config({"sinks": {"webhook": {"enabled": True}}})
    with pytest.raises(ConfigError, match=r"sinks\.notify: urls: at least one apprise URL"):
        parse_config({"sinks": {"notify": {"enabled": True}}})
    from monitor.sinks.notify import NotifySink

    with pytest.raises(ConfigError, match="not a URL apprise understands"):
        NotifySink(NotifySinkConfig(enabled=True, urls=["nonsense://x"]), "/tmp")


def test_quiet_hours_record_but_do_not_notify(receiver, tmp_path, clips):
    from monitor.analyze import analyze_files
    from monitor.config import ScheduleConfig
    from monitor.sinks.notify import NotifySink

    night = ScheduleConfig(quiet_hours=["22:00-06:30"])
    at = lambda h, m: time.mktime((2026, 11, 27, h, m, 0, 0, 0, -1))  # noqa: E731 - local time
    assert night.quiet_at(at(23, 0)) and night.quiet_at(at(3, 0)) and not night.quiet_at(at(6, 30))
    assert not night.quiet_at(at(12, 0)) and ScheduleConfig(quiet_hours=["12:00-13:00"]).quiet_at(at(12, 59))
    with pytest.raises(ConfigError, match="write HH:MM-HH:MM"):
        parse_config({"defaults": {"schedule": {"quiet_hours": ["10pm-6am"]}}})
    # in quiet hours (here: all day) the events are recorded with quiet: true...
    always = parse_config({"defaults": {"schedule": {"quiet_hours": ["00:00-23:59", "23:59-00:00"]}}})
    events = analyze_files([str(clips["black"])], always).events
    assert events and all(e.quiet and e.to_dict()["quiet"] is True for e in events)
    # ...and the notification sink sends none of them
    sink = NotifySink(NotifySinkConfig(enabled=True, urls=[receiver.url.replace("http://", "json://")]), tmp_path)
    try:
        for e in events:
            sink.emit(e)
        loud = event(99)
        sink.emit(loud)
        assert wait_for(lambda: len(receiver.received) == 1, 10)
    finally:
        sink.close()
    assert sink.quiet_held == sum(1 for e in events if e.event in ("raise", "clear"))
