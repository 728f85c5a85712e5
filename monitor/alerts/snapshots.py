"""Evidence: a JPEG of the frame that triggered each raise, with the alert's details beside it,
in bounded disk space."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from monitor.ratelimit import worth_logging

log = logging.getLogger(__name__)


def sidecars(jpeg: Path) -> tuple[Path, Path]:
    """The files kept beside a snapshot: the alert's details (what `vqmon ask` sends with the
    picture) and the follow-up conversation about it."""
    return jpeg.with_suffix(".json"), jpeg.with_suffix(".ask.json")


class SnapshotStore:
    """Writes <dir>/<stream>/<time>-<fault>-<id8>.jpg with the alert's details beside it
    (.json); removes the oldest snapshots, with what is beside them, past max_bytes."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int, quality: int = 85, max_width: int = 1280):
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.quality = quality
        self.max_width = max_width
        self._lock = threading.Lock()
        self._files: list[tuple[float, Path, int]] = []  # (mtime, path, size), oldest first
        self._total = 0
        self.write_errors = 0
        self.removed = 0
        self._scan()

    def _scan(self) -> None:
        if not self.dir.is_dir():
            return
        for p in self.dir.rglob("*.jpg"):
            try:
                st = p.stat()
                beside = sum(q.stat().st_size for q in sidecars(p) if q.is_file())
            except OSError:  # removed meanwhile, or unreadable: not ours to count
                continue
            self._files.append((st.st_mtime, p, st.st_size + beside))
        self._files.sort()
        self._total = sum(size for _, _, size in self._files)

    def save(
        self,
        image: np.ndarray,
        stream: str,
        fault: str,
        alert_id: str,
        when: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> str | None:
        """Save and return the path, or None (logged) if it could not be written: evidence is
        best-effort, the alert itself must never wait on or fail because of the disk.
        ``details``: the alert as JSON (fault, measurements, scores), written beside it."""
        h, w = image.shape[:2]
        if w > self.max_width:
            image = cv2.resize(image, (self.max_width, round(h * self.max_width / w)), interpolation=cv2.INTER_AREA)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(when or time.time()))
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", stream)
        path = self.dir / safe / f"{stamp}-{fault}-{alert_id[:8]}.jpg"
        try:
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                raise OSError("JPEG encoding failed")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(buf.tobytes())
            size = len(buf)
            if details is not None:
                text = json.dumps(details, default=str)
                sidecars(path)[0].write_text(text)
                size += len(text)
        except OSError as exc:
            self.write_errors += 1
            if worth_logging(self.write_errors):
                log.error("cannot write snapshot %s (%s); alerts go on without evidence", path, exc)
            return None
        with self._lock:
            self._files.append((time.time(), path, size))
            self._total += size
            while self._total > self.max_bytes and len(self._files) > 1:
                _, old, old_size = self._files.pop(0)
                self._total -= old_size
                try:
                    old.unlink()
                    self.removed += 1
                except OSError:
                    pass
                for beside in sidecars(old):
                    with contextlib.suppress(OSError):  # as for the picture: best effort
                        beside.unlink(missing_ok=True)
        return str(path)

    @property
    def total_bytes(self) -> int:
        return self._total
