"""Root-cause suppression, cooldown, rate limit and snapshot evidence in the alert stage."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from monitor.alerts import AlertPolicy, StreamAlerts, Timing
from monitor.alerts.snapshots import SnapshotStore
from monitor.frames import Frame
from monitor.runtime import StreamAnalyzer, StreamSpec
from tests.conftest import stream_settings

T = Timing(raise_after_s=1.0, clear_after_s=1.0)


def test_root_cause_suppresses_other_faults_and_counts_them():
    settings = stream_settings(checks={"black": {"raise_after_s": 0.5}})
    analyzer = StreamAnalyzer(StreamSpec("cam", "cam.mp4", settings))
    rng = np.random.default_rng(0)
    events = []
    for i in range(40):  # 8 s of black with sensor noise: black, and also a frozen picture
        black = np.clip(rng.normal(4, 2, (180, 320, 3)), 0, 255).astype(np.uint8)
        events += analyzer.process(Frame.from_image(black, stream="cam", index=i, stream_time=i * 0.2))
    assert [(e.fault, e.event) for e in events] == [("black", "raise")]
    assert analyzer.alerts.suppressed.get("freeze", 0) > 0


def test_ranked_root_causes():
    """An earlier root cause explains a later one: black hides obstruction, not the reverse."""
    settings = stream_settings()
    analyzer = StreamAnalyzer(StreamSpec("cam", "cam.mp4", settings))
    assert analyzer.root_causes.index("black") < analyzer.root_causes.index("obstruction")


def test_one_root_cause_rule_for_checks_and_clip_scores():
    """A black picture seen on the latest frame explains a low CLIP quality score as it explains
    the checks' symptoms, before its own alert is raised (one rule, not two)."""
    from monitor.config import ScoringConfig
    from monitor.scoring.worker import ScoreResult

    settings = stream_settings(checks={"black": {"raise_after_s": 30.0}})
    scoring = ScoringConfig(model_dir="unused", raise_after_s=0.0)
    analyzer = StreamAnalyzer(StreamSpec("cam", "cam.mp4", settings), scoring=scoring)
    black = np.full((180, 320, 3), 3, np.uint8)
    for i in range(3):
        frame = Frame.from_image(black, stream="cam", index=i, stream_time=i * 0.2)
        assert analyzer.process(frame) == []  # black seen, not raised yet
        result = ScoreResult("cam", i * 0.2, 0.0, {"quality": 0.05}, frame)
        assert analyzer.on_scores(result) == []
    assert analyzer.alerts.suppressed.get("clip_quality", 0) == 3
    assert not analyzer.alerts.is_active("black")


def test_an_explained_condition_waits_without_restarting_its_timer():
    """A root cause seen on single frames (a static night scene that looks frozen for a moment)
    must not keep restarting another fault's wait; a lasting root cause keeps it hidden, and
    the time it explained does not count toward the raise (a fade through black)."""
    alerts = StreamAlerts("cam", "cam", AlertPolicy(cooldown_s=0.0, max_raises_per_minute=100))
    flicker = [alerts.observe("noise", T, True, t * 0.25, explained=t % 3 == 1) for t in range(12)]
    assert [e.event for e in flicker if e] == ["raise"] and alerts.suppressed["noise"] == 4
    lasting = [alerts.observe("blur", T, True, t * 0.25, explained=True) for t in range(12)]
    assert not any(lasting) and not alerts.is_active("blur")
    # The root cause went: the explained time did not count, the wait runs from there.
    after = [(t, alerts.observe("blur", T, True, t)) for t in (3.0, 3.25, 3.5, 3.75)]
    assert [t for t, e in after if e] == [3.75]


def test_cooldown_defers_a_quick_second_raise_without_losing_it():
    alerts = StreamAlerts("cam", "cam", AlertPolicy(cooldown_s=5.0, max_raises_per_minute=100))
    ev = [alerts.observe("blur", T, p, t) for t, p in [(0, True), (1, True), (2, False), (3, False)]]
    assert [e.event for e in ev if e] == ["raise", "clear"]
    # back 1 s after the clear: held back by the cooldown, raised once it has passed
    later = [(t, alerts.observe("blur", T, True, t)) for t in (4, 5, 6, 7, 8, 9)]
    raised = [t for t, e in later if e and e.event == "raise"]
    assert raised == [8] and alerts.held_back()["blur"] >= 1


def test_rate_limit_caps_raises_per_stream_and_counts_the_rest():
    alerts = StreamAlerts("cam", "cam", AlertPolicy(cooldown_s=0.0, max_raises_per_minute=3))
    raised = []
    for t in range(0, 20):
        for f in ("a", "b", "c", "d", "e"):
            e = alerts.observe(f, Timing(0.0, 0.0), True, float(t))
            if e:
                raised.append((t, f))
    assert [f for _, f in raised] == ["a", "b", "c"]  # the others wait
    assert sum(alerts.held_back().values()) > 0
    for t in range(60, 62):  # a minute later the waiting faults get through
        for f in ("d", "e"):
            alerts.observe(f, Timing(0.0, 0.0), True, float(t))
    assert set(alerts.active_faults()) == {"a", "b", "c", "d", "e"}


def test_stream_down_is_never_rate_limited():
    alerts = StreamAlerts("cam", "cam", AlertPolicy(cooldown_s=0.0, max_raises_per_minute=1))
    alerts.observe("blur", Timing(0, 0), True, 0.0)
    ev = alerts.observe("stream_down", Timing(0, 0), True, 1.0, rate_limited=False)
    assert ev is not None and ev.event == "raise"


def test_snapshot_on_raise_and_bounded_disk(tmp_path):
    store = SnapshotStore(tmp_path / "snaps", max_bytes=60_000, quality=90)
    settings = stream_settings(checks={"black": {"raise_after_s": 0.0}})
    rng = np.random.default_rng(0)
    paths = []
    for n in range(12):
        analyzer = StreamAnalyzer(StreamSpec(f"cam{n}", "x.mp4", settings), snapshots=store)
        img = rng.integers(0, 12, (360, 640, 3), dtype=np.uint8)  # dark, noisy: big JPEGs
        ev = analyzer.process(Frame.from_image(img, stream=f"cam{n}", stream_time=0.0))
        assert ev and ev[0].event == "raise" and ev[0].snapshot
        assert ev[0].to_dict()["snapshot"] == ev[0].snapshot
        paths.append(ev[0].snapshot)
    files = list((tmp_path / "snaps").rglob("*.jpg"))
    details = list((tmp_path / "snaps").rglob("*.json"))
    on_disk = sum(f.stat().st_size for f in files + details)
    assert on_disk <= 60_000 and store.removed > 0
    assert str(files[0]) in paths and (tmp_path / "snaps" / "cam11").is_dir()
    # the alert's details beside each kept picture (what `vqmon ask` sends), gone with removed ones
    assert sorted(d.with_suffix(".jpg") for d in details) == sorted(files)
    latest = json.loads(pathlib.Path(paths[-1]).with_suffix(".json").read_text())
    assert latest["fault"] == "black" and "dark_fraction" in latest["measurements"]
    import cv2

    assert cv2.imread(paths[-1]).shape == (360, 640, 3)  # a real, readable JPEG
    # a restarted daemon sees the files already there and keeps within the bound
    store2 = SnapshotStore(tmp_path / "snaps", max_bytes=60_000)
    assert store2.total_bytes == on_disk


def test_unwritable_snapshot_dir_does_not_lose_the_alert(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = SnapshotStore(blocker / "snaps", max_bytes=10_000)
    settings = stream_settings(checks={"black": {"raise_after_s": 0.0}})
    analyzer = StreamAnalyzer(StreamSpec("cam", "x.mp4", settings), snapshots=store)
    ev = analyzer.process(Frame.from_image(np.zeros((90, 160, 3), np.uint8), stream="cam"))
    assert ev[0].event == "raise" and ev[0].snapshot is None and store.write_errors == 1
