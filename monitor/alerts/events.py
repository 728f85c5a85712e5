"""The one alert event schema, vqmon.alert/1, shared by every sink (console, JSONL, MQTT)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA = "vqmon.alert/1"
EventKind = Literal["raise", "update", "clear"]
Severity = Literal["warning", "critical"]


@dataclass(slots=True)
class AlertEvent:
    id: str  # the same for raise, updates and clear of one alert episode
    stream: str
    source: str  # URL with credentials masked, or a file's base name
    fault: str
    event: EventKind
    severity: Severity
    stream_time: float
    wall_time: float
    measurements: dict[str, Any] = field(default_factory=dict)
    snapshot: str | None = None  # path of the JPEG evidence saved with a raise
    acknowledged: bool = False  # an operator acknowledged this alert (MQTT <prefix>/<stream>/ack)
    diagnosis: dict[str, Any] | None = None  # the VLM's written diagnosis (an update event)
    diagnosis_error: str | None = None  # why there is no diagnosis, when escalation failed
    quiet: bool = False  # in the stream's quiet hours: recorded and published, not notified
    clip: str | None = None  # the evidence clip (MP4) around the raise, in a later update

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "id": self.id,
            "stream": self.stream,
            "source": self.source,
            "fault": self.fault,
            "event": self.event,
            "severity": self.severity,
            "stream_time": round(self.stream_time, 3),
            "wall_time": round(self.wall_time, 3),
            "measurements": self.measurements,
            "snapshot": self.snapshot,
            "acknowledged": self.acknowledged,
            **({"diagnosis": self.diagnosis} if self.diagnosis is not None else {}),
            **({"diagnosis_error": self.diagnosis_error} if self.diagnosis_error is not None else {}),
            **({"quiet": True} if self.quiet else {}),
            **({"clip": self.clip} if self.clip is not None else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=str)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlertEvent:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} event: schema={d.get('schema')!r}")
        return cls(**{k: d[k] for k in cls.__slots__ if k in d})
