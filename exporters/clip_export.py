"""Export an open_clip model for CLIP-IQA scoring: image encoder -> ONNX (dynamic batch), the
prompt set's text embeddings precomputed, the text encoder -> ONNX with the tokenizer's
vocabulary (so prompts are re-embedded later without torch), and a manifest the daemon checks
before loading.

    vqmon export clip --out models/clip-vitb32 [--arch ViT-B-32] (--weights FILE | --pretrained TAG | --random-init)
                      [--prompts FILE] [--int8 [--calibration CLIP]] [--fp16] [--opset 18]

The image encoder goes through torch's dynamo exporter: its graph has no shape-computing Casts,
so the fp16 conversion (onnxconverter-common) gives a correct model, and it is as fast as the
TorchScript exporter's under ONNX Runtime. Every file written is checked against torch on a
few frames before the directory is published; the cosines are kept in the manifest.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from monitor.errors import VqmonError
from monitor.scoring.clip_iqa import graph_level, l2_normalize, letterbox, preprocess
from monitor.scoring.model_dir import ENCODER_FILES, TEXT_ENCODER_FILE, TEXT_FILE, TORCH_FILE, VOCAB_FILE, sha256
from monitor.scoring.prompts import DEFAULT_PROMPTS, LOGIT_SCALE, MANIFEST_SCHEMA, load_prompt_set

log = logging.getLogger(__name__)

IMAGE_ONNX = ENCODER_FILES["fp32"]
IMAGE_INT8 = ENCODER_FILES["int8"]
IMAGE_FP16 = ENCODER_FILES["fp16"]
MIN_OPSET = 18  # the dynamo exporter's oldest
# Export-time parity against torch (embedding cosine, worst frame); below it fp32 fails the
# export, int8/fp16 are written with a warning and the number stays in the manifest.
PARITY_FP32 = 0.999
PARITY_REDUCED = 0.99


def _import_export_deps():
    try:
        import open_clip
        import torch
    except ImportError as exc:
        raise VqmonError(
            f"exporting needs torch and open_clip ({exc.name} is missing): pip install -e '.[export]'"
        ) from None
    return torch, open_clip


def register_bundled_configs(open_clip) -> None:
    """Make our small test architecture (vqmon-tiny) known to open_clip."""
    folder = resources.files("exporters") / "model_configs"
    with resources.as_file(folder) as path:
        open_clip.add_model_config(Path(path))


def _calibration_batches(clip: str, size: int, mean, std, count: int) -> list[np.ndarray]:
    """Frames spread over a clip, pre-processed exactly as the daemon does."""
    from monitor.capture import open_decoder
    from monitor.config import CaptureConfig

    dec = open_decoder(clip, "file", CaptureConfig(), False)
    try:
        total = dec.total_frames or count * 25
        step = max(1, total // count)
        frames = [letterbox(raw.full(), size, mean, std) for i, raw in enumerate(dec.frames()) if i % step == 0]
    finally:
        dec.close()
    if not frames:
        raise VqmonError(f"{clip}: no frames for calibration")
    return [f[None] for f in frames[:count]]


def _quantize(tmp: Path, size: int, mean, std, calibration: str | None, count: int) -> dict:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # Shape inference + graph optimisation first lets the quantiser handle more of the graph
    # (ONNX Runtime's recommended order).
    prepped = tmp / "image_encoder.prep.onnx"
    quant_pre_process(str(tmp / IMAGE_ONNX), str(prepped), skip_symbolic_shape=True)
    try:
        if calibration is None:
            # Convolutions stay fp32: ORT's ConvInteger is a slow generic kernel (ViT-B-32's one
            # patch-embedding conv took 18 % of the int8 run time, 2 % in fp32).
            quantize_dynamic(
                str(prepped),
                str(tmp / IMAGE_INT8),
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Gemm"],
            )
            return {"method": "dynamic"}
        batches = _calibration_batches(calibration, size, mean, std, count)

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = iter(batches)

            def get_next(self):
                b = next(self._it, None)
                return None if b is None else {"pixel_values": b}

        quantize_static(
            str(prepped),
            str(tmp / IMAGE_INT8),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
        )
        return {"method": "static", "calibration": Path(calibration).name, "frames": len(batches)}
    finally:
        prepped.unlink(missing_ok=True)


def _encoder(torch, model, method: str):
    """One of the model's encoders (encode_image, encode_text) as a module of its own."""

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, x):
            return getattr(self.m, method)(x)

    return Encoder().eval()


def _export_onnx(torch, model, method: str, example, names: tuple[str, str], path: Path, opset: int) -> None:
    """``model.<method>`` to ONNX through the dynamo exporter, with a dynamic batch."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    # The dynamo exporter reports its progress with print(); keep it out of our output.
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _encoder(torch, model, method),
                (example,),
                str(path),
                input_names=[names[0]],
                output_names=[names[1]],
                dynamic_shapes={"x": {0: batch}},
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    except Exception as exc:  # torch.export raises many kinds for a model it cannot trace
        log.debug("torch.onnx.export output:\n%s", chatter.getvalue())
        raise VqmonError(f"cannot export {method} to ONNX: {type(exc).__name__}: {exc}") from None


def _text_tower(open_clip, tokenizer, tmp: Path, torch, model, opset: int) -> dict | None:
    """The text encoder and the tokenizer's vocabulary, when the model uses CLIP's BPE tokenizer
    (the one monitor.scoring.tokenizer reads); other tokenizers keep fixed embeddings only."""
    from open_clip.tokenizer import SimpleTokenizer, default_bpe

    if type(tokenizer) is not SimpleTokenizer:
        log.warning(
            "%s tokenizer is not CLIP's BPE: prompts are embedded now, but cannot be re-embedded without torch",
            type(tokenizer).__name__,
        )
        return None
    context_length = int(tokenizer.context_length)
    ids = torch.ones(2, context_length, dtype=torch.long)
    _export_onnx(torch, model, "encode_text", ids, ("input_ids", "text_embeds"), tmp / TEXT_ENCODER_FILE, opset)
    shutil.copyfile(default_bpe(), tmp / VOCAB_FILE)
    return {"context_length": context_length, "tokenizer": "clip-bpe"}


def _check_text_parity(torch, model, tokenizer, tmp: Path, texts: list[str]) -> float:
    """Worst prompt's embedding cosine, ONNX text encoder with our tokenizer against torch."""
    from monitor.scoring.text_encoder import TextEncoder

    manifest = {"text_encoder": {"context_length": tokenizer.context_length}, "files": {}}
    for name in (TEXT_ENCODER_FILE, VOCAB_FILE):
        manifest["files"][name] = {"sha256": sha256(tmp / name)}
    ours = TextEncoder(tmp, manifest).embed_texts(texts)
    with torch.no_grad():
        ref = l2_normalize(model.encode_text(tokenizer(texts)).float().numpy())
    cos = round(float((ours * ref).sum(axis=1).min()), 5)
    log.info("parity text encoder vs torch: embedding cosine %.5f", cos)
    if cos < PARITY_FP32:
        raise VqmonError(f"the exported text encoder disagrees with torch (cosine {cos:.4f} < {PARITY_FP32})")
    return cos


def _export_torch_program(torch, model, size: int, path: Path) -> dict:
    """The image encoder as a torch.export program (dynamic batch): runtime torch loads it with
    torch alone. Checked against the model before it is written into the directory."""

    batch = torch.export.Dim("batch", min=1, max=4096)
    encoder = _encoder(torch, model, "encode_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(encoder, (torch.zeros(2, 3, size, size),), dynamic_shapes={"x": {0: batch}})
        torch.export.save(program, str(path))
    except Exception as exc:  # torch.export raises many kinds for a model it cannot trace
        raise VqmonError(f"cannot export the image encoder with torch.export: {type(exc).__name__}: {exc}") from None
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = torch.export.load(str(path)).module()(x)
        b = encoder(x)
    cos = float(torch.nn.functional.cosine_similarity(a, b, dim=1).min())
    if cos < PARITY_FP32:
        raise VqmonError(f"the torch.export program disagrees with the model (cosine {cos:.4f})")
    return {"version": torch.__version__, "parity_cosine": round(cos, 5)}


def _to_fp16(src: Path, dst: Path) -> None:
    """Half-precision weights and activations; fp32 input and output so the daemon's
    pre-processing and scoring stay the same."""
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise VqmonError("--fp16 needs onnxconverter-common: pip install -e '.[export]'") from None
    import onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one warning per weight that fp16 rounds to zero
        model = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))


def _check_parity(torch, model, tmp: Path, files: list[str], size: int, mean, std) -> dict[str, float]:
    """Worst-frame embedding cosine of each written encoder against torch, on CPU."""
    import onnxruntime as ort

    from monitor.demo import SceneRenderer

    r = SceneRenderer(640, 360, 25, seed=11)
    batch = np.stack([preprocess(r.render(0.5 + 1.7 * i), size, mean, std) for i in range(4)])
    with torch.no_grad():
        ref = l2_normalize(model.encode_image(torch.from_numpy(batch)).float().numpy())
    parity = {}
    for precision, name in ENCODER_FILES.items():
        if name not in files:
            continue
        so = ort.SessionOptions()
        so.graph_optimization_level = graph_level(precision)
        session = ort.InferenceSession(str(tmp / name), so, providers=["CPUExecutionProvider"])
        emb = l2_normalize(session.run(None, {"pixel_values": batch})[0].astype(np.float32))
        parity[precision] = cos = round(float((emb * ref).sum(axis=1).min()), 5)
        log.info("parity %s vs torch: embedding cosine %.5f", precision, cos)
        if precision == "fp32" and cos < PARITY_FP32:
            raise VqmonError(f"the exported encoder disagrees with torch (cosine {cos:.4f} < {PARITY_FP32})")
        if cos < PARITY_REDUCED:
            log.warning("%s encoder: cosine %.4f vs torch is below %.2f; prefer fp32", precision, cos, PARITY_REDUCED)
    return parity


@dataclass
class ExportResult:
    out_dir: Path
    manifest: dict


def load_model(arch: str, weights: str | None, pretrained: str | None, random_init: bool, seed: int = 0):
    """The open_clip model, its pre-processing and tokenizer. Random weights come from ``seed``,
    so `prompts learn` can rebuild the weights a random-init directory was exported with."""
    torch, open_clip = _import_export_deps()
    register_bundled_configs(open_clip)
    chosen = [x for x in (weights, pretrained, random_init or None) if x]
    if len(chosen) != 1:
        raise VqmonError("choose exactly one of --weights FILE, --pretrained TAG, --random-init")
    if arch not in open_clip.list_models():
        raise VqmonError(f"unknown open_clip architecture {arch!r} (e.g. ViT-B-32, RN50, MobileCLIP-S1, vqmon-tiny)")
    if weights and not Path(weights).is_file():
        raise VqmonError(f"{weights}: weights file not found")
    if random_init:
        torch.manual_seed(seed)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch, pretrained=weights or pretrained or None, load_weights=bool(weights or pretrained)
        )
    except Exception as exc:  # open_clip raises many kinds for a bad checkpoint or a failed download
        raise VqmonError(f"cannot build {arch} with those weights: {type(exc).__name__}: {exc}") from None
    model.eval()
    tokenizer = open_clip.get_tokenizer(arch)
    return torch, open_clip, model, preprocess, tokenizer


def export_clip(
    out_dir: str | Path,
    arch: str = "ViT-B-32",
    weights: str | None = None,
    pretrained: str | None = None,
    random_init: bool = False,
    int8: bool = False,
    fp16: bool = False,
    opset: int = MIN_OPSET,
    calibration: str | None = None,
    calibration_frames: int = 32,
    prompts: str = DEFAULT_PROMPTS,
    seed: int = 0,
    torch_program: bool = False,
) -> ExportResult:
    if opset < MIN_OPSET:
        raise VqmonError(f"--opset {opset}: the exporter writes opset {MIN_OPSET} or newer")
    prompt_set = load_prompt_set(prompts)
    torch, open_clip, model, _preprocess, tokenizer = load_model(arch, weights, pretrained, random_init, seed)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
    tmp.chmod(0o755)  # the daemon may run as another user than the one exporting
    try:
        size = model.visual.image_size
        size = int(size[0] if isinstance(size, tuple | list) else size)
        mean = [float(x) for x in getattr(model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN]
        std = [float(x) for x in getattr(model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD]

        pixels = torch.zeros(2, 3, size, size)
        _export_onnx(torch, model, "encode_image", pixels, ("pixel_values", "image_embeds"), tmp / IMAGE_ONNX, opset)
        texts = [t for pair in prompt_set.pairs for t in pair]
        with torch.no_grad():
            text = model.encode_text(tokenizer(texts)).float()
            text = text / text.norm(dim=-1, keepdim=True)
        np.save(tmp / TEXT_FILE, text.numpy().reshape(len(prompt_set.pairs), 2, -1).astype(np.float32))
        files = [IMAGE_ONNX, TEXT_FILE]
        text_encoder = _text_tower(open_clip, tokenizer, tmp, torch, model, opset)
        if text_encoder is not None:
            files += [TEXT_ENCODER_FILE, VOCAB_FILE]
        int8_info = None
        if int8:
            int8_info = _quantize(tmp, size, mean, std, calibration, calibration_frames)
            files.append(IMAGE_INT8)
        if fp16:
            _to_fp16(tmp / IMAGE_ONNX, tmp / IMAGE_FP16)
            files.append(IMAGE_FP16)
        torch_info = None
        if torch_program:
            torch_info = _export_torch_program(torch, model, size, tmp / TORCH_FILE)
            files.append(TORCH_FILE)
        parity = _check_parity(torch, model, tmp, files, size, mean, std)
        if text_encoder is not None:
            parity["text"] = _check_text_parity(torch, model, tokenizer, tmp, texts)
        import onnx

        if weights:
            source = f"file:{Path(weights).name}"
        else:
            source = f"pretrained:{pretrained}" if pretrained else "random-init"
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "arch": arch,
            "weights": {"source": source, "sha256": sha256(Path(weights)) if weights else None},
            "random_init": bool(random_init),
            "seed": seed if random_init else None,
            "input_size": size,
            "mean": mean,
            "std": std,
            "resize": "shortest_side",
            "interpolation": "bicubic",
            "crop": "center",
            "prompts": prompt_set.to_manifest(),
            "text_encoder": text_encoder,
            "torch": torch_info,
            "logit_scale": LOGIT_SCALE,
            "embed_dim": int(text.shape[-1]),
            "opset": opset,
            "int8": int8_info,
            "fp16": bool(fp16),
            "parity_cosine": parity,
            "versions": {"torch": torch.__version__, "open_clip": open_clip.__version__, "onnx": onnx.__version__},
            "files": {f: {"sha256": sha256(tmp / f), "bytes": (tmp / f).stat().st_size} for f in files},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
        log.info("exported %s (%s) to %s", arch, source, out)
        return ExportResult(out, manifest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
