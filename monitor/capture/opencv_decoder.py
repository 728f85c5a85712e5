"""Decode with OpenCV: its FFmpeg backend, or a GStreamer pipeline string (Jetson hardware decode)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial

import cv2
import numpy as np

from monitor.capture.decoder import DecodedFrame
from monitor.capture.urls import SourceKind, file_path, file_problem, mask_credentials
from monitor.config import CaptureConfig
from monitor.errors import SourceError
from monitor.frames import analysis_size


def _small(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    size = analysis_size(w, h)
    return img if size == (w, h) else cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _identity(img: np.ndarray) -> np.ndarray:
    return img


class OpenCVDecoder:
    """Same interface as PyAVDecoder. OpenCV exposes no key-frame flag or corrupt-packet count,
    so keyframes_only falls back to treating every frame as a candidate."""

    def __init__(self, url: str, kind: SourceKind, cfg: CaptureConfig, keyframes_only: bool = False) -> None:
        self.cfg = cfg
        self.decode_errors = 0
        self._where = os.path.basename(file_path(url)) if kind == "file" else mask_credentials(url)
        target: str | int = file_path(url) if kind == "file" else url
        problem = file_problem(file_path(url)) if kind == "file" else None
        if problem:
            raise SourceError(problem)
        if kind == "v4l2":
            target = int(url.removeprefix("/dev/video"))
        backend = cv2.CAP_GSTREAMER if kind == "gstreamer" else cv2.CAP_ANY
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(cfg.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(cfg.read_timeout_s * 1000),
        ]
        self.cap = cv2.VideoCapture(target, backend, params)
        if not self.cap.isOpened():
            hint = " (this OpenCV build may lack GStreamer)" if kind == "gstreamer" else ""
            raise SourceError(f"{self._where}: OpenCV could not open the source{hint}")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.nominal_fps = float(fps) if fps and fps > 0 else None
        count = self.cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.total_frames = int(count) if count and count > 0 else None

    def frames(self) -> Iterator[DecodedFrame]:
        while True:
            ok, img = self.cap.read()
            if not ok or img is None:
                return
            msec = self.cap.get(cv2.CAP_PROP_POS_MSEC)
            h, w = img.shape[:2]
            yield DecodedFrame(
                msec / 1000.0 if msec >= 0 else None, False, w, h, partial(_small, img), partial(_identity, img)
            )

    def close(self) -> None:
        self.cap.release()
