"""CLIP-IQA scores with ONNX Runtime: no torch at run time.

A model directory (made by `vqmon export clip`) holds the image encoder as ONNX, the prompt
pairs' text embeddings and a manifest with checksums. For each antonym pair the score is the
softmax over the image's cosine similarities to the two prompts (times the logit scale): the
probability of the positive prompt. An aspect's score is the mean over its pairs (see
prompts.py); `quality` is the overall score.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from monitor.scoring.model_dir import ENCODER_FILES, TEXT_FILE, ModelError, verify_model_dir
from monitor.scoring.prompts import PromptError, PromptSet, load_prompt_set

log = logging.getLogger(__name__)

Device = Literal["auto", "tensorrt", "cuda", "cpu"]
Precision = Literal["fp32", "int8", "fp16"]
_PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


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
    prompts: str | None = None  # a prompt set (file or bundled name); None: the one the model was embedded with


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
        self.prompts, self.text = self._prompt_embeddings(m)
        self.aspects = list(self.prompts.aspects)
        # Averages each aspect's pair scores: (pairs, aspects), rows of an aspect weigh 1/its count.
        owner = np.array([self.aspects.index(a) for a in self.prompts.pair_aspects])
        self._to_aspects = np.zeros((len(owner), len(self.aspects)), np.float32)
        self._to_aspects[np.arange(len(owner)), owner] = 1.0
        self._to_aspects /= self._to_aspects.sum(axis=0, keepdims=True)
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

    def _prompt_embeddings(self, manifest: dict) -> tuple[PromptSet, np.ndarray]:
        """The prompt set and its (pairs, 2, D) embeddings: the model directory's, or the set the
        config names, embedded now with the model's text encoder when it is another one."""
        try:
            stored = PromptSet.from_manifest(manifest)
            wanted = load_prompt_set(self.options.prompts) if self.options.prompts else stored
        except PromptError as exc:
            raise ModelError(str(exc)) from None
        try:
            text = np.load(self.dir / TEXT_FILE).astype(np.float32)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{self.dir / TEXT_FILE}: unreadable ({exc}); re-export the model") from None
        if text.ndim != 3 or text.shape[:2] != (len(stored.pairs), 2):
            raise ModelError(f"{self.dir / TEXT_FILE}: does not match the manifest's prompt set; re-export the model")
        if wanted.digest == stored.digest:
            return stored, text
        from monitor.scoring.text_encoder import TextEncoder

        text = TextEncoder(self.dir, manifest).embed(wanted)
        log.info(
            "CLIP scorer: prompt set %r (%d pairs) embedded with the model's text encoder; "
            "`vqmon prompts embed` stores it in the model directory",
            wanted.name,
            len(wanted.pairs),
        )
        return wanted, text

    def preprocess(self, bgr: np.ndarray) -> np.ndarray:
        return preprocess(bgr, self.size, self.mean, self.std)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: batch})[0].astype(np.float32)
        return l2_normalize(out)

    def pair_scores(self, emb: np.ndarray) -> np.ndarray:
        """(N, pairs): each pair's probability of its positive prompt."""
        sims = np.einsum("nd,pkd->npk", emb, self.text) * self.logit_scale  # (N, pairs, 2)
        sims -= sims.max(axis=2, keepdims=True)
        e = np.exp(sims)
        return e[..., 0] / e.sum(axis=2)

    def aspect_scores(self, emb: np.ndarray) -> np.ndarray:
        """(N, aspects): each aspect's mean over its pairs, in ``self.aspects`` order."""
        return self.pair_scores(emb) @ self._to_aspects

    def scores_from_embeddings(self, emb: np.ndarray) -> list[dict[str, float]]:
        aspects = self.aspect_scores(emb)
        return [{n: round(float(aspects[i, j]), 4) for j, n in enumerate(self.aspects)} for i in range(len(emb))]

    def score(self, images: list[np.ndarray]) -> list[dict[str, float]]:
        """Scores for BGR images, computed in one batch."""
        if not images:
            return []
        batch = np.stack([self.preprocess(im) for im in images])
        return self.scores_from_embeddings(self.embed(batch))
