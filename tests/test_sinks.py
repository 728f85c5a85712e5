"""Sinks are one kind: built from their config sections, isolated from each other by Fanout, and
the way operators' commands come in (MQTT acks end to end are in test_mqtt.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

from monitor.alerts.events import AlertEvent
from monitor.config import parse_config
from monitor.runtime.assemble import build_sinks
from monitor.sinks import Ack, Command, ConsoleSink, Fanout, JsonlSink, Sink


def _event(n: int = 0) -> AlertEvent:
    return AlertEvent(f"id{n}", "cam", "cam.mp4", "black", "raise", "critical", 1.0, 2.0)


class Broken(Sink):
    name = "broken"

    def emit(self, event: AlertEvent) -> None:
        raise OSError("disk full")

    def status(self, stream: str, status: dict) -> None:
        raise OSError("disk full")


class Recorder(Sink):
    """Records what it is given; a listening sink: operators' commands go to ``deliver``."""

    name = "recorder"

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []
        self.statuses: list[tuple[str, dict]] = []
        self.deliver: Callable[[Command], None] | None = None

    def emit(self, event: AlertEvent) -> None:
        self.events.append(event)

    def status(self, stream: str, status: dict) -> None:
        self.statuses.append((stream, status))

    def subscribe(self, deliver: Callable[[Command], None]) -> None:
        self.deliver = deliver


def test_sinks_are_built_from_their_enabled_sections(tmp_path):
    path = tmp_path / "alerts.jsonl"
    cfg = parse_config({"sinks": {"console": {"target": "stderr"}, "jsonl": {"enabled": True, "path": str(path)}}})
    fan = build_sinks(cfg)
    assert [type(s) for s in fan.sinks] == [ConsoleSink, JsonlSink]  # mqtt is off by default
    fan.emit(_event())
    fan.close()
    assert json.loads(path.read_text())["id"] == "id0"
    off = parse_config({"sinks": {"console": {"enabled": False}}})
    assert build_sinks(off).sinks == []


def test_fanout_keeps_going_past_a_broken_sink_and_passes_commands_on():
    good = Recorder()
    console = io.StringIO()
    fan = Fanout([Broken(), good, ConsoleSink(console)])
    fan.emit(_event(1))
    fan.emit(_event(2))
    fan.status("cam", {"state": "up"})
    assert [e.id for e in good.events] == ["id1", "id2"]
    assert good.statuses == [("cam", {"state": "up"})]
    assert fan.failures == {"broken": 2} and console.getvalue().count("\n") == 2
    got: list[Command] = []
    fan.subscribe(got.append)
    assert good.deliver is not None
    good.deliver(Ack("cam", "id1"))
    assert got == [Ack("cam", "id1")]
    fan.close()
