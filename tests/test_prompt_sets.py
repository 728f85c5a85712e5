"""Prompt sets as data: the YAML format, CLIP's tokenizer without torch, the exported text encoder,
`vqmon prompts embed` and `scoring.prompts` (re-embedding on a box without torch)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from monitor.scoring.clip_iqa import ClipIqa, ModelError, SessionOptions
from monitor.scoring.prompts import PromptError, PromptSet, load_prompt_set
from tests.conftest import ROOT

VQMON = str(ROOT / ".venv" / "bin" / "vqmon")

SITE = """\
schema: vqmon.prompts/1
name: site
aspects:
  quality:
    - ["A clear CCTV picture.", "A degraded CCTV picture."]
    - ["Good photo.", "Bad photo."]
  lens:
    - ["A clean lens.", "A dirty, smeared lens."]
"""


def _vqmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VQMON, *args], capture_output=True, text=True)


def test_bundled_set_and_configs_copy():
    bundled = load_prompt_set("default")
    shipped = load_prompt_set(ROOT / "configs" / "prompts" / "clip_iqa.yaml")
    assert shipped.aspects == bundled.aspects and shipped.digest == bundled.digest
    assert next(iter(bundled.aspects)) == "quality" and len(bundled.aspects["quality"]) >= 3
    assert {"sharp", "clean", "bright", "colorful", "artifact_free"} <= set(bundled.aspects)
    # one row per pair, aspect by aspect: the order the embeddings are stored in
    assert len(bundled.pairs) == len(bundled.pair_aspects) == sum(len(p) for p in bundled.aspects.values())
    # the digest follows the wording, not the file's comments or name
    renamed = PromptSet("other", bundled.aspects, "x")
    assert renamed.digest == bundled.digest
    reworded = PromptSet("default", {**bundled.aspects, "quality": [("Good.", "Bad.")]})
    assert reworded.digest != bundled.digest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\naspects:\n  sharp:\n    - [A, b]\n", "needs the overall aspect 'quality'"),
        ("name: a\naspects:\n  quality:\n    - [A, b, c]\n", "aspects.quality.0: each pair is [positive prompt"),
        ("name: a\naspects:\n  quality: []\n", "quality: needs at least one"),
        ("name: a\naspects:\n  Quality!:\n    - [A, b]\n", "aspects.Quality!"),
        ("schema: vqmon.prompts/9\nname: a\naspects:\n  quality:\n    - [A, b]\n", "schema: must be vqmon.prompts/1"),
        ("name: a\naspects:\n  quality:\n    - [A smooth, noise-free image., b]\n", "each pair is"),
        ("name: a\naspects: [\n", "not valid YAML at line"),
    ],
)
def test_bad_prompt_files_are_one_line_errors(tmp_path, text, message):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(PromptError, match="^" + str(f)) as err:
        load_prompt_set(f)
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(PromptError, match="prompt set not found"):
        load_prompt_set(tmp_path / "none.yaml")
    with pytest.raises(PromptError, match="no such prompt set"):
        load_prompt_set("nonesuch")


def test_tokenizer_matches_open_clip():
    open_clip = pytest.importorskip("open_clip")
    from open_clip.tokenizer import default_bpe

    from monitor.scoring.tokenizer import ClipTokenizer

    ours, theirs = ClipTokenizer(default_bpe()), open_clip.get_tokenizer("ViT-B-32")
    texts = [
        "Good photo.",
        "A smooth, noise-free image.",
        "The camera\u2019s lens is   dirty &amp; wet",  # curly quote, HTML entity, runs of spaces
        "\u00c9LAN na\u00efve caf\u00e9 123 4.5 \U0001f600",
        "don't WON'T it'll",
        "",
        "word " * 100,  # longer than the context: cut, still ending with the end token
    ]
    assert np.array_equal(ours(texts), theirs(texts).numpy())


def test_prompts_embed_on_a_box_without_torch(exported, torch_model, tmp_path):
    """`vqmon prompts embed` writes the same embeddings torch gives, and the scorer uses them."""
    model, _, tokenizer = torch_model
    torch = pytest.importorskip("torch")
    d = tmp_path / "model"
    shutil.copytree(exported, d)
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    r = _vqmon("prompts", "embed", "--model", str(d), "--prompts", str(site))
    assert r.returncode == 0, r.stderr
    assert "prompt set 'site' embedded, 3 pairs: quality (2), lens (1)" in r.stdout
    m = json.loads((d / "manifest.json").read_text())
    assert m["prompts"]["name"] == "site" and m["prompts"]["source"] == str(site)
    prompts = load_prompt_set(site)
    assert m["prompts"]["digest"] == prompts.digest
    stored = np.load(d / "text_embeddings.npy")
    with torch.no_grad():
        ref = model.encode_text(tokenizer([t for p in prompts.pairs for t in p])).float().numpy()
    ref = (ref / np.linalg.norm(ref, axis=1, keepdims=True)).reshape(3, 2, -1)
    assert stored.shape == ref.shape and (stored * ref).sum(axis=-1).min() >= 0.999
    iqa = ClipIqa(d, SessionOptions(device="cpu"))  # checksums still match: the manifest was updated
    assert iqa.aspects == ["quality", "lens"]
    # the overall score is the mean of its two pairs
    emb = iqa.embed(np.stack([iqa.preprocess(np.full((90, 160, 3), v, np.uint8)) for v in (40, 200)]))
    pairs = iqa.pair_scores(emb)
    assert np.allclose(iqa.aspect_scores(emb)[:, 0], pairs[:, :2].mean(axis=1))
    assert np.allclose(iqa.aspect_scores(emb)[:, 1], pairs[:, 2])


def test_config_prompts_are_embedded_at_start_up(exported, tmp_path, caplog):
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    stored = ClipIqa(exported, SessionOptions(device="cpu"))
    caplog.set_level("INFO")
    live = ClipIqa(exported, SessionOptions(device="cpu", prompts=str(site)))
    assert live.aspects == ["quality", "lens"] and live.text.shape[:2] == (3, 2)
    assert "prompt set 'site' (3 pairs) embedded with the model's text encoder" in caplog.text
    # the same set as the model's: its stored embeddings, nothing embedded
    caplog.clear()
    same = ClipIqa(exported, SessionOptions(device="cpu", prompts="default"))
    assert np.array_equal(same.text, stored.text) and "embedded with" not in caplog.text
    # the embeddings at start-up are the ones `prompts embed` would store
    d = tmp_path / "model"
    shutil.copytree(exported, d)
    assert _vqmon("prompts", "embed", "--model", str(d), "--prompts", str(site)).returncode == 0
    assert np.abs(ClipIqa(d, SessionOptions(device="cpu")).text - live.text).max() < 1e-5


def test_models_without_a_text_encoder(exported, tmp_path):
    """A model exported before prompt sets: one pair per aspect under prompt_pairs, no text encoder."""
    d = tmp_path / "legacy"
    shutil.copytree(exported, d)
    m = json.loads((d / "manifest.json").read_text())
    text = np.load(d / "text_embeddings.npy")
    rows = {}
    for i, aspect in enumerate(PromptSet.from_manifest(m).pair_aspects):
        rows.setdefault(aspect, i)  # each aspect's first pair
    np.save(d / "text_embeddings.npy", text[list(rows.values())])
    from monitor.scoring.model_dir import sha256

    legacy = {a: m["prompts"]["aspects"][a][0] for a in rows}
    for key in ("prompts", "text_encoder"):
        del m[key]
    m["prompt_pairs"] = legacy
    for name in ("text_encoder.onnx", "bpe_vocab.txt.gz"):
        del m["files"][name]
        (d / name).unlink()
    m["files"]["text_embeddings.npy"]["sha256"] = sha256(d / "text_embeddings.npy")
    (d / "manifest.json").write_text(json.dumps(m))
    iqa = ClipIqa(d, SessionOptions(device="cpu"))
    assert iqa.aspects == list(legacy) and iqa.prompts.source == "manifest:prompt_pairs"
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    with pytest.raises(ModelError, match="exported without a text encoder"):
        ClipIqa(d, SessionOptions(device="cpu", prompts=str(site)))
    r = _vqmon("prompts", "embed", "--model", str(d), "--prompts", str(site))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "without a text encoder" in r.stderr
    # check-config says so before the daemon starts, and names a broken prompt file
    cfg = tmp_path / "c.yaml"
    for prompts, expect in ((site, "has no text encoder to embed"), (tmp_path / "none.yaml", "prompt set not found")):
        cfg.write_text(f"scoring: {{model_dir: {d}, prompts: {prompts}}}\nstreams: [{{name: a, url: a.mp4}}]\n")
        r = _vqmon("check-config", str(cfg))
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "scoring.prompts:" in r.stderr and expect in r.stderr
    # a wrong-sized embeddings file is a one-line error, not an index error later
    np.save(d / "text_embeddings.npy", text)
    m["files"]["text_embeddings.npy"]["sha256"] = sha256(d / "text_embeddings.npy")
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelError, match="does not match the manifest's prompt set"):
        ClipIqa(d, SessionOptions(device="cpu"))
