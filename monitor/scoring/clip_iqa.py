"""CLIP-IQA scores with ONNX Runtime: no torch at run time.

A model directory (made by `vqmon export clip`) holds the image encoder as ONNX, the prompt
pairs' text embeddings and a manifest with checksums. For each antonym pair the score is the
softmax over the image's cosine similarities to the two prompts (times the logit scale): the
probability of the positive prompt. `quality` is the overall score; the rest are aspects.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from monitor.errors import VqmonError
from monitor.scoring.prompts import MANIFEST_SCHEMA

log = logging.getLogger(__name__)

Device = Literal["auto", "tensorrt", "cuda", "cpu"]
Precision = Literal["fp32", "int8", "fp16"]
# The image encoder's file per precision, as `vqmon export clip` writes them.
ENCODER_FILES: dict[str, str] = {
    "fp32": "image_encoder.onnx",
    "int8": "image_encoder.int8.onnx",
    "fp16": "image_encoder.fp16.onnx",
}
TEXT_FILE = "text_embeddings.npy"
_PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


class ModelError(VqmonError):
    """The model directory is missing, corrupt or does not match its manifest."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(model_dir: str | Path) -> dict:
    d = Path(model_dir)
    path = d / "manifest.json"
    if not d.is_dir():
        raise ModelError(f"{d}: model directory not found (export one with `vqmon export clip --out {d} ...`)")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: missing (not a vqmon model directory; re-export it)") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable ({exc}); re-export the model") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise ModelError(f"{path}: not a {MANIFEST_SCHEMA} manifest; re-export the model")
    return manifest


def verify_model_dir(model_dir: str | Path, precision: str) -> dict:
    """The manifest, once the files a scorer of this precision needs are there and intact."""
    d = Path(model_dir)
    manifest = load_manifest(d)
    for name in (ENCODER_FILES[precision], TEXT_FILE):
        entry = manifest.get("files", {}).get(name)
        path = d / name
        if entry is None:
            hint = f" (re-export with --{precision})" if precision != "fp32" else ""
            raise ModelError(f"{d}: manifest lists no {name}{hint}")
        if not path.is_file():
            raise ModelError(f"{path}: missing; copy the whole model directory")
        if sha256(path) != entry["sha256"]:
            raise ModelError(f"{path}: checksum does not match manifest.json (corrupt or replaced); re-copy it")
    return manifest


def choose_providers(device: Device, available: list[str]) -> tuple[list[str], list[str]]:
    """(providers to try in order, reasons the preferred ones were skipped)."""
    order = ["tensorrt", "cuda", "cpu"] if device == "auto" else [device]
    chosen, skipped = [], []
    for name in order:
        ep = _PROVIDERS[name]
        if ep in available:
            chosen.append(ep)
        else:
            skipped.append(f"{name}: {ep} not in this onnxruntime build")
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")  # the always-there fallback
    return chosen, skipped


def l2_normalize(rows: np.ndarray) -> np.ndarray:
    """Unit-length rows (embeddings), so a dot product is the cosine."""
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def preprocess(bgr: np.ndarray, size: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """open_clip's transform in OpenCV: shortest side to the input size (bicubic; area when
    shrinking, which like PIL's antialiased resize averages), centre crop, normalise. CHW float32."""
    h, w = bgr.shape[:2]
    # torchvision's arithmetic: the long side is truncated, the crop offset rounded.
    if h <= w:
        nh, nw = size, int(size * w / h)
    else:
        nh, nw = int(size * h / w), size
    interp = cv2.INTER_AREA if min(h, w) > size else cv2.INTER_CUBIC
    img = cv2.resize(bgr, (nw, nh), interpolation=interp)
    y0, x0 = round((nh - size) / 2.0), round((nw - size) / 2.0)
    img = img[y0 : y0 + size, x0 : x0 + size, ::-1].astype(np.float32) / 255.0
    img = (img - np.asarray(mean, np.float32).reshape(1, 1, 3)) / np.asarray(std, np.float32).reshape(1, 1, 3)
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def graph_level(precision: str):
    import onnxruntime as ort

    # ORT 1.32's CPU layout transforms (part of ENABLE_ALL) crash the process on fp16 graphs
    # (like microsoft/onnxruntime#15494); the extended level keeps every fusion but those.
    if precision == "fp16":
        return ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return ort.GraphOptimizationLevel.ORT_ENABLE_ALL


@dataclass
class SessionOptions:
    device: Device = "auto"
    precision: Precision = "fp32"
    threads: int = 0
    trt_cache_dir: str | None = None
    trt_fp16: bool = True


def _provider_options(provider: str, options: SessionOptions, cache: Path, int8_method: str | None) -> dict:
    if provider != "TensorrtExecutionProvider":
        return {}
    opts = {
        "trt_fp16_enable": str(options.trt_fp16),
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache),
    }
    if options.precision == "int8":
        if int8_method == "static":
            # The QDQ graph carries its own scales: TensorRT's explicit quantisation, no calibration table.
            opts["trt_int8_enable"] = "True"
        else:
            log.warning(
                "CLIP scorer: dynamic int8 is a CPU format that TensorRT runs only in part; for TensorRT "
                "use precision fp32 (it builds an fp16 engine) or export --int8 --calibration CLIP"
            )
    return opts


class ClipIqa:
    def __init__(self, model_dir: str | Path, options: SessionOptions | None = None) -> None:
        import onnxruntime as ort

        self.dir = Path(model_dir)
        self.options = options or SessionOptions()
        precision = self.options.precision
        self.manifest = m = verify_model_dir(self.dir, precision)
        onnx_name = ENCODER_FILES[precision]
        self.random_init = bool(m.get("random_init"))
        self.size = int(m["input_size"])
        self.mean = np.array(m["mean"], np.float32).reshape(1, 1, 3)
        self.std = np.array(m["std"], np.float32).reshape(1, 1, 3)
        self.pair_names = list(m["prompt_pairs"])
        self.text = np.load(self.dir / TEXT_FILE).astype(np.float32)  # (pairs, 2, D)
        self.logit_scale = float(m["logit_scale"])
        providers, skipped = choose_providers(self.options.device, ort.get_available_providers())
        so = ort.SessionOptions()
        so.graph_optimization_level = graph_level(precision)
        if self.options.threads:
            so.intra_op_num_threads = self.options.threads
        cache = Path(self.options.trt_cache_dir) if self.options.trt_cache_dir else self.dir / "trt-cache"
        int8_method = (m.get("int8") or {}).get("method")
        provider_options = [_provider_options(p, self.options, cache, int8_method) for p in providers]
        if "TensorrtExecutionProvider" in providers:
            try:
                cache.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning(
                    "CLIP scorer: TensorRT engine cache %s not writable (%s); set scoring.trt_cache_dir", cache, exc
                )
        try:
            self.session = ort.InferenceSession(
                str(self.dir / onnx_name), so, providers=providers, provider_options=provider_options
            )
        except Exception as exc:  # onnxruntime raises its own exception types for a bad graph
            raise ModelError(f"{self.dir / onnx_name}: ONNX Runtime cannot load it ({exc}); re-export") from None
        self.provider = self.session.get_providers()[0]
        if precision == "fp16" and self.provider == "CPUExecutionProvider":
            log.warning("CLIP scorer: fp16 is a GPU format and slow on the CPU; use precision fp32 or int8 here")
        for reason in skipped:
            log.info("CLIP scorer: %s", reason)
        log.info("CLIP scorer: %s on %s (%s)", m.get("arch"), self.provider, self.options.precision)
        self.input_name = self.session.get_inputs()[0].name

    def preprocess(self, bgr: np.ndarray) -> np.ndarray:
        return preprocess(bgr, self.size, self.mean, self.std)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: batch})[0].astype(np.float32)
        return l2_normalize(out)

    def scores_from_embeddings(self, emb: np.ndarray) -> list[dict[str, float]]:
        sims = np.einsum("nd,pkd->npk", emb, self.text) * self.logit_scale  # (N, pairs, 2)
        sims -= sims.max(axis=2, keepdims=True)
        e = np.exp(sims)
        pos = e[..., 0] / e.sum(axis=2)
        return [{n: round(float(pos[i, j]), 4) for j, n in enumerate(self.pair_names)} for i in range(len(emb))]

    def score(self, images: list[np.ndarray]) -> list[dict[str, float]]:
        """Scores for BGR images, computed in one batch."""
        if not images:
            return []
        batch = np.stack([self.preprocess(im) for im in images])
        return self.scores_from_embeddings(self.embed(batch))
