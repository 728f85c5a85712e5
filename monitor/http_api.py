"""The daemon's local HTTP endpoint (127.0.0.1:9310 by default): `/metrics` (Prometheus),
`/healthz` (503 naming the stuck loop when one is), `/api/status` (streams and active alerts,
JSON), and one command, `POST /api/mute/STREAM?for=30m` (a maintenance window; `vqmon mute`).
An optional bearer token. A port already in use is one warning and the daemon
runs on without it: monitoring matters more than its dashboard.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor.config import HttpConfig
from monitor.sinks.base import Command, Mute, Rebaseline, parse_duration

log = logging.getLogger(__name__)


class HttpApi:
    def __init__(
        self,
        cfg: HttpConfig,
        registries: list[CollectorRegistry],
        health: Callable[[], dict[str, Any]],
        status: Callable[[], dict[str, Any]],
        command: Callable[[Command], None] | None = None,
    ) -> None:
        """``command``: where operators' commands (POST /api/mute/STREAM?for=30m) go."""
        token = cfg.token
        self.cfg = cfg
        self._server: ThreadingHTTPServer | None = None

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("http: " + fmt, *args)

            def _refused(self) -> bool:
                """With a token set, a request without it is answered 401 here."""
                if token and not hmac.compare_digest(self.headers.get("Authorization", ""), f"Bearer {token}"):
                    self._send(401, "text/plain", b"bearer token required\n")
                    return True
                return False

            def do_GET(self) -> None:
                if self._refused():
                    return
                path = self.path.split("?", 1)[0]
                try:
                    if path == "/metrics":
                        body = b"".join(generate_latest(r) for r in registries)
                        self._send(200, CONTENT_TYPE_LATEST, body)
                    elif path == "/healthz":
                        h = health()
                        stuck = [n for n, lp in h["loops"].items() if not lp["ok"]]
                        self._json(200 if h["ok"] else 503, {"ok": h["ok"], "stuck": stuck, **h})
                    elif path == "/api/status":
                        self._json(200, status())
                    else:
                        self._send(404, "text/plain", b"not found: try /metrics, /healthz or /api/status\n")
                except Exception as exc:  # a failing page must not take the endpoint down
                    log.exception("http: %s failed", path)
                    self._send(500, "text/plain", f"{type(exc).__name__}: {exc}\n".encode())

            def do_POST(self) -> None:
                if self._refused():
                    return
                path, _, query = self.path.partition("?")
                parts = path.strip("/").split("/")
                if command is None or len(parts) != 3 or parts[:2] not in (["api", "mute"], ["api", "rebaseline"]):
                    self._send(
                        404, "text/plain", b"not found: POST /api/mute/STREAM?for=30m or /api/rebaseline/STREAM\n"
                    )
                    return
                stream = urllib.parse.unquote(parts[2])
                if stream not in status()["streams"]:
                    self._json(404, {"error": f"no stream {stream!r} in this daemon"})
                    return
                if parts[1] == "rebaseline":
                    command(Rebaseline(stream))
                    self._json(202, {"stream": stream, "rebaseline": True})
                    return
                args = urllib.parse.parse_qs(query)
                try:
                    seconds = parse_duration(args.get("for", ["30m"])[0])
                except ValueError as exc:
                    self._json(400, {"error": str(exc)})
                    return
                command(Mute(stream, seconds))
                self._json(202, {"stream": stream, "muted_for_s": seconds})

            def _json(self, code: int, data: dict[str, Any]) -> None:
                self._send(code, "application/json", json.dumps(data, default=str).encode())

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._handler = Handler

    @property
    def port(self) -> int | None:
        return self._server.server_address[1] if self._server else None

    def start(self) -> bool:
        try:
            self._server = ThreadingHTTPServer((self.cfg.bind, self.cfg.port), self._handler)
        except OSError as exc:
            log.warning(
                "http: cannot listen on %s:%d (%s); running on without /metrics and /healthz (set http.port)",
                self.cfg.bind,
                self.cfg.port,
                exc.strerror or exc,
            )
            return False
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="http-api", daemon=True).start()
        log.info("http: /metrics, /healthz and /api/status on %s:%d", self.cfg.bind, self.port)
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
