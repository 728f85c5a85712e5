"""BRISQUE and NIQE: real scores that order pictures by damage; the optional low_quality fault."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from monitor.checks import FrameView, all_checks
from monitor.demo import SceneRenderer
from monitor.frames import Frame
from monitor.iqa.brisque import Brisque, available
from monitor.iqa.niqe import niqe
from monitor.iqa.scorer import IqaScorer

BRISQUE_MISSING = "BRISQUE model files missing: `make test` installs Debian's opencv-data"


def photo(w=640, h=360):
    return SceneRenderer(w, h, 25, seed=5).render(2.0)


def damaged(img):
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    noisy = np.clip(gray + np.random.default_rng(1).normal(0, 25, gray.shape), 0, 255).astype(np.uint8)
    _, buf = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 4])
    return gray, {"blur": cv2.GaussianBlur(gray, (0, 0), 4), "noise": noisy, "jpeg": cv2.imdecode(buf, 0)}


def test_niqe_ranks_damaged_pictures_worse():
    gray, bad = damaged(photo())
    clean = niqe(gray)
    assert np.isfinite(clean)
    for kind, img in bad.items():
        assert niqe(img) > clean + 1.0, kind
    with pytest.raises(ValueError, match="at least 192x192"):
        niqe(gray[:100, :100])


def test_brisque_ranks_damaged_pictures_worse():
    if not available():
        pytest.fail(BRISQUE_MISSING)
    b = Brisque()
    gray, bad = damaged(photo())
    clean = b.score(gray)
    for kind, img in bad.items():
        assert b.score(img) > clean + 5.0, kind


def test_missing_brisque_model_is_one_warning_and_niqe_still_works(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    scorer = IqaScorer(brisque_model_dir=str(tmp_path))
    assert scorer.brisque is None
    assert "BRISQUE scores off" in caplog.text and "opencv-data" in caplog.text
    scores = scorer.score(cv2.cvtColor(photo(), cv2.COLOR_BGR2GRAY))
    assert set(scores) == {"niqe"}


def test_low_quality_check_is_optional_and_fires_on_a_bad_picture():
    if not available():
        pytest.fail(BRISQUE_MISSING)
    cls = all_checks()["low_quality"]
    assert cls.Config().enabled is False
    check = cls(cls.Config(enabled=True, max_brisque=60.0, every_s=1.0))
    good = photo()
    blurred = cv2.GaussianBlur(good, (0, 0), 6)
    r_good = check.evaluate(FrameView(Frame.from_image(good, stream_time=0.0)))
    r_bad = check.evaluate(FrameView(Frame.from_image(blurred, stream_time=1.0)))
    assert not r_good.active and r_bad.active
    assert r_bad.measurements["brisque"] > 60 and "niqe" in r_bad.measurements
    # between computations the last decision holds (the scores are costly)
    assert check.evaluate(FrameView(Frame.from_image(good, stream_time=1.5))) is r_bad


def test_raised_alerts_carry_quality_scores(clips):
    from monitor.analyze import analyze_files
    from monitor.config import parse_config

    result = analyze_files([str(clips["black"])], parse_config({}))
    raise_ev = next(e for e in result.events if e.event == "raise")
    assert "niqe" in raise_ev.measurements["iqa"] or "brisque" in raise_ev.measurements["iqa"]


def test_periodic_quality_report(clips):
    from monitor.analyze import analyze_files
    from monitor.config import parse_config

    cfg = parse_config({"iqa": {"report_every_s": 2.0}})
    result = analyze_files([str(clips["clean"])], cfg)
    report = result.stats["clean"]["quality"]["iqa"]
    assert report["stream_time"] >= 2.0 and "brisque" in report  # first one after one interval


def test_each_pipeline_scores_with_its_own_quality_settings(clips):
    """The scorer is made from a pipeline's config and handed to its streams and checks: a
    second pipeline in the same process (analyze beside a daemon, two test runs) with other
    settings does not change the first one's scores."""
    if not available():
        pytest.fail(BRISQUE_MISSING)
    from monitor.config import IqaConfig
    from monitor.runtime import Pipeline, StreamSpec
    from monitor.sinks import Fanout
    from tests.conftest import stream_settings

    settings = stream_settings(checks={"low_quality": {"enabled": True}})
    no_brisque = Pipeline([StreamSpec("a", str(clips["black"]), settings)], Fanout([]), iqa=IqaConfig(brisque=False))
    default = Pipeline([StreamSpec("b", str(clips["black"]), settings)], Fanout([]), iqa=IqaConfig())
    luma = cv2.cvtColor(photo(), cv2.COLOR_BGR2GRAY)
    assert set(no_brisque.analyzers["a"].iqa_scorer.score(luma)) == {"niqe"}
    assert set(default.analyzers["b"].iqa_scorer.score(luma)) == {"brisque", "niqe"}
    # ...and the low_quality check of the first stream judges by the first pipeline's scores
    (check,) = [c for c in no_brisque.analyzers["a"].checks if c.name == "low_quality"]
    result = check.evaluate(FrameView(Frame.from_image(cv2.GaussianBlur(photo(), (0, 0), 6), stream_time=0.0)))
    assert "brisque" not in result.measurements and not result.active
