"""The CLIP image encoder in torch, for GPU boxes (`scoring.runtime: torch`).

`vqmon export clip --torch` writes the encoder as a `torch.export` program (`image_encoder.pt2`):
the daemon needs torch, not open_clip. On CUDA the program runs in fp16 and each batch size is
served by a CUDA graph captured once per bucket (1, 2, 4, 8, ... up to the scorer's max batch;
a batch is padded to its bucket), so a call is one graph replay instead of hundreds of kernel
launches. Pictures go up as uint8 through pinned host memory and an asynchronous copy, and the
letterbox (resize, pad with the mean colour, normalise) runs on the GPU, so the CPU stays free
for decoding. On the CPU (tests, a box without a GPU) the same program runs eagerly in fp32.

A `.pt2` is tied to the torch release that wrote it: loading it with another one is refused
with a one-line error (export on the box, or with the torch, the daemon runs).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from monitor.errors import VqmonError
from monitor.scoring.clip_iqa import letterbox_box
from monitor.scoring.model_dir import TORCH_FILE, ModelError, verify_files

log = logging.getLogger(__name__)


def _torch():
    try:
        import torch
    except ImportError:
        raise VqmonError(
            "scoring.runtime torch needs torch on this box (pip install torch, the build for its CUDA); "
            "or use runtime: onnx"
        ) from None
    return torch


def _release(version: str) -> str:
    """'2.11.0+cu130' -> '2.11': what a .pt2 is tied to."""
    return ".".join(version.split("+")[0].split(".")[:2])


def check_program(model_dir: Path, manifest: dict[str, Any]) -> None:
    """The directory has a torch.export program, intact, written by this box's torch release."""
    torch = _torch()
    entry = manifest.get("torch")
    if not isinstance(entry, dict) or TORCH_FILE not in manifest.get("files", {}):
        raise ModelError(f"{model_dir}: exported without --torch; re-export with `vqmon export clip --torch ...`")
    verify_files(model_dir, manifest, [TORCH_FILE])
    wrote, here = _release(str(entry.get("version", "?"))), _release(torch.__version__)
    if wrote != here:
        raise ModelError(
            f"{model_dir / TORCH_FILE} was written by torch {wrote}, this box has torch {here}: export it "
            "with the torch the daemon runs (`vqmon export clip --torch` on this box)"
        )


def buckets(max_batch: int) -> list[int]:
    """Powers of two up to the first one that holds ``max_batch``."""
    out = [1]
    while out[-1] < max_batch:
        out.append(out[-1] * 2)
    return out


class TorchEncoder:
    """Embeds lists of BGR uint8 pictures (any sizes), letterboxed to the model's input."""

    def __init__(
        self, model_dir: Path, manifest: dict[str, Any], device: str, max_batch: int, mean: np.ndarray, std: np.ndarray
    ) -> None:
        torch = _torch()
        self.torch = torch
        check_program(model_dir, manifest)
        if device == "cuda" and not torch.cuda.is_available():
            raise VqmonError("scoring.device cuda with runtime torch: torch sees no CUDA GPU on this box")
        self.device = torch.device("cuda" if device == "cuda" else "cpu")
        self.cuda = self.device.type == "cuda"
        self.dtype = torch.float16 if self.cuda else torch.float32
        try:
            program = torch.export.load(str(model_dir / TORCH_FILE))
        except Exception as exc:  # torch raises many kinds for a file it cannot read
            where = model_dir / TORCH_FILE
            raise ModelError(f"{where}: torch cannot load it ({type(exc).__name__}); re-export") from None
        self.module = program.module().to(self.device)
        if self.cuda:
            self.module = self.module.half()
        self.size = int(manifest["input_size"])
        self.mean = torch.tensor(np.asarray(mean, np.float32).reshape(3), device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(np.asarray(std, np.float32).reshape(3), device=self.device).view(1, 3, 1, 1)
        self.buckets = buckets(max_batch)
        self._graphs: dict[int, tuple[Any, Any, Any]] = {}  # bucket -> (graph, input, output)
        self._staging: Any = None  # pinned host memory the pictures go up through
        self.provider = f"torch {torch.__version__} {'CUDA graphs, fp16' if self.cuda else 'CPU, fp32'}"

    # -- pre-processing on the device ---------------------------------------------------------

    def _letterbox(self, pictures: list[np.ndarray], out) -> None:
        """Each picture into ``out[i]`` (normalised, mean-coloured bands), resized on the device.
        Pictures of one size (a stream's frames, a frame's tiles) go up and are resized together:
        a handful of copies and kernels per size, not per picture."""
        torch = self.torch
        f = torch.nn.functional
        out.zero_()  # zero = the mean colour once normalised
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(pictures):
            groups.setdefault(img.shape, []).append(i)
        # One pinned staging buffer for the whole call; the previous call finished with its
        # result copied back, so reusing it cannot race an upload still in flight.
        total = sum(pictures[idx[0]].nbytes * len(idx) for idx in groups.values())
        if self._staging is None or self._staging.numel() < total:
            self._staging = torch.empty(total, dtype=torch.uint8, pin_memory=self.cuda)
        staged = self._staging.numpy()
        offset = 0
        for shape, idx in groups.items():
            n = len(idx)
            size = pictures[idx[0]].nbytes * n
            view = staged[offset : offset + size].reshape(n, *shape)
            for k, i in enumerate(idx):
                view[k] = pictures[i]
            x = self._staging[offset : offset + size].to(self.device, non_blocking=True).view(n, *shape)
            offset += size
            x = x.permute(0, 3, 1, 2)[:, [2, 1, 0]].to(torch.float32).div_(255.0)  # BGR NHWC -> RGB NCHW
            h, w = shape[:2]
            scale, nh, nw, y0, x0 = letterbox_box(h, w, self.size)
            if (nh, nw) != (h, w):
                # Antialiased when shrinking, as an area resize averages; bicubic when enlarging.
                x = f.interpolate(x, size=(nh, nw), mode="bilinear" if scale < 1 else "bicubic",
                                  antialias=scale < 1, align_corners=False)  # fmt: skip
            x = (x - self.mean) / self.std
            rows = torch.as_tensor(idx, device=self.device)
            out[rows, :, y0 : y0 + nh, x0 : x0 + nw] = x.to(out.dtype)

    # -- the encoder ------------------------------------------------------------------------------

    def _graph(self, bucket: int):
        """The CUDA graph for one bucket, captured on first use (after a warm-up on a side stream,
        as CUDA graph capture requires)."""
        torch = self.torch
        if bucket not in self._graphs:
            static_in = torch.zeros(bucket, 3, self.size, self.size, device=self.device, dtype=self.dtype)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.inference_mode():
                for _ in range(2):
                    self.module(static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), torch.inference_mode():
                static_out = self.module(static_in)
            self._graphs[bucket] = (graph, static_in, static_out)
            log.info("CLIP scorer: CUDA graph captured for batch %d", bucket)
        return self._graphs[bucket]

    def embed(self, pictures: list[np.ndarray]) -> np.ndarray:
        """Unit embeddings, one row per picture."""
        torch = self.torch
        n = len(pictures)
        rows = []
        with torch.inference_mode():
            for start in range(0, n, self.buckets[-1]):
                part = pictures[start : start + self.buckets[-1]]
                if self.cuda:
                    bucket = next(b for b in self.buckets if b >= len(part))
                    graph, static_in, static_out = self._graph(bucket)
                    self._letterbox(part, static_in)
                    graph.replay()
                    out = static_out[: len(part)]
                else:
                    batch = torch.empty(len(part), 3, self.size, self.size, device=self.device, dtype=self.dtype)
                    self._letterbox(part, batch)
                    out = self.module(batch)
                rows.append(out.float().cpu().numpy())
        emb = np.concatenate(rows)
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
