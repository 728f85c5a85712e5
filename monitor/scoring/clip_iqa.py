"""CLIP-IQA scores with ONNX Runtime: no torch at run time.

A model directory (made by `vqmon export clip`) holds the image encoder as ONNX, the prompt
pairs' text embeddings and a manifest with checksums. For each antonym pair the score is the
softmax over the image's cosine similarities to the two prompts (times the logit scale): the
probability of the positive prompt. An aspect's score is the mean over its pairs (see
prompts.py); `quality` is the overall score.

A frame is seen whole, letterboxed to the model's input size (a centre crop would drop the
sides of a wide frame), and, with tiles on, also as a grid of tiles cut from the native picture
(3x2 for 16:9), each letterboxed in turn: a fault in one part of the picture (a smear in a
corner) is not averaged away, and the worst tile's overall score and position are reported.
All views of all frames go through the encoder in one call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np

from monitor.errors import VqmonError
from monitor.scoring.model_dir import ENCODER_FILES, TEXT_FILE, ModelError, verify_model_dir
from monitor.scoring.prompts import OVERALL, PromptError, PromptSet, load_prompt_set

if TYPE_CHECKING:
    from monitor.scoring.torch_backend import TorchEncoder

log = logging.getLogger(__name__)

Device = Literal["auto", "tensorrt", "cuda", "cpu"]
Runtime = Literal["onnx", "torch"]
Precision = Literal["fp32", "int8", "fp16"]
# "auto": a grid that keeps tiles near square (3x2 for 16:9, 2x2 for 4:3); "off": whole frame
# only; or (columns, rows).
Tiles = Literal["auto", "off"] | tuple[int, int]
_PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def _cuda_in_torch() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class DeviceError(VqmonError):
    """The scorer's device was asked for by name and this box cannot provide it."""


def choose_providers(device: Device, available: list[str]) -> tuple[list[str], list[str]]:
    """(providers to try in order, the preferred ones this onnxruntime build lacks). A device asked
    for by name that is missing is an error: only ``auto`` falls back."""
    order = ["tensorrt", "cuda", "cpu"] if device == "auto" else [device]
    chosen, missing = [], []
    for name in order:
        ep = _PROVIDERS[name]
        if ep in available:
            chosen.append(ep)
        else:
            missing.append(ep)
    if device != "auto" and missing:
        raise DeviceError(
            f"scoring.device {device}: {missing[0]} is not in this onnxruntime build "
            f"(has {', '.join(available)}); install onnxruntime-gpu (pip install -e '.[gpu]', JetPack's wheel "
            "on a Jetson) or set device: auto to fall back to the CPU"
        )
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")  # the always-there fallback, and for ops a GPU provider lacks
    return chosen, missing


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


def letterbox_box(h: int, w: int, size: int) -> tuple[float, int, int, int, int]:
    """Where a picture of h x w goes in the square input: (scale, new height, new width, top,
    left). Shared by the CPU letterbox and the torch backend's on the GPU, so both agree."""
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    return scale, nh, nw, (size - nh) // 2, (size - nw) // 2


def letterbox(
    bgr: np.ndarray, size: int, mean: np.ndarray, std: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """The whole picture in the model's square input: the long side to ``size`` (area when
    shrinking, bicubic when enlarging), centred on the mean colour (zero once normalised), so
    nothing is cropped away. CHW float32, normalised; written into ``out`` when given."""
    h, w = bgr.shape[:2]
    scale, nh, nw, y0, x0 = letterbox_box(h, w, size)
    img = (
        bgr
        if (nh, nw) == (h, w)
        else cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    )
    rgb = img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)
    scale_c = (1.0 / (255.0 * np.asarray(std, np.float32))).reshape(3, 1, 1)
    shift_c = (np.asarray(mean, np.float32) / np.asarray(std, np.float32)).reshape(3, 1, 1)
    if out is None:
        out = np.empty((3, size, size), np.float32)
    out[:] = 0.0
    out[:, y0 : y0 + nh, x0 : x0 + nw] = rgb * scale_c - shift_c
    return out


def tile_grid(width: int, height: int, tiles: Tiles, size: int) -> tuple[int, int] | None:
    """(columns, rows) of tiles for a picture of this size, or None for the whole frame only.
    "auto" cuts two tiles across the short side and as many along the long one as keep them
    near square; a picture too small to give tiles at least half the model's input gets none."""
    if tiles == "off":
        return None
    if tiles == "auto":
        long_side, short_side = max(width, height), min(width, height)
        along = max(1, round(2 * long_side / short_side / 1.2))
        cols, rows = (along, 2) if width >= height else (2, along)
    else:
        cols, rows = tiles
    if width / cols < size / 2 or height / rows < size / 2 or cols * rows <= 1:
        return None
    return cols, rows


def views_per_frame(tiles: Tiles) -> int:
    """Encoder inputs per frame: the whole frame and its tiles (auto: as for 16:9; a wider frame
    needs more, and a batch larger than the biggest CUDA graph is run in parts)."""
    if tiles == "off":
        return 1
    cols, rows = (3, 2) if tiles == "auto" else tiles
    return 1 + cols * rows


def cut_tiles(bgr: np.ndarray, grid: tuple[int, int]) -> list[np.ndarray]:
    """The tiles of ``grid`` (columns, rows), row by row from the top left."""
    cols, rows = grid
    h, w = bgr.shape[:2]
    ys = [round(i * h / rows) for i in range(rows + 1)]
    xs = [round(j * w / cols) for j in range(cols + 1)]
    return [bgr[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] for r in range(rows) for c in range(cols)]


@dataclass(slots=True)
class FrameScores:
    """One frame's scores: each aspect on the whole frame, and the worst tile's overall score."""

    aspects: dict[str, float]
    worst_tile: dict[str, Any] | None = None  # quality, row, col, grid [columns, rows]
    tiles: list[float] | None = None  # every tile's overall score, row by row from the top left


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
    runtime: Runtime = "onnx"
    max_views: int = 128  # torch on CUDA: the largest batch a CUDA graph is captured for


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
        self.dir = Path(model_dir)
        self.options = options or SessionOptions()
        precision = self.options.precision
        self.manifest = m = verify_model_dir(self.dir, precision)
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
        self._batch = np.empty((0, 3, self.size, self.size), np.float32)  # score()'s, reused
        self.torch_encoder: TorchEncoder | None = None
        if self.options.runtime == "torch":
            from monitor.scoring.torch_backend import TorchEncoder

            device = "cuda" if self.options.device in ("auto", "cuda") and _cuda_in_torch() else "cpu"
            if self.options.device in ("cuda", "tensorrt") and device != "cuda":
                raise DeviceError(f"scoring.device {self.options.device} with runtime torch: torch sees no CUDA GPU")
            self.torch_encoder = TorchEncoder(self.dir, m, device, self.options.max_views, self.mean, self.std)
            self.provider = self.torch_encoder.provider
        else:
            self._ort_session(m)
        log.info("CLIP scorer: %s on %s (%s)", m.get("arch"), self.provider, self.options.precision)

    def _ort_session(self, m: dict) -> None:
        import onnxruntime as ort

        precision = self.options.precision
        onnx_name = ENCODER_FILES[precision]
        providers, missing = choose_providers(self.options.device, ort.get_available_providers())
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
        device = self.options.device
        if device != "auto" and self.provider != _PROVIDERS[device]:
            # The provider is in the build but could not start (no GPU, a driver or TensorRT
            # library missing): ONNX Runtime quietly dropped it.
            raise DeviceError(
                f"scoring.device {device}: ONNX Runtime could not start {_PROVIDERS[device]} (see its log above) "
                "and would run on the CPU; fix the GPU setup or set device: auto to fall back"
            )
        if device == "auto" and self.provider != "TensorrtExecutionProvider":
            why = [f"{ep} not in this onnxruntime build" for ep in missing]
            if self.provider != providers[0]:
                why.append(f"{providers[0]} did not start (see ONNX Runtime's log)")
            log.warning("CLIP scorer: device auto fell back to %s (%s)", self.provider, "; ".join(why))
        if precision == "fp16" and self.provider == "CPUExecutionProvider":
            log.warning("CLIP scorer: fp16 is a GPU format and slow on the CPU; use precision fp32 or int8 here")
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
        """open_clip's own pre-processing (centre crop): what the export checks parity on."""
        return preprocess(bgr, self.size, self.mean, self.std)

    def letterbox(self, bgr: np.ndarray) -> np.ndarray:
        """The whole picture as the scorer sees it."""
        return letterbox(bgr, self.size, self.mean, self.std)

    def embed_pictures(self, pictures: list[np.ndarray]) -> np.ndarray:
        """Unit embeddings of BGR pictures, each letterboxed to the model's input."""
        if self.torch_encoder is not None:
            return self.torch_encoder.embed(pictures)
        # Written in place into one reused buffer: stacking fresh arrays cost more than the
        # encoder of a small model (page faults on tens of MB per batch).
        if self._batch.shape[0] < len(pictures):
            self._batch = np.empty((len(pictures), 3, self.size, self.size), np.float32)
        batch = self._batch[: len(pictures)]
        for i, picture in enumerate(pictures):
            letterbox(picture, self.size, self.mean, self.std, out=batch[i])
        return self.embed(batch)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Unit embeddings of pre-processed (N, 3, S, S) inputs, through ONNX Runtime."""
        if self.torch_encoder is not None:
            raise RuntimeError("runtime torch pre-processes on its device: use embed_pictures")
        out = self.session.run(None, {self.input_name: batch})[0].astype(np.float32)
        return l2_normalize(out)

    def pair_scores(self, emb: np.ndarray, text: np.ndarray | None = None) -> np.ndarray:
        """(N, pairs): each pair's probability of its positive prompt (``text``: other embeddings
        of the same prompt set, such as the fixed ones of a learned model)."""
        text = self.text if text is None else text
        sims = np.einsum("nd,pkd->npk", emb, text) * self.logit_scale  # (N, pairs, 2)
        sims -= sims.max(axis=2, keepdims=True)
        e = np.exp(sims)
        return e[..., 0] / e.sum(axis=2)

    def aspect_scores(self, emb: np.ndarray, text: np.ndarray | None = None) -> np.ndarray:
        """(N, aspects): each aspect's mean over its pairs, in ``self.aspects`` order."""
        return self.pair_scores(emb, text) @ self._to_aspects

    def score(self, images: list[np.ndarray], tiles: Tiles = "off") -> list[FrameScores]:
        """Scores for BGR images (native pictures when tiles are on), all views in one batch.
        One thread at a time (the scorer worker): the batch buffer is reused."""
        if not images:
            return []
        pictures: list[np.ndarray] = []  # every view, in batch order
        spans: list[tuple[int, tuple[int, int] | None]] = []  # per image: its whole view's row, its grid
        for im in images:
            grid = tile_grid(im.shape[1], im.shape[0], tiles, self.size)
            spans.append((len(pictures), grid))
            if grid is None:
                pictures.append(im)
                continue
            # One resize of the native picture to where each tile fits the model's input: the
            # detail the tiles keep, at a fraction of resizing every tile from native size.
            h, w = im.shape[:2]
            scale = self.size / max(w / grid[0], h / grid[1])
            canvas = (
                cv2.resize(im, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else im
            )
            pictures.append(canvas)
            pictures.extend(cut_tiles(canvas, grid))
        aspects = self.aspect_scores(self.embed_pictures(pictures))
        overall = self.aspects.index(OVERALL)
        out = []
        for row, grid in spans:
            whole = {n: round(float(aspects[row, j]), 4) for j, n in enumerate(self.aspects)}
            worst = None
            if grid is not None:
                cols, rows = grid
                q = aspects[row + 1 : row + 1 + cols * rows, overall]
                k = int(np.argmin(q))
                worst = {"quality": round(float(q[k]), 4), "row": k // cols, "col": k % cols, "grid": [cols, rows]}
            out.append(FrameScores(whole, worst, None if grid is None else [round(float(v), 4) for v in q]))
        return out
