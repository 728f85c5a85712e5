"""Detection quality end to end: analyze -> eval on labelled clips.

- a generated set (faults at weak and strong settings, plus hard negatives: night, static
  CCTV with a clock, fades, soft focus, snow, cuts) that the detectors were not tuned on;
- the shared dev set, when ../shared is beside the checkout, against the project's targets;
- our `vqmon eval` numbers against the shared grading tool's on the same alerts.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess

import pytest

from monitor.analyze import analyze_files
from monitor.config import parse_config
from monitor.demo.labelled_set import fault_cases, negative_cases, write_set
from monitor.evaluate import load_labels, score
from tests.conftest import ROOT

DEVSET = ROOT.parent / "shared" / "devset"
SCORER = ROOT.parent / "shared" / "tools" / "score_alerts.py"


@pytest.fixture(scope="session")
def generated_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labelled")
    # Small and short so the suite stays fast; the full sweep is benchmarks/robustness.py.
    small = {"width": 480, "height": 270, "fps": 15}
    cases = [dataclasses.replace(c, **small, duration_s=16.0) for c in fault_cases(6.0, 11.0)]
    cases += [dataclasses.replace(c, **small, duration_s=20.0) for c in negative_cases()]
    return folder, write_set(folder, cases)


def run_eval(folder, labels_path, profile=None):
    clips = load_labels(labels_path)
    result = analyze_files([str(folder / c.file) for c in clips], parse_config({}), profile=profile)
    assert result.errors == []
    events = [e.to_dict() for e in result.events]
    return score(clips, events), events


def test_generated_faults_detected_and_hard_negatives_quiet(generated_set):
    folder, labels = generated_set
    report, _ = run_eval(folder, labels)
    o = report.overall()
    assert o["recall"] >= 0.9, report.table()
    assert o["false_alarms"] == 0, report.table()
    assert o["f1"] >= 0.9, report.table()


@pytest.mark.skipif(not DEVSET.is_dir(), reason="../shared/devset not present beside this checkout")
def test_devset_meets_targets():
    """The dev set is an untouched report (nothing is tuned on it). Its 8 clean minutes are too
    short to gate false alarms per hour (one alarm reads 7.3 per hour); `make soak` gates those
    on an hour of clean footage."""
    report, _ = run_eval(DEVSET, DEVSET / "labels.json")
    o = report.overall()
    assert o["f1"] >= 0.90, report.table()
    assert o["false_alarms"] <= 1, report.table()
    assert o["latency_median"] <= 2.0, report.table()


@pytest.mark.skipif(not (DEVSET.is_dir() and SCORER.exists()), reason="../shared not present beside this checkout")
def test_eval_agrees_with_the_shared_grader(tmp_path):
    report, events = run_eval(DEVSET, DEVSET / "labels.json")
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text("".join(json.dumps(e) + "\n" for e in events))
    out = subprocess.run(
        ["python3", str(SCORER), "--labels", str(DEVSET / "labels.json"), str(alerts), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(out.stdout)
    ours = report.as_dict()
    for key in ("f1", "precision", "recall", "false_alarms", "latency_median", "clean_hours", "fa_per_clean_hour"):
        assert ours["overall"][key] == pytest.approx(theirs["overall"][key]), key
    for fault, mine in ours["per_fault"].items():
        for key in ("tp", "raises", "detected", "false_alarms", "confused", "duplicates", "latency_median"):
            assert mine[key] == pytest.approx(theirs["per_fault"][fault][key]), (fault, key)


def test_eval_cli(generated_set):
    folder, labels = generated_set
    r = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "vqmon"), "eval", "--labels", str(labels), str(folder), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["schema"] == "vqmon.score/1" and d["overall"]["segments"] == len(fault_cases())
    r = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "vqmon"), "eval", "--labels", str(folder / "nope.json"), str(folder)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "labels file not found" in r.stderr
