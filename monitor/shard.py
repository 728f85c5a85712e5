"""Splitting one camera list over several daemons with no coordinator: `--shard I/N` keeps the
streams whose name hashes to I (a stable hash, so a stream stays on its shard across restarts
and hosts, and adding a camera moves no other). Each shard keeps its own state directory, MQTT
client id and availability topic; the per-stream topics do not change, so all shards publish
into one broker (or cluster) side by side."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from monitor.config import Config
from monitor.errors import ConfigError

log = logging.getLogger(__name__)


def parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ConfigError(f"--shard {text!r}: give I/N with 1 <= I <= N, e.g. --shard 2/4")
    return int(m.group(1)), int(m.group(2))


def shard_of(name: str, n: int) -> int:
    """1..n for a stream name: SHA-256 of the name, so every daemon and host agrees."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % n + 1


def apply_shard(cfg: Config, shard: tuple[int, int]) -> Config:
    """The part of the config one shard runs: its streams, its own state directory, and for MQTT
    its own client id and availability topic (the stream topics stay as they are)."""
    i, n = shard
    if n == 1:
        return cfg
    tag = f"{i}-of-{n}"
    mine = [s for s in cfg.streams if shard_of(s.name, n) == i]
    log.info("shard %d/%d: %d of %d stream(s): %s", i, n, len(mine), len(cfg.streams),
             ", ".join(s.name for s in mine) or "-")  # fmt: skip
    sinks = cfg.sinks
    if sinks.mqtt.enabled:
        prefix = sinks.mqtt.topic_prefix.rstrip("/")
        mqtt = sinks.mqtt.model_copy(
            update={
                "client_id": f"{sinks.mqtt.client_id}-{tag}",
                "availability_topic": sinks.mqtt.availability_topic or f"{prefix}/available/{tag}",
            }
        )
        sinks = sinks.model_copy(update={"mqtt": mqtt})
    copy = cfg.model_copy(update={"state_dir": str(Path(cfg.state_dir) / f"shard-{tag}"), "sinks": sinks})
    copy.streams = mine
    return copy
