"""Prompt embeddings without torch: the text encoder `vqmon export clip` wrote as ONNX and CLIP's
tokenizer, so a box re-embeds an edited prompt set (`vqmon prompts embed`, or at start-up when
`scoring.prompts` names another set than the model directory's embeddings came from).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from monitor.errors import VqmonError
from monitor.scoring.model_dir import (
    TEXT_ENCODER_FILE,
    TEXT_FILE,
    VOCAB_FILE,
    ModelError,
    has_text_encoder,
    load_manifest,
    sha256,
    verify_files,
)
from monitor.scoring.prompts import PromptSet
from monitor.scoring.tokenizer import ClipTokenizer

log = logging.getLogger(__name__)


class TextEncoder:
    def __init__(self, model_dir: str | Path, manifest: dict[str, Any]) -> None:
        import onnxruntime as ort

        d = Path(model_dir)
        if not has_text_encoder(manifest):
            raise ModelError(
                f"{d}: exported without a text encoder, so prompts cannot be re-embedded here; "
                "re-export it with this version of `vqmon export clip`"
            )
        verify_files(d, manifest, [TEXT_ENCODER_FILE, VOCAB_FILE])
        spec = manifest["text_encoder"]
        self.tokenizer = ClipTokenizer(d / VOCAB_FILE, int(spec.get("context_length", 77)))
        try:
            self.session = ort.InferenceSession(str(d / TEXT_ENCODER_FILE), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad graph
            raise ModelError(f"{d / TEXT_ENCODER_FILE}: ONNX Runtime cannot load it ({exc}); re-export") from None
        self.input_name = self.session.get_inputs()[0].name

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        out = self.session.run(None, {self.input_name: self.tokenizer(texts)})[0].astype(np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def embed(self, prompts: PromptSet) -> np.ndarray:
        """(pairs, 2, D): each pair's positive and negative prompt, in ``prompts.pairs`` order."""
        flat = [t for pair in prompts.pairs for t in pair]
        return self.embed_texts(flat).reshape(len(prompts.pairs), 2, -1)


def write_embeddings(
    model_dir: str | Path, prompts: PromptSet, embeddings: np.ndarray, learned: dict[str, Any] | None = None
) -> dict:
    """Replace the model directory's prompt embeddings and record which set they came from
    (``learned``: how `vqmon prompts learn` made them; plain embeddings drop that record).
    The embeddings file is swapped in before the manifest, each atomically: a daemon reading in
    between sees a checksum mismatch and a one-line error, never a half-written file."""
    d = Path(model_dir)
    manifest = load_manifest(d)
    if embeddings.shape[:2] != (len(prompts.pairs), 2):
        raise VqmonError(f"embeddings of shape {embeddings.shape} do not fit {len(prompts.pairs)} prompt pairs")
    dim = manifest.get("embed_dim")
    if dim is not None and embeddings.shape[2] != dim:
        raise VqmonError(f"embeddings of width {embeddings.shape[2]} do not fit this model ({dim})")
    _atomic(d / TEXT_FILE, lambda f: np.save(f, embeddings.astype(np.float32)))
    manifest.pop("prompt_pairs", None)
    manifest["prompts"] = prompts.to_manifest()
    if learned is None:
        manifest.pop("learned", None)
    else:
        manifest["learned"] = learned
    manifest["files"][TEXT_FILE] = {"sha256": sha256(d / TEXT_FILE), "bytes": (d / TEXT_FILE).stat().st_size}
    _atomic(d / "manifest.json", lambda f: f.write(json.dumps(manifest, indent=1).encode()))
    log.info("%s: %d prompt pairs embedded (%s, from %s)", d, len(prompts.pairs), prompts.name, prompts.source)
    return manifest


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
