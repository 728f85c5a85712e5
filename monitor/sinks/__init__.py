"""Sinks: every outbound channel (console, JSONL file, MQTT, webhook, notifications), one kind
(see base.py)."""

from monitor.sinks.base import Ack, Command, Fanout, Mute, Rebaseline, Sink
from monitor.sinks.console import ConsoleSink, format_event
from monitor.sinks.jsonl import JsonlSink

__all__ = ["Ack", "Command", "ConsoleSink", "Fanout", "JsonlSink", "Mute", "Rebaseline", "Sink", "format_event"]
