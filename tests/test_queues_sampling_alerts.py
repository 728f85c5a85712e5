"""The small stage parts: bounded per-stream queues, the sampler, alert hysteresis."""

from __future__ import annotations

import threading

from monitor.alerts import SCHEMA, FaultTracker, Timing
from monitor.capture import Backoff
from monitor.config import SampleConfig
from monitor.queues import StreamMux
from monitor.sampling import Sampler


def test_mux_drops_oldest_and_counts_per_stream():
    mux: StreamMux[int] = StreamMux(maxsize=3)
    for i in range(10):
        mux.put("a", i)
    mux.put("b", 100)
    assert mux.depth("a") == 3 and mux.dropped("a") == 7 and mux.dropped("b") == 0
    got = [mux.get(timeout=0) for _ in range(4)]
    # round-robin between streams, oldest survivors of "a" first
    assert got == [("a", 7), ("b", 100), ("a", 8), ("a", 9)]
    assert mux.get(timeout=0) is None


def test_mux_total_drops_the_oldest_waiting_item_of_any_stream_and_spares_own_limit_items():
    mux: StreamMux[str] = StreamMux(maxsize=3, total=4)
    mux.put("a", "a1")
    mux.put("b", "b1")
    mux.put(("a", "audio"), "s1", maxsize=50)  # its own limit: neither counted nor dropped for it
    mux.put("a", "a2")
    mux.put("b", "b2")
    assert [mux.depth(k) for k in ("a", "b")] == [2, 2] and mux.dropped("a") == mux.dropped("b") == 0
    mux.put("c", "c1")  # a fifth picture: the oldest waiting one (a1) goes, whatever its stream
    assert mux.dropped("a") == 1 and mux.depth("a") == 1 and mux.depth(("a", "audio")) == 1
    mux.put("b", "b3")  # b1 is now the oldest
    assert mux.dropped("b") == 1
    got = [mux.get(timeout=0) for _ in range(6)]
    assert [g[1] for g in got if g is not None] == ["a2", "b2", "s1", "c1", "b3"]
    assert mux.get(timeout=0) is None
    for i in range(3):  # emptied by get: the count starts again from nothing
        mux.put("d", f"d{i}")
    assert mux.dropped("d") == 0 and mux.depth("d") == 3
    mux.set_total(1)  # fewer streams: the next arrival brings the waiting items down to the budget
    mux.put("e", "e0")
    assert mux.dropped("d") == 3 and mux.depth("e") == 1
    assert mux.get(timeout=0) == ("e", "e0") and mux.get(timeout=0) is None


def test_mux_blocking_mode_waits_instead_of_dropping():
    mux: StreamMux[int] = StreamMux(maxsize=2, block_when_full=True)
    mux.put("a", 1)
    mux.put("a", 2)
    assert mux.put("a", 3, timeout=0.05) is False  # full: the producer waits, nothing dropped
    done = threading.Event()

    def producer():
        mux.put("a", 3)
        done.set()

    threading.Thread(target=producer, daemon=True).start()
    assert mux.get(timeout=1) == ("a", 1)
    assert done.wait(5)
    assert [mux.get(timeout=0)[1] for _ in range(2)] == [2, 3]
    assert mux.dropped("a") == 0
    mux.close()
    assert mux.put("a", 4) is False


def test_sampler_every_n_every_s_keyframes():
    s = Sampler(SampleConfig(every_n=3))
    assert [i for i in range(10) if s.accept(i, i / 25, False)] == [0, 3, 6, 9]
    s = Sampler(SampleConfig(every_s=0.5))
    times = [i / 25 for i in range(75)]  # 3 s at 25 fps
    assert [round(t, 2) for i, t in enumerate(times) if s.accept(i, t, False)] == [
        0.0,
        0.52,
        1.0,
        1.52,
        2.0,
        2.52,
    ]
    # stream time jumping back (a reconnect) restarts the grid instead of starving
    assert s.accept(0, 0.0, False)
    s = Sampler(SampleConfig(keyframes_only=True))
    assert s.keyframes_only and s.accept(5, 0.2, True) and not s.accept(6, 0.24, False)
    assert SampleConfig().every_n == 5  # no mode given: every 5th frame


def test_tracker_hysteresis_raise_update_clear():
    tr = FaultTracker("cam", "cam.mp4", "black", Timing(raise_after_s=1.0, clear_after_s=2.0))
    out = []
    # present from t=1.0; flicker at 1.4 resets pending; steady from 1.6 -> raise at 2.6
    for t, present in [(0.5, False), (1.0, True), (1.4, False), (1.6, True), (2.0, True), (2.6, True)]:
        out.append(tr.observe(present, t, "warning", {"x": t}))
    assert [e is None for e in out] == [True] * 5 + [False]
    raise_ev = out[-1]
    assert raise_ev.event == "raise" and raise_ev.stream_time == 2.6 and raise_ev.measurements == {"x": 2.6}
    up = tr.observe(True, 3.0, "critical")
    assert up.event == "update" and up.id == raise_ev.id and up.severity == "critical"
    assert tr.observe(True, 3.2, "warning") is None  # severity only escalates within an episode
    assert tr.observe(False, 3.5) is None
    assert tr.observe(True, 4.0, "critical") is None  # back before clear_after: same episode, no event
    assert tr.observe(False, 4.5) is None
    clear = tr.observe(False, 6.5)
    assert clear.event == "clear" and clear.id == raise_ev.id
    again = [tr.observe(True, t) for t in (7.0, 8.0)]
    assert again[1].event == "raise" and again[1].id != raise_ev.id  # a new episode, a new id
    d = again[1].to_dict()
    assert d["schema"] == SCHEMA and set(d) == {
        "schema",
        "id",
        "stream",
        "source",
        "fault",
        "event",
        "severity",
        "stream_time",
        "wall_time",
        "measurements",
        "snapshot",
        "acknowledged",
    }


def test_backoff_is_capped_exponential_with_jitter():
    import random

    b = Backoff(1.0, 8.0, 0.2, random.Random(1))
    delays = [b.next_delay() for _ in range(7)]
    for d, base in zip(delays, [1, 2, 4, 8, 8, 8, 8], strict=True):
        assert base * 0.8 <= d <= base * 1.2
    assert len(set(delays)) == len(delays)  # jittered
    b.reset()
    assert b.next_delay() <= 1.2


def test_interval_on_stream_time():
    from monitor.clock import Interval

    now = Interval(1.0)
    assert [t for t in (0.0, 0.4, 1.0, 1.5, 2.1) if now.due(t)] == [0.0, 1.0, 2.1]
    assert now.due(0.2)  # the clock went back (a new session): due again at once
    later = Interval(1.0, first_due_at_start=False)
    assert [t for t in (0.0, 0.5, 1.0, 1.9, 2.0) if later.due(t)] == [1.0, 2.0]
