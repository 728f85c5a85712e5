"""Alerts: the event schema and the hysteresis engine that turns check results into events."""

from monitor.alerts.engine import AlertPolicy, FaultTracker, StreamAlerts, Timing
from monitor.alerts.events import SCHEMA, AlertEvent

__all__ = ["SCHEMA", "AlertEvent", "AlertPolicy", "FaultTracker", "StreamAlerts", "Timing"]
