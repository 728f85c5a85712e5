"""MQTT sink (paho-mqtt 2.x): every alert goes through the persistent outbox to the broker.

Topics (prefix default `vqmon`):
- `<prefix>/available`: `online` (retained) on connect, `offline` as the last will, `stopped` on a
  clean shutdown;
- `<prefix>/<stream>/alerts`: every vqmon.alert/1 event, QoS 1, not retained;
- `<prefix>/<stream>/status`: retained JSON (state, fps, last frame time, active alerts), on change;
- `<prefix>/<stream>/quality`: the stream's latest quality scores, QoS 0, on the stats timer;
- `<prefix>/stats`: every stream's counters, QoS 0, on the stats timer;
- `<prefix>/<stream>/snapshot` (optional): the JPEG of the latest raise, retained, QoS 0;
- `<prefix>/<stream>/ack` (subscribed): an operator acknowledges an alert by its id (plain text or
  `{"id": ...}`); it shows in the status and in the alert's next events (an ack of a `moved`
  alert also accepts the camera's new view);
- `<prefix>/<stream>/mute` (subscribed): a maintenance window, a duration such as `30m` (`0` lifts it);
- `<prefix>/<stream>/rebaseline` (subscribed, any payload): the stream's current view becomes its
  normal (a camera re-aimed on purpose; see the `moved` check);
- optional Home Assistant discovery: a binary sensor per stream and fault and a quality sensor,
  announced (retained) when a stream first reports and again when Home Assistant's birth message
  (`<discovery_prefix>/status` = `online`) arrives.

Delivery is at-least-once: a message leaves the outbox only on the broker's PUBACK; after a
reconnect everything still in the outbox is published again in order, so a consumer may see a
duplicate (de-duplicate on the event's `id` + `event`).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt

from monitor.alerts.events import AlertEvent
from monitor.config import MqttConfig
from monitor.health import Beat, Loop
from monitor.sinks.base import Ack, Command, Mute, Rebaseline, Sink, parse_duration
from monitor.sinks.outbox import Outbox

log = logging.getLogger(__name__)

WINDOW = 200  # messages handed to paho and not yet acknowledged (paho sends 20 at a time)
PAHO_INFLIGHT = 20
# Commands (acks) kept for the pipeline until it subscribes; a flood before then is dropped.
MAX_EARLY_COMMANDS = 1000


class MqttSink(Sink):
    name = "mqtt"

    def __init__(self, cfg: MqttConfig, state_dir: str | Path) -> None:
        self.cfg = cfg
        self.prefix = cfg.topic_prefix.rstrip("/")
        self.available = cfg.availability_topic or f"{self.prefix}/available"
        self.outbox = Outbox(Path(state_dir) / "mqtt-outbox.sqlite", cfg.outbox_max_messages)
        self.connected = threading.Event()
        self.published = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq
        self._early_acks: set[int] = set()  # PUBACKs that beat the registration of their mid
        self._acked: list[int] = []  # outbox seqs acknowledged, deleted in batches by the publisher
        self._last_sent = 0
        self._last_error: str | None = None
        self._status: dict[str, bytes] = {}  # latest retained status per stream, re-sent on reconnect
        self._deliver: Callable[[Command], None] | None = None
        self._early_commands: list[Command] = []  # arrived before anyone subscribed
        self._announced: set[str] = set()  # streams announced to Home Assistant
        protocol = mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.client_id, protocol=protocol)
        if cfg.username:
            self.client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls is not None:
            self.client.tls_set(
                ca_certs=cfg.tls.ca_file,
                certfile=cfg.tls.cert_file,
                keyfile=cfg.tls.key_file,
                cert_reqs=ssl.CERT_NONE if cfg.tls.insecure else ssl.CERT_REQUIRED,
            )
            self.client.tls_insecure_set(cfg.tls.insecure)
        self.client.will_set(self.available, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_inflight_messages_set(PAHO_INFLIGHT)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_connect_fail = self._on_connect_fail
        self.client.connect_async(cfg.host, cfg.port, cfg.keepalive_s)
        self.client.loop_start()
        self.beat = Beat()
        self._thread = threading.Thread(target=self._publisher, name="mqtt-publisher", daemon=True)
        self._thread.start()

    def loops(self) -> list[Loop]:
        # A publish of a full window to a slow broker takes a while; far longer is a hang.
        return [Loop("mqtt-publisher", self.beat, 60.0, self._thread.is_alive())]

    def backlog(self) -> dict[str, int]:
        return {"mqtt": len(self.outbox)}

    def topic(self, *parts: str) -> str:
        return "/".join([self.prefix, *parts])

    # ---------------------------------------------------------------- sink interface

    def emit(self, event: AlertEvent) -> None:
        # Written to disk first: from here on the alert survives a broker outage or a crash.
        self.outbox.add(
            self.topic(event.stream, "alerts"), event.to_json().encode(), qos=1, critical=event.severity == "critical"
        )
        self._wake.set()
        if self.cfg.publish_snapshots and event.event == "raise" and event.snapshot and self.connected.is_set():
            try:
                jpeg = Path(event.snapshot).read_bytes()
            except OSError as exc:
                log.warning("MQTT: snapshot %s not published: %s", event.snapshot, exc)
            else:
                self.client.publish(self.topic(event.stream, "snapshot"), jpeg, qos=0, retain=True)

    def status(self, stream: str, status: dict) -> None:
        payload = json.dumps(status, separators=(",", ":"), default=str).encode()
        with self._lock:
            self._status[stream] = payload
            new = stream not in self._announced
            self._announced.add(stream)
        if self.connected.is_set():
            if new:
                self._announce(stream)
            self.client.publish(self.topic(stream, "status"), payload, qos=1, retain=True)

    def _announce(self, stream: str) -> None:
        """Home Assistant MQTT discovery configs for one stream (retained)."""
        ha = self.cfg.home_assistant
        if not ha.enabled:
            return
        from monitor.faults import RENAMED_FAULTS, all_faults

        base = f"vqmon_{self.cfg.client_id}_{stream}".replace(".", "_").replace("-", "_")
        device = {
            "identifiers": [f"vqmon_{self.cfg.client_id}_{stream}"],
            "name": f"vqmon {stream}",
            "manufacturer": "vqmon",
        }
        common = {
            "availability_topic": self.available,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        }
        for fault in all_faults():
            config = {
                **common,
                "name": f"{stream} {fault.replace('_', ' ')}",
                "unique_id": f"{base}_{fault}",
                "state_topic": self.topic(stream, "status"),
                "value_template": (
                    "{{ 'ON' if value_json.active_alerts | selectattr('fault', 'equalto', '"
                    + fault
                    + "') | list | count > 0 else 'OFF' }}"
                ),
                "device_class": "problem",
            }
            self.client.publish(
                f"{ha.discovery_prefix}/binary_sensor/{base}_{fault}/config", json.dumps(config), qos=1, retain=True
            )
        for old in RENAMED_FAULTS:  # an empty retained config removes the entity from Home Assistant
            self.client.publish(f"{ha.discovery_prefix}/binary_sensor/{base}_{old}/config", b"", qos=1, retain=True)
        quality = {
            **common,
            "name": f"{stream} picture quality",
            "unique_id": f"{base}_quality_score",
            "state_topic": self.topic(stream, "quality"),
            "value_template": "{{ value_json.clip.quality if value_json.clip is defined else none }}",
            "state_class": "measurement",
        }
        self.client.publish(
            f"{ha.discovery_prefix}/sensor/{base}_quality/config", json.dumps(quality), qos=1, retain=True
        )

    def stats(self, snapshot: dict) -> None:
        if not self.connected.is_set():
            return  # periodic and replaced by the next one: not worth queueing
        self.client.publish(self.topic("stats"), json.dumps(snapshot, default=str), qos=0)
        for stream, s in snapshot.items():
            if s.get("quality"):
                self.client.publish(self.topic(stream, "quality"), json.dumps(s["quality"], default=str), qos=0)

    def subscribe(self, deliver: Callable[[Command], None]) -> None:
        with self._lock:
            self._deliver, early, self._early_commands = deliver, self._early_commands, []
        for command in early:
            deliver(command)

    def close(self, drain_timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + drain_timeout_s
        while len(self.outbox) and self.connected.is_set() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._thread.join(5)
        self._flush_acks()
        if self.connected.is_set():
            self.client.publish(self.available, "stopped", qos=1, retain=True).wait_for_publish(2)
            self.client.disconnect()  # a clean disconnect: the broker does not send the last will
        self.client.loop_stop()
        left = len(self.outbox)
        if left:
            log.warning("MQTT: %d message(s) wait in the outbox for the next start", left)
        self.outbox.close()

    # ---------------------------------------------------------------- paho callbacks

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            msg = f"MQTT broker {self.cfg.host}:{self.cfg.port} refused the connection: {reason_code}"
            if "not authorized" in str(reason_code).lower() or "password" in str(reason_code).lower():
                msg += " (check mqtt.username and the password variable)"
            if msg != self._last_error:
                log.error("%s; retrying", msg)
                self._last_error = msg
            return
        log.info("MQTT: connected to %s:%d", self.cfg.host, self.cfg.port)
        self._last_error = None
        client.publish(self.available, "online", qos=1, retain=True)
        client.subscribe(self.topic("+", "ack"), qos=1)
        client.subscribe(self.topic("+", "mute"), qos=1)
        client.subscribe(self.topic("+", "rebaseline"), qos=1)
        if self.cfg.home_assistant.enabled:
            client.subscribe(f"{self.cfg.home_assistant.discovery_prefix}/status", qos=1)
        with self._lock:
            statuses = list(self._status.items())
        for stream, payload in statuses:
            self._announce(stream)
            client.publish(self.topic(stream, "status"), payload, qos=1, retain=True)
        with self._lock:
            # Replay everything not yet acknowledged, in order, on every (re)connection.
            self._inflight.clear()
            self._early_acks.clear()
            self._last_sent = 0
        self.connected.set()
        self._wake.set()

    def _on_connect_fail(self, client, userdata) -> None:
        msg = (
            f"MQTT: cannot connect to {self.cfg.host}:{self.cfg.port} (broker down, wrong host/port, "
            "or a TLS certificate this box does not trust: check mqtt.tls.ca_file)"
        )
        if msg != self._last_error:
            log.error("%s; alerts wait in the outbox, retrying", msg)
            self._last_error = msg

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set() and not self._stop.is_set():
            log.warning("MQTT: disconnected from %s:%d (%s); alerts wait in the outbox", self.cfg.host, self.cfg.port,
                        reason_code)  # fmt: skip
        self.connected.clear()

    def _on_message(self, client, userdata, msg) -> None:
        ha = self.cfg.home_assistant
        if ha.enabled and msg.topic == f"{ha.discovery_prefix}/status":
            if msg.payload == b"online":  # Home Assistant restarted: announce everything again
                with self._lock:
                    streams = list(self._status)
                for stream in streams:
                    self._announce(stream)
            return
        parts = msg.topic.split("/")
        if len(parts) < 2 or parts[-1] not in ("ack", "mute", "rebaseline"):
            return
        text = msg.payload.decode("utf-8", "replace").strip()
        if parts[-1] == "rebaseline":
            self._command(Rebaseline(parts[-2]))
            return
        if parts[-1] == "mute":
            try:
                self._command(Mute(parts[-2], parse_duration(text or "0")))
            except ValueError as exc:
                log.warning("MQTT: %s: %s", msg.topic, exc)
            return
        try:
            data = json.loads(text)
            alert_id = str(data["id"]) if isinstance(data, dict) else text
        except (ValueError, KeyError):
            alert_id = text
        if alert_id:
            self._command(Ack(parts[-2], alert_id))

    def _command(self, command: Command) -> None:
        with self._lock:
            deliver = self._deliver
            if deliver is None and len(self._early_commands) < MAX_EARLY_COMMANDS:
                self._early_commands.append(command)
        if deliver is not None:
            deliver(command)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # Runs in paho's network thread while paho holds its own locks: never wait for
        # anything here that the publisher thread may hold while it calls into paho.
        with self._lock:
            seq = self._inflight.pop(mid, None)
            if seq is None:
                self._early_acks.add(mid)
            else:
                self._acked.append(seq)
        if seq is not None:
            self._wake.set()

    def _flush_acks(self) -> None:
        with self._lock:
            done, self._acked = self._acked, []
        self.outbox.remove_many(done)
        self.published += len(done)

    # ---------------------------------------------------------------- publisher thread

    def _publisher(self) -> None:
        while not self._stop.is_set():
            self.beat()
            self._wake.wait(0.5)
            self._wake.clear()
            self._flush_acks()
            if not self.connected.is_set():
                continue
            with self._lock:
                room = WINDOW - len(self._inflight)
                after = self._last_sent
            if room <= 0:
                continue
            for msg in self.outbox.pending(after, room):
                info = self.client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    break  # not connected any more; the next connection replays from the outbox
                with self._lock:
                    self._last_sent = msg.seq
                    if info.mid in self._early_acks:
                        self._early_acks.discard(info.mid)
                        self._acked.append(msg.seq)
                    else:
                        self._inflight[info.mid] = msg.seq
