"""Sinks: where alert events go (console, JSONL file; MQTT later)."""

from monitor.sinks.base import Fanout, Sink
from monitor.sinks.console import ConsoleSink, format_event
from monitor.sinks.jsonl import JsonlSink

__all__ = ["ConsoleSink", "Fanout", "JsonlSink", "Sink", "format_event"]
