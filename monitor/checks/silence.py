"""silence: dead air. Every sample of a channel stays below a level for raise_after_s, as
ffmpeg's silencedetect judges it (noise=-60dB, d=...), block by block.

By default the whole programme must be silent (every channel); with ``per_channel`` one dead
channel is enough ("left silent, right live": a broken cable or a mis-routed pair)."""

from __future__ import annotations

from pydantic import Field

from monitor.checks.audio_base import AudioBlock, AudioCheck, channel_names, dbfs
from monitor.checks.base import CheckConfig, CheckResult
from monitor.checks.registry import register


class SilenceConfig(CheckConfig):
    # Longer than a speaker's pause or a dramatic one; dead-air monitors use 2-10 s.
    raise_after_s: float = Field(3.0, ge=0)
    clear_after_s: float = Field(1.0, ge=0)
    level_dbfs: float = Field(-60.0, le=0, description="a channel whose samples all stay below this is silent")
    per_channel: bool = Field(False, description="raise when any channel is silent, not only all of them")


@register
class Silence(AudioCheck):
    name = "silence"
    Config = SilenceConfig
    config: SilenceConfig

    def evaluate(self, block: AudioBlock) -> CheckResult:
        if block.samples is None:
            return CheckResult(False)
        level = dbfs(block.peak)
        silent = level < self.config.level_dbfs
        active = bool(silent.any() if self.config.per_channel else silent.all())
        if not active:
            return CheckResult(False)
        names = channel_names(len(silent))
        m = {
            "peak_dbfs": [round(float(x), 1) for x in level],
            "silent_channels": [n for n, s in zip(names, silent, strict=True) if s],
        }
        live = [n for n, s in zip(names, silent, strict=True) if not s]
        if live:
            m["live_channels"] = live
        return CheckResult(True, "warning" if live else "critical", m)
