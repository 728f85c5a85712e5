"""Capture: one thread per stream decodes video and hands sampled frames on."""

from monitor.capture.stats import CaptureStats
from monitor.capture.urls import classify, mask_credentials, source_label
from monitor.capture.worker import Backoff, CaptureWorker, open_decoder

__all__ = [
    "Backoff",
    "CaptureStats",
    "CaptureWorker",
    "classify",
    "mask_credentials",
    "open_decoder",
    "source_label",
]
