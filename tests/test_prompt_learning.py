"""Learned prompts (seed 002) on a random-weight model: the text encoder with context vectors,
the ranking losses, and `vqmon prompts learn` end to end. Random weights rank nothing the way
people do; what is checked is that the method works: the loss falls and the learned prompts
order held-out ladders of graded degradations better than the fixed prompts did."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from monitor.scoring.clip_iqa import ClipIqa, SessionOptions
from monitor.scoring.prompts import OVERALL

torch = pytest.importorskip("torch", reason="the export extra is not installed (make test installs it)")
pytest.importorskip("open_clip")

from exporters.prompt_learning import LearnSettings, PromptLearner, learn_prompts  # noqa: E402


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """The corpus's train-split photographs (the ladder benchmark reports on the val split)."""
    from monitor.iqa.ladder import photographs

    d = tmp_path_factory.mktemp("pictures")
    for name, img in photographs("train").items():
        cv2.imwrite(str(d / f"{name}.png"), img)
    return d


def test_the_learner_without_context_is_the_text_encoder(torch_model):
    model, _, tokenizer = torch_model
    pairs = [("Good photo.", "Bad photo."), ("A sharp, clean picture.", "A blurry picture.")]
    for position in ("prepend", "append"):
        learner = PromptLearner(torch, model, tokenizer, pairs, LearnSettings(context=3, position=position), "cpu")
        with torch.no_grad():
            plain = learner.encode(with_context=False)
            ref = model.encode_text(tokenizer([t for p in pairs for t in p])).float()
            ref = ref / ref.norm(dim=-1, keepdim=True)
            spliced = learner.encode()
        assert float((plain * ref).sum(dim=-1).min()) >= 0.9999
        # the context changes every prompt, and differently where it goes
        assert float((spliced * ref).sum(dim=-1).max()) < 0.9999
        if position == "prepend":
            prepended = spliced
    assert not torch.allclose(prepended, spliced)


def test_prompts_learn_end_to_end(exported, pictures, tmp_path):
    out = tmp_path / "learned"
    settings = LearnSettings(steps=150, seed=1)
    result = learn_prompts(exported, pictures, out, random_init=True, settings=settings)
    curve = np.array(result.loss_curve)
    assert curve[-20:].mean() < 0.9 * curve[:20].mean(), (curve[:5], curve[-5:])  # the ranking loss falls
    # the learned prompts order held-out ladders better than the fixed ones did before training
    assert result.srcc_learned > result.srcc_fixed + 0.1, (result.srcc_fixed, result.srcc_learned)
    assert result.held_out_images >= 2
    assert result.train_images + result.held_out_images == len(list(pictures.glob("*.png")))
    m = json.loads((out / "manifest.json").read_text())
    learned = m["learned"]
    assert m["prompts"]["source"] == "learned:4xprepend" and learned["aspects"] == [OVERALL]
    assert learned["settings"]["steps"] == 150 and len(learned["loss_curve"]) >= 100
    assert learned["held_out_srcc"] == {"fixed": round(result.srcc_fixed, 4), "learned": round(result.srcc_learned, 4)}
    assert len(learned["context_vectors"]) == 4 and len(learned["held_out_sources"]) == result.held_out_images
    # the daemon loads it with no torch involved; only the overall pairs changed
    base, new = ClipIqa(exported, SessionOptions(device="cpu")), ClipIqa(out, SessionOptions(device="cpu"))
    rows = np.array([a == OVERALL for a in new.prompts.pair_aspects])
    cos = (base.text * new.text).sum(axis=-1)
    assert np.all(cos[~rows] > 0.99999) and np.all(cos[rows] < 0.9999)
    assert new.prompts.digest == base.prompts.digest  # the same words, so scoring.prompts: default keeps them
    assert not (exported / "manifest.json").read_text().count('"learned"')  # the source directory is untouched
    # `prompts embed` of plain words replaces them, and says what it replaced
    import subprocess

    from tests.conftest import ROOT

    r = subprocess.run(
        [str(ROOT / ".venv/bin/vqmon"), "prompts", "embed", "--model", str(out), "--prompts", "default"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "replaces the learned prompts (learned:4xprepend)" in r.stdout, r.stderr
    assert "learned" not in json.loads((out / "manifest.json").read_text())


def test_prompts_learn_refuses_what_it_cannot_do(exported, pictures, tmp_path):
    from monitor.errors import VqmonError

    with pytest.raises(VqmonError, match="give the same weights"):
        learn_prompts(exported, pictures, tmp_path / "x", weights=str(tmp_path / "w.pt"))
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(next(pictures.iterdir()), one)
    with pytest.raises(VqmonError, match="at least two pictures or clips"):
        learn_prompts(exported, one, tmp_path / "x", random_init=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VqmonError, match="no pictures"):
        learn_prompts(exported, empty, tmp_path / "y", random_init=True)
    # other weights than the directory's: the learned text would not live in its image space
    other = tmp_path / "other"
    from exporters.clip_export import export_clip

    export_clip(other, arch="vqmon-tiny", random_init=True, seed=5)
    m = json.loads((other / "manifest.json").read_text())
    m["seed"] = 0  # claims the weights of seed 0, holds seed 5's
    (other / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(VqmonError, match="do not match"):
        learn_prompts(other, pictures, tmp_path / "z", random_init=True)
