"""Sharding one camera list over several daemons (`vqmon run --shard I/N`)."""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest

from monitor.config import parse_config
from monitor.errors import ConfigError
from monitor.shard import apply_shard, parse_shard, shard_of
from tests.conftest import ROOT, VQMON

# SHA-256 of the name, modulo N, plus one: written down once so a change of method shows here.
PINNED, PINNED_LOBBY = [2, 4, 2, 4, 4], 3


def test_shards_split_the_streams_disjointly_stably_and_evenly():
    names = [f"cam-{i:03d}" for i in range(400)]
    cfg = parse_config(
        {
            "state_dir": "/var/lib/vqmon",
            "streams": [{"name": n, "url": f"rtsp://10.0.0.{i % 250}/s"} for i, n in enumerate(names)],
            "sinks": {"mqtt": {"enabled": True, "client_id": "site"}},
        }
    )
    parts = [apply_shard(cfg, (i, 4)) for i in range(1, 5)]
    got = [[s.name for s in p.streams] for p in parts]
    assert sorted(n for g in got for n in g) == names and all(
        len(set(a) & set(b)) == 0 for a in got for b in got if a is not b
    )
    assert min(map(len, got)) >= 70  # a hash spreads 400 names close to 100 each
    # stable: pinned values, so a new release (or another host) never moves a camera between shards
    assert [shard_of(n, 4) for n in names[:5]] == PINNED and shard_of("lobby", 3) == PINNED_LOBBY
    # adding a camera to the list moves no other camera
    bigger = parse_config({"streams": [*({"name": n, "url": "x"} for n in names), {"name": "cam-new", "url": "x"}]})
    after = [[s.name for s in apply_shard(bigger, (i, 4)).streams if s.name != "cam-new"] for i in range(1, 5)]
    assert after == got
    # each shard its own state, MQTT identity and availability; stream topics unchanged
    p2 = parts[1]
    assert p2.state_dir == "/var/lib/vqmon/shard-2-of-4"
    assert p2.sinks.mqtt.client_id == "site-2-of-4" and p2.sinks.mqtt.availability_topic == "vqmon/available/2-of-4"
    assert p2.sinks.mqtt.topic_prefix == "vqmon" and cfg.sinks.mqtt.client_id == "site"  # the original untouched
    assert apply_shard(cfg, (1, 1)) is cfg
    assert Counter(shard_of(n, 3) for n in names).keys() == {1, 2, 3}


@pytest.mark.parametrize("bad", ["0/4", "5/4", "2", "a/b", "2/0"])
def test_bad_shard_is_a_one_line_error(bad, tmp_path):
    with pytest.raises(ConfigError, match="give I/N with 1 <= I <= N"):
        parse_shard(bad)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("streams: [{name: a, url: a.mp4}]\n")
    r = subprocess.run([*VQMON, "run", "--config", str(cfg), "--shard", bad], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--shard" in r.stderr, r.stderr
