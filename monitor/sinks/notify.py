"""Notification sink through apprise: one library for e-mail, Slack, Teams, Telegram, Discord,
ntfy, Pushover, generic JSON webhooks and many more (`urls:` in apprise's own URL syntax).

Which events go (`events`, `min_severity`), rendered with `title`/`body` templates; at most
`max_per_minute` per stream (the rest are counted and logged, not queued: a flapping camera must
not flood a phone). What is to be sent goes through the zero-loss outbox
(monitor/sinks/delivery.py): a notification that failed is retried with backoff, across restarts.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from monitor.alerts.events import AlertEvent
from monitor.config import NotifySinkConfig
from monitor.errors import ConfigError
from monitor.ratelimit import RateWindow, worth_logging
from monitor.sinks.delivery import DeliveringSink, DeliveryError, OutboxDelivery
from monitor.sinks.outbox import OutboxMessage

log = logging.getLogger(__name__)

_RANK = {"warning": 0, "critical": 1}


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"  # an unknown {field} in a template stays as written


def render(template: str, event: AlertEvent) -> str:
    d = event.to_dict()
    fields = _Fields(d)
    fields["measurements"] = ", ".join(f"{k}={v}" for k, v in (d.get("measurements") or {}).items() if k != "iqa")
    fields["summary"] = ((d.get("diagnosis") or {}).get("summary")) or ""
    fields["event_upper"] = event.event.upper()
    return template.format_map(fields)


class NotifySink(DeliveringSink):
    name = "notify"

    def __init__(self, cfg: NotifySinkConfig, state_dir: str | Path) -> None:
        import apprise

        self.cfg = cfg
        self._apprise = apprise.Apprise()
        for url in cfg.urls:
            if not self._apprise.add(url):
                raise ConfigError(f"sinks.notify.urls: {url.split('://')[0]}://...: not a URL apprise understands")
        self._windows: dict[str, RateWindow] = {}
        self.rate_limited = 0
        self.quiet_held = 0
        self.delivery = OutboxDelivery(
            "notify", Path(state_dir) / "notify-outbox.sqlite", self._send, cfg.outbox_max_messages, cfg.timeout_s
        )

    def emit(self, event: AlertEvent) -> None:
        c = self.cfg
        if event.event not in c.events or _RANK[event.severity] < _RANK[c.min_severity]:
            return
        if event.quiet:  # the stream's quiet hours: recorded by the other sinks, nobody woken
            self.quiet_held += 1
            return
        now = time.monotonic()
        window = self._windows.setdefault(event.stream, RateWindow(c.max_per_minute))
        if not window.allows(now):
            self.rate_limited += 1
            if worth_logging(self.rate_limited):
                log.warning("notify: %s sends more than %d a minute; %d held back so far",
                            event.stream, c.max_per_minute, self.rate_limited)  # fmt: skip
            return
        window.add(now)
        message = {"title": render(c.title, event), "body": render(c.body, event), "type": event.severity}
        self.delivery.add(event.event, json.dumps(message).encode())

    def _send(self, msg: OutboxMessage) -> None:
        import apprise

        m = json.loads(msg.payload)
        kind = apprise.NotifyType.FAILURE if m["type"] == "critical" else apprise.NotifyType.WARNING
        if not self._apprise.notify(title=m["title"], body=m["body"], notify_type=kind):
            raise DeliveryError("apprise could not deliver to every URL (see its log)", True)
