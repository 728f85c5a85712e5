"""Generated clip sets are cached: a clip is made again only when what it is made from changed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def spec_hash(version: int | str, spec: Any) -> str:
    """A short hash of a generator version and every field of a clip's (dataclass) spec."""
    full = json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str)
    return hashlib.sha256(f"{version}{full}".encode()).hexdigest()[:12]


def write_labels(path: Path, split: str, clips: list[dict[str, Any]]) -> Path:
    """A vqmon.labels/1 file of one generated set."""
    path.write_text(json.dumps({"schema": "vqmon.labels/1", "split": split, "clips": clips}, indent=1))
    return path


def make_cached(
    folder: Path,
    clips: list[tuple[str, str, Callable[[Path], object]]],
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Each (name, hash, make) makes folder/name.mp4 with make(path) unless a clip of that hash is
    already there (hashes.json, written after each clip so an interrupted run keeps its work)."""
    stamps = folder / "hashes.json"
    known: dict[str, str] = json.loads(stamps.read_text()) if stamps.is_file() else {}
    for k, (name, digest, make) in enumerate(clips):
        path = folder / f"{name}.mp4"
        if known.get(name) != digest or not path.is_file():
            make(path)
            known[name] = digest
            stamps.write_text(json.dumps(known, indent=0))
        if progress:
            progress(k + 1, len(clips))
