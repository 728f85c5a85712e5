"""audio_missing: the stream's sound stopped while its picture goes on, or a stream that must
have sound (``audio.enabled: true``) has no audio track. Capture decides what is missing (it
sees the packets): it hands over stretches without sound, and this check turns them into an
alert with the reason."""

from __future__ import annotations

from pydantic import Field

from monitor.checks.audio_base import AudioBlock, AudioCheck
from monitor.checks.base import CheckConfig, CheckResult
from monitor.checks.registry import register


class AudioMissingConfig(CheckConfig):
    raise_after_s: float = Field(2.0, ge=0)
    clear_after_s: float = Field(2.0, ge=0)


@register
class AudioMissing(AudioCheck):
    name = "audio_missing"
    Config = AudioMissingConfig

    def evaluate(self, block: AudioBlock) -> CheckResult:
        if block.samples is not None:
            return CheckResult(False)
        return CheckResult(True, "critical", {"reason": block.reason})
