"""Capture: one thread per stream decodes video and hands sampled frames on."""

from monitor.capture.stats import CaptureStats
from monitor.capture.urls import classify, mask_credentials, source_label
from monitor.capture.worker import CaptureWorker, open_decoder
from monitor.ratelimit import Backoff

__all__ = [
    "Backoff",
    "CaptureStats",
    "CaptureWorker",
    "classify",
    "mask_credentials",
    "open_decoder",
    "source_label",
]
