"""A model directory as `vqmon export clip` writes it: its files, its manifest and their
checksums. Everything that reads or rewrites one goes through here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from monitor.errors import VqmonError
from monitor.scoring.prompts import MANIFEST_SCHEMA

# The image encoder's file per precision.
ENCODER_FILES: dict[str, str] = {
    "fp32": "image_encoder.onnx",
    "int8": "image_encoder.int8.onnx",
    "fp16": "image_encoder.fp16.onnx",
}
TEXT_FILE = "text_embeddings.npy"  # (pairs, 2, D): each prompt pair's two embeddings
TEXT_ENCODER_FILE = "text_encoder.onnx"
VOCAB_FILE = "bpe_vocab.txt.gz"  # CLIP's BPE merges, for the tokenizer
TORCH_FILE = "image_encoder.pt2"  # the image encoder as a torch.export program (export --torch)


class ModelError(VqmonError):
    """The model directory is missing, corrupt or does not match its manifest."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(model_dir: str | Path) -> dict[str, Any]:
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


def verify_files(d: Path, manifest: dict[str, Any], names: list[str], hint: str = "") -> None:
    """Each named file is listed in the manifest, present and intact."""
    for name in names:
        entry = manifest.get("files", {}).get(name)
        path = d / name
        if entry is None:
            raise ModelError(f"{d}: manifest lists no {name}{hint}")
        if not path.is_file():
            raise ModelError(f"{path}: missing; copy the whole model directory")
        if sha256(path) != entry["sha256"]:
            raise ModelError(f"{path}: checksum does not match manifest.json (corrupt or replaced); re-copy it")


def verify_model_dir(model_dir: str | Path, precision: str) -> dict[str, Any]:
    """The manifest, once the files a scorer of this precision needs are there and intact."""
    d = Path(model_dir)
    manifest = load_manifest(d)
    hint = f" (re-export with --{precision})" if precision != "fp32" else ""
    verify_files(d, manifest, [ENCODER_FILES[precision]], hint)
    verify_files(d, manifest, [TEXT_FILE])
    return manifest


def has_text_encoder(manifest: dict[str, Any]) -> bool:
    return isinstance(manifest.get("text_encoder"), dict) and TEXT_ENCODER_FILE in manifest.get("files", {})
