"""Webhook sink: each alert event as an HTTP POST of its vqmon.alert/1 JSON, signed.

Headers: `X-Vqmon-Event` (raise/update/clear), `X-Vqmon-Delivery` (a number unique per message
on this box, for de-duplication: a retry after a timeout may deliver twice), and with a secret
`X-Vqmon-Signature: sha256=<hex HMAC-SHA256 of the body>` (GitHub's scheme: check it with the
shared secret before trusting the body). Delivered through the zero-loss outbox
(monitor/sinks/delivery.py): 2xx is done; timeouts, 408, 429 and 5xx are retried with backoff,
across restarts; other 4xx (a wrong URL or secret) drop the message with an error.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import urllib.error
import urllib.request
from pathlib import Path

from monitor.alerts.events import AlertEvent
from monitor.config import WebhookSinkConfig
from monitor.sinks.delivery import DeliveringSink, DeliveryError, OutboxDelivery
from monitor.sinks.outbox import OutboxMessage

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 425, 429}


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSink(DeliveringSink):
    name = "webhook"

    def __init__(self, cfg: WebhookSinkConfig, state_dir: str | Path) -> None:
        self.cfg = cfg
        self.delivery = OutboxDelivery(
            "webhook", Path(state_dir) / "webhook-outbox.sqlite", self._post, cfg.outbox_max_messages, cfg.timeout_s
        )

    def emit(self, event: AlertEvent) -> None:
        if event.event in self.cfg.events:
            self.delivery.add(event.event, event.to_json().encode())

    def _post(self, msg: OutboxMessage) -> None:
        req = urllib.request.Request(self.cfg.url, data=msg.payload, method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("User-Agent", "vqmon")
        req.add_header("X-Vqmon-Event", msg.topic)
        req.add_header("X-Vqmon-Delivery", str(msg.seq))
        if self.cfg.secret:
            req.add_header("X-Vqmon-Signature", signature(self.cfg.secret, msg.payload))
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            retry = exc.code >= 500 or exc.code in RETRY_STATUS
            raise DeliveryError(f"{self.cfg.url} answered HTTP {exc.code}", retry) from None
        except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"{self.cfg.url} unreachable ({getattr(exc, 'reason', exc)})", True) from None
