"""`make soak`: an hour (VQMON_SOAK_HOURS) of generated clean, varied footage on validation
footage (CCTV, night/IR, rain, broadcast with cuts, fades, flashes, slates, camera sequencers)
through the analyze pipeline. Every raise is a false alarm; the target is none."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from monitor.analyze import analyze_files
from monitor.config import parse_config
from monitor.demo.corpus import write_corpus
from monitor.evaluate import load_labels
from tests.conftest import ROOT

pytestmark = pytest.mark.soak


def test_clean_soak_raises_no_alert():
    hours = float(os.environ.get("VQMON_SOAK_HOURS", "1"))
    labels = write_corpus(ROOT / "state" / "corpus", "soak", soak_hours=hours)
    clips = load_labels(labels)
    assert all(not c.segments for c in clips)
    result = analyze_files([str(labels.parent / c.file) for c in clips], parse_config({}))
    assert result.errors == []
    raises = [e for e in result.events if e.event == "raise"]
    clean_h = sum(c.duration for c in clips) / 3600
    by_fault = Counter(e.fault for e in raises)
    print(
        f"\nsoak: {len(clips)} clips, {clean_h:.2f} clean hours, {len(raises)} false alarms "
        f"= {len(raises) / clean_h:.1f} per clean hour {dict(by_fault)}"
    )
    for e in raises:
        print(f"  {e.stream} t={e.stream_time:.1f} {e.fault} {e.measurements}")
    assert not raises
