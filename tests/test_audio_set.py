"""The labelled audio clip generator: its labels say what its sound does, and train and val
share neither seeds nor voices."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from monitor.checks.clipping import clipped_runs
from monitor.demo.audio_set import FAULTS, NEGATIVES, RATE, SPLITS, VOICES, plan, render


def by_style(split: str) -> dict:
    return {s.style: s for s in plan(split, 1)}


def test_every_style_in_both_splits_and_nothing_shared():
    train, val = plan("train", 2), plan("val", 2)
    assert {s.style for s in train} == set(FAULTS + NEGATIVES) == {s.style for s in val}
    assert not {s.seed for s in train} & {s.seed for s in val}
    assert not set(VOICES["train"]["tones"]) & set(VOICES["val"]["tones"])
    assert set(SPLITS) == {"train", "val"}
    assert all(s.faults == [] for s in train if s.style in NEGATIVES)


def level(x: np.ndarray, a: float, b: float) -> tuple[float, float]:
    """(loudness LUFS, sample peak dBFS) of x between a and b seconds."""
    part = x[:, int(a * RATE) : int(b * RATE)]
    with np.errstate(divide="ignore"):
        return pyloudnorm.Meter(RATE).integrated_loudness(part.T.astype(np.float64)), 20 * np.log10(np.abs(part).max())


@pytest.mark.parametrize("split", ["train", "val"])
def test_the_labels_say_what_the_sound_does(split):
    styles = by_style(split)
    clean = level(render(styles["quiet_passage"]).samples, 0, 8)
    assert -26.0 < clean[0] < -20.0 and clean[1] < -1.0  # programme at broadcast loudness, legal peaks
    s = styles["silence"]
    assert level(render(s).samples, s.start + 0.1, s.end - 0.1)[1] < -60.0  # under silencedetect's level
    s = styles["clipping"]
    x = render(s).samples[:, int(s.start * RATE) : int(s.end * RATE)]
    # Really driven into full scale: flat tops (runs of 4 samples at 1.0) several times a second.
    assert clipped_runs(x, 0.999, 4).sum() / (s.end - s.start) >= 3
    s = styles["loudness_up"]
    assert level(render(s).samples, s.start + 1, s.end - 1)[0] > -23.0 + 6.0
    s = styles["loudness_down"]
    assert level(render(s).samples, s.start + 1, s.end - 1)[0] < -23.0 - 6.0
    s = styles["audio_missing"]
    assert render(s).gaps == ((s.start, s.end),) and s.faults[0]["fault"] == "audio_missing"
