"""Every fault name an event can carry: one per picture check, plus the two that no check raises."""

from __future__ import annotations

from monitor.checks.registry import all_checks

STREAM_DOWN = "stream_down"  # the source failed, or no frame for stall_timeout_s (wall clock)
CLIP_QUALITY = "clip_quality"  # the CLIP-IQA overall score under scoring.min_quality

# Old name -> new name. Sinks that keep per-fault state outside vqmon (Home Assistant's retained
# discovery configs) clear the old name's entry so a renamed fault does not leave a dead sensor.
RENAMED_FAULTS = {"quality": CLIP_QUALITY}  # renamed 2026-11-27: "quality" is the CLIP score itself


def all_faults() -> list[str]:
    return [*all_checks(), CLIP_QUALITY, STREAM_DOWN]
