"""One scorer worker for all streams: frames from every stream are batched into one ONNX Runtime
call (up to max_batch, or whatever arrived within max_wait_ms), the way DeepStream batches for
the GPU. Scoring never blocks the checks: if it falls behind, each stream's oldest waiting frame
is dropped (counted), so memory never grows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.frames import Frame
from monitor.health import Beat
from monitor.metrics import SCORER_BATCH, SCORER_SECONDS
from monitor.queues import StreamMux
from monitor.ratelimit import worth_logging
from monitor.scoring.clip_iqa import ClipIqa, Tiles

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ScoreResult:
    stream: str
    stream_time: float
    wall_time: float
    scores: dict[str, float]  # each aspect, on the whole frame
    frame: Frame
    random_init: bool = False  # the model has random weights: the scores mean nothing
    worst_tile: dict[str, Any] | None = None  # with tiles on: quality, row, col, grid


class ScoringWorker(threading.Thread):
    def __init__(
        self,
        model: ClipIqa,
        deliver: Callable[[ScoreResult], None],
        max_batch: int = 16,
        max_wait_ms: float = 50.0,
        per_stream: int = 2,
        tiles: Tiles = "off",
    ) -> None:
        """``deliver``: where each result goes (the analysis loop's inbox; thread-safe).
        ``tiles``: see clip_iqa.tile_grid; tiles are cut from the native picture."""
        super().__init__(name="clip-scorer", daemon=True)
        self.model = model
        self._deliver = deliver
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.tiles = tiles
        self.inbox: StreamMux[Frame] = StreamMux(per_stream)
        self.batches = 0
        self.scored = 0
        self.largest_batch = 0
        self.errors = 0
        self.beat = Beat()
        self._stop_event = threading.Event()

    def submit(self, frame: Frame) -> None:
        self.inbox.put(frame.stream, frame)

    def dropped(self, stream: str) -> int:
        return self.inbox.dropped(stream)

    def stop(self) -> None:
        self._stop_event.set()
        self.inbox.close()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.beat()
            first = self.inbox.get(timeout=0.2)
            if first is None:
                continue
            batch = [first[1]]
            deadline = time.monotonic() + self.max_wait_s
            while len(batch) < self.max_batch:
                item = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                if item is None:
                    break
                batch.append(item[1])
            self.score_batch(batch)

    def score_batch(self, batch: list[Frame]) -> None:
        try:
            # Tiles need native detail: the full picture, converted here, off the analysis loop.
            t0 = time.perf_counter()
            images = [f.small if self.tiles == "off" else f.image for f in batch]
            scores = self.model.score(images, self.tiles)
            SCORER_SECONDS.observe(time.perf_counter() - t0)
            SCORER_BATCH.observe(len(batch))
        except Exception as exc:  # a failing session must not take monitoring down
            self.errors += 1
            if worth_logging(self.errors):
                log.error("CLIP scoring failed (%d times so far): %s", self.errors, exc)
            return
        self.batches += 1
        self.scored += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
        for f, s in zip(batch, scores, strict=True):
            self._deliver(
                ScoreResult(f.stream, f.stream_time, f.wall_time, s.aspects, f, self.model.random_init, s.worst_tile)
            )
