"""CLIP-IQA export and scoring with real parts: an open_clip model with random weights (a small
architecture, so CI stays fast), exported by our exporter, run by a real ONNX Runtime session."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from monitor.scoring.clip_iqa import ClipIqa, ModelError, SessionOptions, choose_providers
from tests.conftest import CLIP_ARCH as ARCH
from tests.conftest import ROOT

torch = pytest.importorskip("torch", reason="the export extra is not installed (make test installs it)")
open_clip = pytest.importorskip("open_clip")

from exporters.clip_export import export_clip, load_model  # noqa: E402


def frames(n=4, w=320, h=180):
    from monitor.demo import SceneRenderer

    r = SceneRenderer(w, h, 25, seed=2)
    return [r.render(1.0 + i) for i in range(n)]


def test_manifest_and_files(exported):
    m = json.loads((exported / "manifest.json").read_text())
    assert m["schema"] == "vqmon.clip-model/1" and m["arch"] == ARCH and m["random_init"] is True
    assert m["weights"]["source"] == "random-init" and m["opset"] >= 17
    assert set(m["files"]) == {
        "image_encoder.onnx",
        "image_encoder.int8.onnx",
        "image_encoder.fp16.onnx",
        "text_embeddings.npy",
        "text_encoder.onnx",
        "bpe_vocab.txt.gz",
        "image_encoder.pt2",
    }
    assert m["torch"]["version"] == torch.__version__ and m["torch"]["parity_cosine"] >= 0.999
    assert m["text_encoder"] == {"context_length": 77, "tokenizer": "clip-bpe"} and m["parity_cosine"]["text"] >= 0.999
    # the exporter's own check against torch, kept for the operator
    assert m["parity_cosine"]["fp32"] >= 0.999 and m["parity_cosine"]["int8"] >= 0.99
    assert m["parity_cosine"]["fp16"] >= 0.999 and m["fp16"] is True
    # the bundled prompt set: several pairs per aspect, the overall one first
    prompts = m["prompts"]
    assert prompts["name"] == "default" and prompts["source"] == "bundled:default" and len(prompts["digest"]) == 16
    assert prompts["aspects"]["quality"][0] == ["Good photo.", "Bad photo."] and len(prompts["aspects"]["quality"]) >= 3
    assert m["logit_scale"] == 100.0
    assert m["int8"] == {"method": "dynamic"}
    assert {"torch", "open_clip", "onnx"} <= set(m["versions"])
    text = np.load(exported / "text_embeddings.npy")
    assert text.shape == (sum(len(p) for p in prompts["aspects"].values()), 2, m["embed_dim"])
    assert np.allclose(np.linalg.norm(text, axis=-1), 1.0, atol=1e-5)


def test_onnx_matches_torch_embeddings_and_scores(exported, torch_model):
    model, _, tokenizer = torch_model
    iqa = ClipIqa(exported, SessionOptions(device="cpu"))
    batch = np.stack([iqa.letterbox(f) for f in frames()])  # the whole frame, as the scorer sees it
    with torch.no_grad():
        ref = model.encode_image(torch.from_numpy(batch)).float()
        ref = (ref / ref.norm(dim=-1, keepdim=True)).numpy()
        pairs = iqa.prompts.pairs
        text = model.encode_text(tokenizer([t for pair in pairs for t in pair])).float()
        text = (text / text.norm(dim=-1, keepdim=True)).numpy().reshape(len(pairs), 2, -1)
    emb = iqa.embed(batch)
    assert (emb * ref).sum(axis=1).min() >= 0.999
    # CLIP-IQA with open_clip's own embeddings: softmax(100 * cos) of each pair's positive
    # prompt, and an aspect the mean of its pairs
    logits = 100.0 * np.einsum("nd,pkd->npk", ref, text)
    per_pair = np.exp(logits[..., 0]) / np.exp(logits).sum(axis=2)
    owners = np.array(iqa.prompts.pair_aspects)
    expected = np.stack([per_pair[:, owners == a].mean(axis=1) for a in iqa.aspects], axis=1)
    got = np.array([[s.aspects[a] for a in iqa.aspects] for s in iqa.score(frames())])
    assert iqa.aspects == list(iqa.prompts.aspects) and iqa.aspects[0] == "quality"
    assert np.abs(got - expected).max() <= 1e-3


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_reduced_precision_embeddings_stay_close(exported, precision):
    import onnx

    fp32 = ClipIqa(exported, SessionOptions(device="cpu"))
    other = ClipIqa(exported, SessionOptions(device="cpu", precision=precision))
    batch = np.stack([fp32.preprocess(f) for f in frames()])
    cos = (fp32.embed(batch) * other.embed(batch)).sum(axis=1)
    assert cos.min() >= 0.99, cos
    graph = onnx.load(str(exported / f"image_encoder.{precision}.onnx")).graph
    if precision == "fp16":  # half weights inside, fp32 at the edges so pre-processing is shared
        halves = [t for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
        assert halves and graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    else:
        assert any(n.op_type in ("DynamicQuantizeLinear", "MatMulInteger") for n in graph.node)


def test_preprocessing_matches_open_clip(exported, torch_model):
    from PIL import Image

    model, preprocess, _ = torch_model
    iqa = ClipIqa(exported, SessionOptions(device="cpu"))
    for img in frames(2, 640, 360) + frames(1, 160, 120):
        ours = iqa.preprocess(img)
        theirs = preprocess(Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))).numpy()
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).mean() < 0.02  # normalised units; resampling kernels differ slightly
        with torch.no_grad():
            a, b = model.encode_image(torch.from_numpy(np.stack([ours, theirs]))).float()
        assert float(torch.nn.functional.cosine_similarity(a, b, dim=0)) >= 0.99


def test_small_frames_and_batching(exported):
    iqa = ClipIqa(exported, SessionOptions(device="cpu"))
    tiny = np.full((48, 64, 3), 90, np.uint8)
    imgs = [*frames(3), tiny]
    batch = iqa.score(imgs, tiles=(2, 1))
    single = [iqa.score([im], tiles=(2, 1))[0] for im in imgs]
    for b, s in zip(batch, single, strict=True):
        assert all(np.isfinite(v) for v in b.aspects.values())
        assert all(abs(b.aspects[k] - s.aspects[k]) < 1e-4 for k in b.aspects)
    # tiles where the picture is big enough for them, mixed in one batch with pictures without
    assert [b.worst_tile is not None for b in batch] == [True, True, True, False]
    assert all(
        abs(b.worst_tile["quality"] - s.worst_tile["quality"]) < 1e-4
        for b, s in zip(batch[:3], single[:3], strict=True)
    )


def test_provider_choice_and_fallback(exported, caplog):
    from monitor.scoring.clip_iqa import DeviceError

    assert choose_providers("auto", ["CPUExecutionProvider"]) == (
        ["CPUExecutionProvider"],
        ["TensorrtExecutionProvider", "CUDAExecutionProvider"],
    )
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("auto", gpu)[0] == gpu
    assert choose_providers("cuda", gpu)[0] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    # a device asked for by name is never quietly replaced by the CPU
    for device in ("cuda", "tensorrt"):
        with pytest.raises(DeviceError, match=f"scoring.device {device}: .* is not in this onnxruntime build"):
            choose_providers(device, ["CUDAExecutionProvider", "CPUExecutionProvider"][device == "cuda" :])
    # TensorRT's options: fp16 engine and a persistent cache by default; int8 only from a QDQ (static) export
    from pathlib import Path

    from monitor.scoring.clip_iqa import _provider_options

    trt, cache = "TensorrtExecutionProvider", Path("/var/cache/trt")
    assert _provider_options(trt, SessionOptions(), cache, None) == {
        "trt_fp16_enable": "True",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": "/var/cache/trt",
    }
    assert _provider_options(trt, SessionOptions(precision="int8"), cache, "static")["trt_int8_enable"] == "True"
    caplog.set_level(logging.INFO)
    assert "trt_int8_enable" not in _provider_options(trt, SessionOptions(precision="int8"), cache, "dynamic")
    assert "dynamic int8 is a CPU format" in caplog.text
    assert _provider_options("CUDAExecutionProvider", SessionOptions(), cache, None) == {}
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():  # this box: a CPU build
        with pytest.raises(DeviceError) as err:
            ClipIqa(exported, SessionOptions(device="cuda"))
        assert "\n" not in str(err.value) and "set device: auto" in str(err.value)
        caplog.clear()
        iqa = ClipIqa(exported, SessionOptions(device="auto"))  # auto falls back, loudly
        assert iqa.provider == "CPUExecutionProvider"
        assert "device auto fell back to CPUExecutionProvider (TensorrtExecutionProvider not in" in caplog.text
        assert any(r.levelname == "WARNING" and "fell back" in r.message for r in caplog.records)


def test_bad_model_directories(exported, tmp_path):
    with pytest.raises(ModelError, match="model directory not found"):
        ClipIqa(tmp_path / "none")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match=r"manifest\.json: missing"):
        ClipIqa(empty)
    bad = tmp_path / "bad"
    shutil.copytree(exported, bad)
    (bad / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        ClipIqa(bad)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(exported, corrupt)
    data = bytearray((corrupt / "image_encoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (corrupt / "image_encoder.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum does not match"):
        ClipIqa(corrupt)
    fp32_only = tmp_path / "fp32-only"
    shutil.copytree(exported, fp32_only)
    m = json.loads((fp32_only / "manifest.json").read_text())
    del m["files"]["image_encoder.fp16.onnx"]
    (fp32_only / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelError, match=r"lists no image_encoder\.fp16\.onnx \(re-export with --fp16\)"):
        ClipIqa(fp32_only, SessionOptions(device="cpu", precision="fp16"))
    r = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "vqmon"),
            "score",
            "--model",
            str(corrupt),
            str(ROOT / "monitor/demo/assets/coffee.jpg"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "checksum" in r.stderr
    # check-config verifies the model directory too, and shows each stream's scoring
    for model, expect_rc in ((corrupt, 2), (exported, 0)):
        cfg = tmp_path / f"{model.name}.yaml"
        cfg.write_text(
            f"scoring: {{model_dir: {model}}}\n"
            "streams:\n  - {name: a, url: a.mp4}\n  - {name: b, url: b.mp4, scoring: {enabled: false}}\n"
        )
        r = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "vqmon"), "check-config", str(cfg)], capture_output=True, text=True
        )
        assert r.returncode == expect_rc, r.stderr
        if expect_rc:
            assert len(r.stderr.strip().splitlines()) == 1 and "scoring.model_dir:" in r.stderr
        else:
            assert "a: a.mp4 profile=default sample=every_n=5 clip=every_s=1.0,min_quality=0.3" in r.stdout
            assert "b: b.mp4 profile=default sample=every_n=5 clip=off" in r.stdout
            assert "random weights (random_init: true)" in r.stdout  # the test model is random


def test_check_config_refuses_a_gpu_device_this_box_lacks(exported, tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this box has onnxruntime-gpu")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"scoring: {{model_dir: {exported}, device: cuda}}\nstreams: [{{name: a, url: a.mp4}}]\n")
    r = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "vqmon"), "check-config", str(cfg)], capture_output=True, text=True
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "scoring.device cuda: CUDAExecutionProvider is not in this onnxruntime build" in r.stderr


def test_score_cli_json(exported):
    r = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "vqmon"), "score", "--json", "--model", str(exported),
         str(ROOT / "monitor/demo/assets/coffee.jpg")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)[0]
    assert 0.0 <= row["quality"] <= 1.0 and {"sharp", "clean", "brisque", "niqe"} <= set(row)
    assert row["random_init"] is True  # said wherever a random model's score is shown
    table = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "vqmon"), "score", "--model", str(exported),
         str(ROOT / "monitor/demo/assets/coffee.jpg")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert table.returncode == 0 and "random weights" in table.stdout.splitlines()[-1], table.stdout


def test_score_cli_samples_a_video_with_the_daemons_sampler(exported, clips):
    r = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "vqmon"), "score", "--json", "--every-s", "1", "--model", str(exported),
         str(clips["clean"])],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    times = [float(row["input"].rsplit("@", 1)[1].rstrip("s")) for row in json.loads(r.stdout)]
    assert times == [0.0, 1.0, 2.0, 3.0]  # the 4 s clip, one sample a second


def _trained_copy(exported, tmp_path):
    """The same files with the manifest claiming real weights, to exercise the alert path."""
    d = tmp_path / "trained"
    shutil.copytree(exported, d)
    m = json.loads((d / "manifest.json").read_text())
    m["random_init"] = False
    (d / "manifest.json").write_text(json.dumps(m))
    return d


def test_live_pipeline_batches_across_streams(exported, clips, caplog):
    from monitor.config import ScoringConfig
    from monitor.runtime import StreamSpec
    from tests.conftest import LiveRun, stream_settings, wait_for

    caplog.set_level(logging.WARNING)
    settings = stream_settings(capture={"loop": True, "realtime": True})
    specs = [StreamSpec(f"cam{i}", str(clips["clean"]), settings) for i in range(3)]
    # per-stream overrides: one stream opts out, one samples more often than the global every_s
    off = stream_settings(capture={"loop": True, "realtime": True}, scoring={"enabled": False})
    specs.append(StreamSpec("unscored", str(clips["clean"]), off))
    specs[0].settings = stream_settings(capture={"loop": True, "realtime": True}, scoring={"every_s": 0.25})
    # 2x1 tiles: the test clip (320x180) is too small for the automatic grid
    scoring = ScoringConfig(model_dir=str(exported), device="cpu", every_s=0.5, max_wait_ms=150, tiles=(2, 1))
    with LiveRun(specs, scoring=scoring) as run:
        scorer = run.pipeline.scorer
        scored = [a for name, a in run.pipeline.analyzers.items() if name != "unscored"]
        assert [a.score_interval.every_s for a in scored] == [0.25, 0.5, 0.5]
        assert wait_for(lambda: scorer.scored >= 12, 60), (scorer.scored, scorer.errors)
        assert wait_for(lambda: all("clip" in a.latest_quality for a in scored), 30)
    assert "clip" not in run.pipeline.analyzers["unscored"].latest_quality
    assert run.pipeline.analyzers["unscored"].score_interval is None
    assert scorer.largest_batch >= 2  # frames of different streams went through one session call
    assert scorer.batches < scorer.scored
    assert "random weights" in caplog.text
    assert run.events("clip_quality") == []  # an untrained model raises nothing
    snap = run.pipeline.stats_snapshot()["cam0"]
    assert 0.0 <= snap["quality"]["clip"]["quality"] <= 1.0 and "scoring_dropped" in snap
    assert snap["quality"]["clip"]["random_init"] is True  # the report (and MQTT's quality topic) says so
    tile = snap["quality"]["clip"]["worst_tile"]
    assert tile["grid"] == [2, 1] and tile["row"] == 0 and tile["col"] in (0, 1) and 0.0 <= tile["quality"] <= 1.0


def test_quality_fault_from_scores(exported, clips, tmp_path):
    from monitor.analyze import analyze_files
    from monitor.config import parse_config

    model = _trained_copy(exported, tmp_path)
    cfg = parse_config({"scoring": {"model_dir": str(model), "device": "cpu", "every_s": 0.5, "min_quality": 1.0,
                                     "raise_after_s": 1.0}})  # fmt: skip
    result = analyze_files([str(clips["clean"])], cfg)
    q = [e for e in result.events if e.fault == "clip_quality"]
    assert q and q[0].event == "raise" and 0.0 <= q[0].measurements["quality"] <= 1.0
    assert {"sharp", "clean", "bright"} <= set(q[0].measurements)
    # the stream's own threshold (here through `defaults`, which profiles and streams layer over) wins
    cfg = parse_config({"scoring": cfg.scoring.model_dump(), "defaults": {"scoring": {"min_quality": 0.0}}})
    assert not [e for e in analyze_files([str(clips["clean"])], cfg).events if e.fault == "clip_quality"]
    # the worst tile alerts only when asked to, and says where it is
    tiled = {**cfg.scoring.model_dump(), "min_quality": 0.0, "tiles": [2, 1]}
    for min_tile, raised in ((None, False), (1.0, True)):
        cfg = parse_config({"scoring": {**tiled, "min_tile_quality": min_tile}})
        q = [e for e in analyze_files([str(clips["clean"])], cfg).events if e.fault == "clip_quality"]
        assert bool(q) == raised
    tile = q[0].measurements["worst_tile"]
    assert tile["grid"] == [2, 1] and (tile["row"], tile["col"]) in ((0, 0), (0, 1)) and tile["quality"] < 1.0


def test_broken_model_leaves_the_checks_running(clips, tmp_path, caplog):
    from monitor.analyze import analyze_files
    from monitor.config import parse_config

    caplog.set_level(logging.ERROR)
    cfg = parse_config({"scoring": {"model_dir": str(tmp_path / "missing")}})
    result = analyze_files([str(clips["black"])], cfg)
    assert "CLIP scoring off" in caplog.text and "model directory not found" in caplog.text
    assert [e.fault for e in result.events if e.event == "raise"] == ["black"]


def test_export_from_a_local_checkpoint(tmp_path):
    from exporters.clip_export import sha256
    from monitor.errors import VqmonError

    _, _, model, _, _ = load_model(ARCH, None, None, True, seed=7)
    ckpt = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), ckpt)
    out = export_clip(tmp_path / "m", arch=ARCH, weights=str(ckpt)).out_dir
    m = json.loads((out / "manifest.json").read_text())
    assert m["random_init"] is False and m["weights"] == {"source": "file:tiny.pt", "sha256": sha256(ckpt)}
    iqa = ClipIqa(out, SessionOptions(device="cpu"))
    batch = np.stack([iqa.preprocess(f) for f in frames(2)])
    with torch.no_grad():
        ref = model.encode_image(torch.from_numpy(batch)).float()
        ref = (ref / ref.norm(dim=-1, keepdim=True)).numpy()
    assert (iqa.embed(batch) * ref).sum(axis=1).min() >= 0.999  # the checkpoint's weights, not random ones
    with pytest.raises(VqmonError, match="weights file not found"):
        export_clip(tmp_path / "x", arch=ARCH, weights=str(tmp_path / "none.pt"))
    with pytest.raises(VqmonError, match="exactly one of"):
        export_clip(tmp_path / "x", arch=ARCH, weights=str(ckpt), random_init=True)
    with pytest.raises(VqmonError, match="unknown open_clip architecture"):
        export_clip(tmp_path / "x", arch="ViT-Q-99", random_init=True)
    with pytest.raises(VqmonError, match="opset 18 or newer"):
        export_clip(tmp_path / "x", arch=ARCH, random_init=True, opset=13)


def test_static_int8_calibrated_on_a_clip(clips, tmp_path):
    out = export_clip(
        tmp_path / "m", arch=ARCH, random_init=True, int8=True, calibration=str(clips["clean"]), calibration_frames=8
    ).out_dir
    m = json.loads((out / "manifest.json").read_text())
    assert m["int8"] == {"method": "static", "calibration": "clean.mp4", "frames": 8}
    fp32 = ClipIqa(out, SessionOptions(device="cpu"))
    int8 = ClipIqa(out, SessionOptions(device="cpu", precision="int8"))
    batch = np.stack([fp32.preprocess(f) for f in frames()])
    assert (fp32.embed(batch) * int8.embed(batch)).sum(axis=1).min() >= 0.99


def test_scorer_bench_reports_every_runtime(tmp_path):
    from benchmarks.bench import CPU_BATCHES, EAGER, ORT_FP32, ORT_INT8, bench_scorer

    result = bench_scorer(str(tmp_path), arch=ARCH, seconds=0.05, rounds=2)
    assert {(r["runtime"], r["batch"]) for r in result.rows} >= {
        (name, b) for name in (EAGER, ORT_FP32, ORT_INT8) for b in CPU_BATCHES
    }
    assert all(r["images_per_s"] > 0 for r in result.rows)
    assert result.int8_cosine_min >= 0.99
    report = result.report()
    assert "ORT fp32 / torch eager" in report and "ORT int8 / ORT fp32" in report
    assert (tmp_path / "bench" / f"clip-{ARCH}-random" / "image_encoder.fp16.onnx").is_file()


def test_letterbox_keeps_the_whole_frame(exported):
    iqa = ClipIqa(exported, SessionOptions(device="cpu"))
    img = np.full((180, 320, 3), 128, np.uint8)
    img[:, :20] = (0, 0, 255)  # a red strip at the left edge
    view = iqa.letterbox(img)
    size = iqa.size
    assert view.shape == (3, size, size)
    band = (size - round(180 * size / 320)) // 2
    assert band > 0 and np.all(view[:, :band] == 0) and np.all(view[:, -band:] == 0)  # mean-coloured bands
    red = view[0, size // 2, :5] * iqa.std.ravel()[0] + iqa.mean.ravel()[0]  # R channel, denormalised
    assert np.allclose(red, 1.0, atol=0.02)  # the edge is in the picture...
    crop = iqa.preprocess(img)
    assert np.all(np.abs(crop[0] * iqa.std.ravel()[0] + iqa.mean.ravel()[0] - 128 / 255) < 0.02)  # ...not in the crop


def test_tile_grid_follows_the_picture_shape():
    from monitor.scoring.clip_iqa import cut_tiles, tile_grid

    assert tile_grid(1920, 1080, "auto", 224) == (3, 2)
    assert tile_grid(704, 576, "auto", 224) == (2, 2)
    assert tile_grid(1080, 1920, "auto", 224) == (2, 3)
    assert tile_grid(320, 180, "auto", 224) is None  # tiles would be under half the input size
    assert tile_grid(1920, 1080, "off", 224) is None and tile_grid(1920, 1080, (4, 1), 224) == (4, 1)
    tiles = cut_tiles(np.zeros((1081, 1921, 3), np.uint8), (3, 2))
    assert (
        len(tiles) == 6 and sum(t.shape[1] for t in tiles[:3]) == 1921 and sum(t.shape[0] for t in tiles[::3]) == 1081
    )


def test_tiles_find_a_fault_in_a_corner_the_centre_crop_misses(exported):
    """A smear over the bottom-left corner of a 16:9 frame lies outside open_clip's centre crop,
    so a centre-cropped score cannot move; the whole-frame view and that corner's tile see it.
    With random weights no score means "worse", so the test checks what tiling guarantees: only
    the corner's tile changes, and the worst tile reported is the lowest of the tiles' scores."""
    rng = np.random.default_rng(3)
    scene = cv2.resize(rng.integers(0, 255, (90, 160, 3), dtype=np.uint8), (1280, 720), interpolation=cv2.INTER_NEAREST)
    smeared = scene.copy()
    smeared[360:, :270] = cv2.GaussianBlur(scene[360:, :270], (0, 0), 25)  # x < 280: outside the 720-px crop
    iqa = ClipIqa(exported, SessionOptions(device="cpu"))
    overall = iqa.aspects.index("quality")

    def crop(im):
        return iqa.aspect_scores(iqa.embed(iqa.preprocess(im)[None]))[0, overall]

    assert crop(scene) == pytest.approx(crop(smeared), abs=1e-6)  # the centre crop never sees the corner
    clean, faulty = iqa.score([scene, smeared], tiles="auto")
    assert clean.aspects["quality"] != faulty.aspects["quality"]  # the letterboxed whole frame shows the edge
    moved = np.abs(np.array(clean.tiles) - np.array(faulty.tiles)) > 1e-4
    assert moved.tolist() == [False, False, False, True, False, False]  # only row 1, column 0
    for result in (clean, faulty):
        k = int(np.argmin(result.tiles))
        assert result.worst_tile == {"quality": result.tiles[k], "row": k // 3, "col": k % 3, "grid": [3, 2]}


def test_frame_conversion_is_done_once_across_threads():
    """The scorer thread (tiles) and the analysis loop (snapshots) may both ask for the native picture."""
    import threading
    import time

    from monitor.frames import Frame

    calls = []

    def full() -> np.ndarray:
        calls.append(1)
        time.sleep(0.02)  # a slow conversion widens the window two threads could both enter
        return np.ones((720, 1280, 3), np.uint8)

    frame = Frame("s", 0, 0.0, 0.0, False, np.zeros((270, 480, 3), np.uint8), 1280, 720, full=full)
    results = []
    threads = [threading.Thread(target=lambda: results.append(frame.image)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and all(r is results[0] for r in results) and results[0].shape == (720, 1280, 3)


def test_torch_runtime_scores_like_onnx_runtime(exported, caplog):
    """runtime torch (the GPU boxes' backend, here on the CPU in fp32): the torch.export program,
    letterboxed by torch, gives the ONNX path's embeddings and scores."""
    from monitor.scoring.torch_backend import buckets

    onnx = ClipIqa(exported, SessionOptions(device="cpu"))
    caplog.set_level(logging.INFO)
    torch_rt = ClipIqa(exported, SessionOptions(device="auto", runtime="torch"))
    assert torch_rt.provider.startswith("torch ") and "CPU, fp32" in torch_rt.provider
    imgs = [*frames(3, 640, 360), np.full((48, 64, 3), 90, np.uint8), frames(1, 180, 320)[0]]
    cos = (onnx.embed_pictures(imgs) * torch_rt.embed_pictures(imgs)).sum(axis=1)
    assert cos.min() >= 0.999, cos
    a, b = onnx.score(imgs, tiles=(2, 1)), torch_rt.score(imgs, tiles=(2, 1))
    for x, y in zip(a, b, strict=True):
        assert all(abs(x.aspects[k] - y.aspects[k]) < 0.01 for k in x.aspects)
        assert (x.worst_tile is None) == (y.worst_tile is None)
    assert buckets(16) == [1, 2, 4, 8, 16] and buckets(100) == [1, 2, 4, 8, 16, 32, 64, 128] and buckets(1) == [1]


def test_torch_runtime_refuses_what_it_cannot_run(exported, tmp_path):
    from monitor.scoring.clip_iqa import DeviceError

    other = tmp_path / "other-torch"
    shutil.copytree(exported, other)
    m = json.loads((other / "manifest.json").read_text())
    m["torch"]["version"] = "2.11.0+cu130"  # written on the GPU box's torch, run with this one
    (other / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelError, match=r"written by torch 2\.11, this box has torch \d+\.\d+: export it") as err:
        ClipIqa(other, SessionOptions(runtime="torch"))
    assert "\n" not in str(err.value)
    del m["torch"], m["files"]["image_encoder.pt2"]
    (other / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelError, match="exported without --torch"):
        ClipIqa(other, SessionOptions(runtime="torch"))
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="runtime torch: torch sees no CUDA GPU"):
            ClipIqa(exported, SessionOptions(device="cuda", runtime="torch"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs it)")
def test_torch_runtime_on_cuda_matches_onnx_in_fp16(exported):
    """On a GPU: fp16, CUDA graphs per batch bucket, letterbox on the device."""
    onnx = ClipIqa(exported, SessionOptions(device="cpu"))
    gpu = ClipIqa(exported, SessionOptions(device="cuda", runtime="torch", max_views=16))
    assert "CUDA graphs, fp16" in gpu.provider
    imgs = [*frames(5, 640, 360), np.full((48, 64, 3), 90, np.uint8), *frames(3, 1280, 720)]
    for n in (1, 3, 9):  # buckets 1, 4 and 16 (9 is padded)
        cos = (onnx.embed_pictures(imgs[:n]) * gpu.embed_pictures(imgs[:n])).sum(axis=1)
        assert cos.min() >= 0.99, (n, cos)
    assert sorted(gpu.torch_encoder._graphs) == [1, 4, 16]
