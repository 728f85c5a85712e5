"""The labelled clip generator: train and val never share footage, every fault comes in several
style families, clean clips are as many as faulty ones, and a generated clip decodes with its
fault where the labels say."""

from __future__ import annotations

import dataclasses
import json

import av
import numpy as np
import pytest

from monitor.demo import FAULT_KINDS
from monitor.demo.corpus import plan, write_corpus
from monitor.demo.footage import CATALOGUE, available
from monitor.demo.styles import FAMILIES


def test_catalogue_splits_are_disjoint():
    names = [f.name for f in CATALOGUE]
    assert len(names) == len(set(names))
    by_split = {s: {f.name for f in CATALOGUE if f.split == s} for s in ("train", "val")}
    assert by_split["train"] and by_split["val"]
    assert not by_split["train"] & by_split["val"]
    files = {s: {(f.where, f.file) for f in CATALOGUE if f.split == s} for s in ("train", "val")}
    assert not files["train"] & files["val"], "the same file under two names in both splits"


def test_a_fresh_seed_draws_other_clips_and_val_holds_ten_a_fault():
    """`vqmon corpus --seed` draws a fresh held-out set: other footage mixes and styles from the
    same split's footage. Val holds 10 clips a fault, so one miss moves a fault's F1 by a little."""
    from monitor.demo.corpus import PER_FAULT, SEEDS

    assert PER_FAULT["val"] == 10
    val = plan("val", PER_FAULT["val"], SEEDS["val"])
    assert sum(s.fault is not None for s in val) == 10 * len(FAULT_KINDS) == sum(s.fault is None for s in val)
    old = plan("val", PER_FAULT["val"], 2001)
    assert [s.name for s in old] == [s.name for s in val]
    assert sum(a.footage != b.footage for a, b in zip(old, val, strict=True)) >= 0.8 * len(val)


def test_planned_train_and_val_clips_share_no_footage():
    train = plan("train", 2, 1000)
    val = plan("val", 2, 2000)
    used_train = {f for s in train for f in s.footage}
    used_val = {f for s in val for f in s.footage}
    assert used_train and used_val
    assert not used_train & used_val
    soak = plan("soak", 0, 3000, soak_hours=0.05)
    assert {f for s in soak for f in s.footage} <= {f.name for f in available("val")}


def test_every_fault_has_four_or_more_families_and_negatives_match_in_number():
    assert set(FAMILIES) == set(FAULT_KINDS)
    assert all(len(v) >= 4 for v in FAMILIES.values())
    specs = plan("train", 5, 1000)
    faulty = [s for s in specs if s.fault is not None]
    clean = [s for s in specs if s.fault is None]
    assert len(faulty) == len(clean) == 5 * len(FAULT_KINDS)
    for fault in FAULT_KINDS:
        fams = {s.fault.family for s in faulty if s.fault.fault == fault}
        assert len(fams) >= 4, (fault, fams)
    assert len({(s.width, s.height) for s in specs}) >= 3
    assert len({s.fps for s in specs}) >= 3
    assert {s.genre for s in specs} == {"cctv", "broadcast", "general"}
    for s in faulty:  # a clean lead-in and tail around each fault
        assert s.fault.start >= 8.0 and s.duration - s.fault.end >= 5.0


def test_generated_clip_matches_its_labels(tmp_path):
    spec = next(s for s in plan("val", 1, 2000) if s.fault is not None and s.fault.fault == "black")
    small = dataclasses.replace(spec, width=320, height=180, fps=10, duration=spec.fault.end + 2.0)
    from monitor.demo.corpus import _label, encode

    path = tmp_path / f"{small.name}.mp4"
    encode(small, path)
    label = _label(small)
    assert label["faults"] == [
        {"fault": "black", "start": round(small.fault.start, 2), "end": round(small.fault.end, 2)}
    ]
    lumas = {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            lumas[i / small.fps] = float(np.asarray(f.to_ndarray(format="gray")).mean())
    inside = [v for t, v in lumas.items() if small.fault.start + small.fault.ramp_s + 0.2 <= t < small.fault.end]
    before = [v for t, v in lumas.items() if t < small.fault.start - 0.5]
    assert inside and before
    assert max(inside) < 30


def test_write_corpus_rejects_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="unknown split"):
        write_corpus(tmp_path, "test")


def test_labels_record_footage(tmp_path, monkeypatch):
    import monitor.demo.corpus as corpus

    monkeypatch.setattr(corpus, "encode", lambda spec, path: path.write_bytes(b""))
    labels = write_corpus(tmp_path, "train", per_fault=1, jobs=1)
    data = json.loads(labels.read_text())
    assert data["split"] == "train"
    assert all(c["footage"] for c in data["clips"])
    train_names = {f.name for f in CATALOGUE if f.split == "train"}
    assert all(set(c["footage"]) <= train_names for c in data["clips"])


def test_a_cut_never_goes_to_the_same_scene_at_another_brightness_or_focus():
    """That would be an exposure or focus fault inside a clip labelled clean."""
    specs = plan("train", 10, 1000) + plan("soak", 0, 3000, soak_hours=0.3)
    pairs = [(a, b) for s in specs for a, b in zip(s.shots, s.shots[1:], strict=False)]
    assert any(a.footage == b.footage for a, b in pairs)  # the case exists in the plan
    assert all((a.gain, a.soft) == (b.gain, b.soft) for a, b in pairs if a.footage == b.footage)


def test_a_changed_shot_regenerates_its_clip():
    from monitor.demo.corpus import _spec_hash

    spec = plan("train", 1, 1000)[0]
    darker = dataclasses.replace(spec, shots=(dataclasses.replace(spec.shots[0], gain=0.3), *spec.shots[1:]))
    assert _spec_hash(darker) != _spec_hash(spec)


def test_a_dark_scene_keeps_highlights_one_can_see():
    """A clean night or film scene must not be a black picture by blackdetect's definition."""
    import cv2

    from monitor.demo.corpus import render

    spec = next(s for s in plan("train", 10, 1000) if s.fault is None and any(x.gain < 1 for x in s.shots))
    k = next(i for i, x in enumerate(spec.shots) if x.gain < 1)
    # The darkest case: the darkest footage (a dusk photo) at the lowest gain drawn (0.15) after an
    # IR switch (x0.6), for a second.
    shot = dataclasses.replace(spec.shots[k], start=0.0, gain=0.09, footage="rocket")
    short = dataclasses.replace(spec, shots=(shot,), events=(), overlays=(), duration=1.0, fault=None)
    for img in render(short):
        # Lit well above blackdetect's 10 % over more than the black check's lit fraction.
        assert np.percentile(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), 99.0) >= 40


@pytest.mark.parametrize(("family", "params"), [("gain", {"gain": 0.1}), ("gamma", {"gamma": 4.0})])
def test_an_underexposed_picture_is_not_black(family, params):
    """The deepest underexposure drawn, on the darkest footage, still leaves part of the picture
    above blackdetect's 10 %: below that the picture is black by the black check's definition,
    and no check could honour a label saying underexposed (a cat photo at gain x0.12 was)."""
    import cv2

    from monitor.demo.corpus import render
    from monitor.demo.styles import FaultStyle

    spec = next(s for s in plan("train", 10, 1000) if s.fault is not None and s.fault.fault == "underexposed")
    shot = dataclasses.replace(spec.shots[0], start=0.0, footage="rocket")
    fault = FaultStyle("underexposed", family, 0.0, 1.0, params=params)
    short = dataclasses.replace(spec, shots=(shot,), events=(), overlays=(), duration=1.0, fault=fault)
    frames = list(render(short))
    assert frames
    for img in frames:
        luma = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        assert np.count_nonzero(luma >= 26) / luma.size >= 0.025
        assert luma.mean() < 60  # and still underexposed: the fault was eased, not undone


def test_a_lowlight_underexposure_keeps_the_sensors_noise_and_clips_its_shadows_to_black():
    """Too little light for the sensor: the scene darkens before the sensor's noise is added, so
    the noise stays at the camera's level while the picture falls, and the black level clips the
    shadows to black, keeping the order of what is left (the first renderer reflected the
    shadows about the black level instead: dark parts came back lighter than their neighbours)."""
    from monitor.demo.styles import FaultRenderer, FaultStyle

    w, h = 256, 64
    ramp = np.repeat(np.repeat(np.arange(w, dtype=np.uint8)[None, :, None], h, 0), 3, 2)  # 0..255 left to right
    style = FaultStyle("underexposed", "lowlight", 0.0, 10.0, params={"gain": 0.2, "noise": 4.0, "crush": 10.0})
    rng = np.random.default_rng(0)

    def add_noise(img: np.ndarray, sigma: float) -> np.ndarray:
        return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)

    out = FaultRenderer(style, w, h, rng).apply(ramp, ramp, 1.0, add_noise, 1.0)
    columns = out[..., 1].astype(np.float32).mean(axis=0)
    expected = np.clip(0.2 * np.arange(w) - 10.0, 0, 255)
    lit = expected > 8  # where half-clipped noise no longer lifts the mean
    assert np.abs(columns[lit] - expected[lit]).max() < 2.0
    assert columns[:40].mean() < 2.0  # 0.2 x (0..39) - 10 is under black: clipped, not reflected
    assert float(np.std(out[:, 150:160, 1].astype(np.float32) - expected[150:160])) > 3.0  # the noise stays
