"""One YAML file validated into typed models, with errors that name the key and the fix.

Layering for each stream (later wins): the built-in defaults of the models, the config's
``defaults:`` section, the stream's profile preset (``monitor/profiles/<name>.yaml``; choosing a
profile for a stream is more specific than the global defaults), and the stream's own keys.
``sample`` is replaced as a whole rather than merged, because its modes are mutually exclusive.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import time
import types
import typing
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator
from pydantic_core import ErrorDetails

from monitor.checks import registry as check_registry
from monitor.errors import ConfigError
from monitor.faults import STREAM_DOWN
from monitor.scoring.clip_iqa import Device, Precision, Runtime

if typing.TYPE_CHECKING:
    from monitor.sinks import Sink

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ATOMIC_SECTIONS = ("sample",)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class SampleConfig(Strict):
    """Which decoded frames go on to the checks. Exactly one mode; default every 5th frame."""

    # The upper bounds catch typos: more than an hour between samples is a stream never checked.
    every_n: int | None = Field(None, ge=1, le=100_000, description="send every Nth decoded frame")
    every_s: float | None = Field(
        None, gt=0, le=3600, description="send one frame per this many seconds of stream time"
    )
    keyframes_only: bool = Field(False, description="decode and send only key frames (cheapest)")

    @model_validator(mode="after")
    def _one_mode(self) -> SampleConfig:
        modes = [m for m in ("every_n", "every_s") if getattr(self, m) is not None]
        if self.keyframes_only:
            modes.append("keyframes_only")
        if len(modes) > 1:
            raise ValueError(f"choose one sampling mode, not {' and '.join(modes)}")
        if not modes:
            self.every_n = 5
        return self


class ReconnectConfig(Strict):
    initial_s: float = Field(1.0, gt=0)
    max_s: float = Field(30.0, gt=0)
    jitter: float = Field(0.2, ge=0, le=1, description="± fraction of randomness added to each wait")


class CaptureConfig(Strict):
    decoder: Literal["pyav", "opencv"] = "pyav"
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    open_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(5.0, gt=0)
    stall_timeout_s: float = Field(5.0, gt=0, description="no decoded frame for this long -> stream_down")
    reconnect: ReconnectConfig = ReconnectConfig()
    queue_size: int = Field(
        0,
        ge=0,
        description="sampled frames buffered per stream, the oldest dropped when full; 0 = automatic: 8 while "
        "there are fewer streams than CPU cores, 4 up to 8 streams a core, 3 beyond (each queued frame keeps "
        "its full-size picture, 1.8 MB at 720p)",
    )
    loop: bool = Field(False, description="files: start again at the end (a clip as a live camera)")
    realtime: bool = Field(False, description="files: pace frames at their timestamps")
    threads: int = Field(
        0,
        ge=0,
        description="decoder threads; 0 = automatic: ffmpeg chooses while there are fewer streams than CPU "
        "cores, one per decoder beyond (the streams then share the cores)",
    )
    options: dict[str, str] = Field(default_factory=dict, description="extra ffmpeg/demuxer options")


@cache
def checks_config_model() -> type[BaseModel]:
    """A model with one field per registered check, so unknown check names fail like unknown keys."""
    fields: dict[str, Any] = {
        name: (cls.Config, Field(default_factory=cls.Config)) for name, cls in check_registry.all_checks().items()
    }
    return create_model("ChecksConfig", __base__=Strict, **fields)


class AudioConfig(Strict):
    """The stream's sound, for the audio checks (silence, loudness, clipping, audio_missing)."""

    enabled: bool | Literal["auto"] = Field(
        "auto",
        description="auto: decode the sound when the stream has a track; true: a track is expected "
        "(its absence is audio_missing); false: never decode it",
    )
    stream: int = Field(0, ge=0, description="which audio track, counting from 0")
    rate: int = Field(48000, ge=8000, le=192000, description="every track is resampled once to this rate")
    chunk_s: float = Field(
        0.5, gt=0, le=5, description="sound is handed from capture to the checks in stretches this long"
    )
    block_s: float = Field(0.1, gt=0, le=1, description="the audio checks judge the sound in blocks this long")
    missing_after_s: float = Field(
        1.0,
        gt=0,
        description="video this far ahead of the last sound (a muxer interleaves the two loosely) is a stretch "
        "without sound",
    )

    @model_validator(mode="after")
    def _block_fits(self) -> AudioConfig:
        if self.block_s > self.chunk_s:
            raise ValueError(f"block_s ({self.block_s:g}) must not exceed chunk_s ({self.chunk_s:g})")
        return self


class StreamDownConfig(Strict):
    severity: Literal["warning", "critical"] = "critical"
    raise_after_s: float = Field(
        0.0, ge=0, description="a site with a flaky uplink: ignore outages shorter than this (after the stall timeout)"
    )


class AlertsConfig(Strict):
    cooldown_s: float = Field(5.0, ge=0, description="after a clear, the same fault may not raise again for this long")
    max_raises_per_minute: int = Field(12, ge=1, description="per stream; further raises wait (counted)")
    root_causes: list[str] = Field(
        default_factory=lambda: [
            "stream_down",
            "no_signal",
            "black",
            "obstruction",
            "freeze",
            "blocking",
            "underexposed",
            "overexposed",
            "audio_missing",
            "silence",
            "clipping",
        ],
        description="while one of these is present, faults after it (and all others) are not raised; picture "
        "faults explain only picture faults, sound faults only sound faults, stream_down both",
    )

    @field_validator("root_causes")
    @classmethod
    def _known_faults(cls, v: list[str]) -> list[str]:
        known = {STREAM_DOWN, *check_registry.all_checks()}
        unknown = [f for f in v if f not in known]
        if unknown:
            raise ValueError(f"unknown fault(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return v


class SnapshotsConfig(Strict):
    enabled: bool = True
    max_mb: float = Field(200.0, gt=0, description="oldest snapshots are removed past this total")
    quality: int = Field(85, ge=10, le=100)
    max_width: int = Field(1280, ge=64)


class StreamScoringConfig(Strict):
    """One stream's CLIP-IQA settings; an unset field takes the global `scoring` value."""

    enabled: bool = Field(True, description="false: never send this stream's frames to the CLIP scorer")
    every_s: float | None = Field(None, gt=0)
    min_quality: float | None = Field(None, ge=0, le=1)
    raise_after_s: float | None = Field(None, ge=0)
    clear_after_s: float | None = Field(None, ge=0)


if typing.TYPE_CHECKING:
    # One field per registered check, known only once the registry has loaded: read by name
    # (getattr(settings.checks, name)), as the pipeline does.
    ChecksConfig = BaseModel
else:
    ChecksConfig = checks_config_model()


_Rel = Annotated[float, Field(ge=0.0, le=1.0)]


class MaskConfig(Strict):
    """A part of the picture the checks do not look at (an OSD clock, a channel logo, a moving
    tree), in coordinates relative to the picture: 0,0 top left, 1,1 bottom right."""

    name: str | None = None
    rect: tuple[_Rel, _Rel, _Rel, _Rel] | None = Field(None, description="[x, y, width, height]")
    polygon: list[tuple[_Rel, _Rel]] | None = Field(None, description="[[x, y], ...], three points or more")

    @model_validator(mode="after")
    def _one_shape(self) -> MaskConfig:
        if (self.rect is None) == (self.polygon is None):
            raise ValueError("give either rect: [x, y, width, height] or polygon: [[x, y], ...]")
        if self.polygon is not None and len(self.polygon) < 3:
            raise ValueError("polygon: needs three points or more")
        return self

    def points(self) -> list[tuple[float, float]]:
        if self.rect is not None:
            x, y, w, h = self.rect
            return [(x, y), (min(1.0, x + w), y), (min(1.0, x + w), min(1.0, y + h)), (x, min(1.0, y + h))]
        assert self.polygon is not None
        return list(self.polygon)


HOURS_RE = r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d"


def in_hours(span: str, wall_time: float) -> bool:
    """Whether local time at ``wall_time`` lies in "HH:MM-HH:MM" (which may pass midnight)."""
    t = time.localtime(wall_time)
    now = t.tm_hour * 60 + t.tm_min
    a, b = (int(x[:2]) * 60 + int(x[3:]) for x in span.split("-"))
    return (a <= now < b) if a <= b else (now >= a or now < b)


class NightConfig(Strict):
    """A stream judged by another profile at night: by the clock, or by its picture's brightness
    (an IR camera switching over), with hysteresis so dusk does not flip it back and forth."""

    profile: str = Field("night", description="the profile preset whose checks apply at night (monitor/profiles)")
    hours: str | None = Field(None, description='local time "HH:MM-HH:MM" (may pass midnight), e.g. 19:30-06:45')
    dark_below: float | None = Field(
        None, ge=0, le=255, description="...or: night once the picture's mean luma stays below this for hold_s"
    )
    light_above: float | None = Field(
        None, ge=0, le=255, description="...and day again once it stays above this for hold_s"
    )
    hold_s: float = Field(60.0, ge=0, description="stream time the brightness must stay past a level to switch")

    @field_validator("hours")
    @classmethod
    def _span(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(HOURS_RE, v):
            raise ValueError(f"{v!r}: write HH:MM-HH:MM, e.g. 19:30-06:45")
        return v

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, v: str) -> str:
        if v not in profiles():
            raise ValueError(f"unknown profile {v!r} (known: {', '.join(profiles())})")
        return v

    @model_validator(mode="after")
    def _one_way(self) -> NightConfig:
        by_luma = self.dark_below is not None or self.light_above is not None
        if (self.hours is None) == (not by_luma):
            raise ValueError("say when night is: hours, or dark_below and light_above (not both)")
        if by_luma and (self.dark_below is None or self.light_above is None):
            raise ValueError("dark_below and light_above go together (the gap between them is the hysteresis)")
        if by_luma and self.light_above <= self.dark_below:  # type: ignore[operator]
            raise ValueError(f"light_above ({self.light_above:g}) must exceed dark_below ({self.dark_below:g})")
        return self


class ScheduleConfig(Strict):
    """When a stream's alerts may wake someone, and when it is judged as at night."""

    quiet_hours: list[str] = Field(
        default_factory=list,
        description='local times "HH:MM-HH:MM" (may pass midnight): alerts are recorded and published, not notified',
    )

    night: NightConfig | None = Field(None, description="judge the stream by another profile's checks at night")

    @field_validator("quiet_hours")
    @classmethod
    def _spans(cls, v: list[str]) -> list[str]:
        for span in v:
            if not re.fullmatch(HOURS_RE, span):
                raise ValueError(f"{span!r}: write HH:MM-HH:MM, e.g. 22:00-06:30")
        return v

    def quiet_at(self, wall_time: float) -> bool:
        return any(in_hours(span, wall_time) for span in self.quiet_hours)


class StreamSettings(Strict):
    """Everything a stream's analysis is configured by, after layering (see the module doc)."""

    profile: str = "default"
    sample: SampleConfig = Field(default_factory=SampleConfig)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    stream_down: StreamDownConfig = Field(default_factory=StreamDownConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    scoring: StreamScoringConfig = Field(default_factory=StreamScoringConfig)
    masks: list[MaskConfig] = Field(
        default_factory=list, description="parts of the picture every check ignores (the fix for a false alarm)"
    )
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)

    def night_settings(self) -> StreamSettings | None:
        """The settings the stream is judged by at night (schedule.night): the night profile's
        preset layered over these, for the checks and alerts; None without a night schedule."""
        night = self.schedule.night
        if night is None:
            return None
        preset = _profile_preset(night.profile)
        day = self.model_dump(include=set(StreamSettings.model_fields))
        merged = _deep_merge(day, {k: v for k, v in preset.items() if k in ("checks", "alerts")})
        return _validate(StreamSettings, merged, f"schedule.night (profile {night.profile})")


class StreamConfig(StreamSettings):
    name: str = Field(pattern=NAME_RE, description="unique; used in events, topics and file names")
    url: str = Field(min_length=1, description="rtsp://, rtsps://, http(s)://, a file path or /dev/videoN")
    enabled: bool = True


class SinkConfig(Strict):
    """One sink's section under ``sinks:``. ``build`` makes the sink; it imports the sink's
    module only then, so a disabled sink's libraries are never loaded (and the sinks, which
    read their config models from here, do not import in a circle)."""

    enabled: bool = True

    def build(self, state_dir: str) -> Sink:
        raise NotImplementedError


class ConsoleSinkConfig(SinkConfig):
    target: Literal["stdout", "stderr"] = "stdout"

    def build(self, state_dir: str) -> Sink:
        import sys

        from monitor.sinks.console import ConsoleSink

        return ConsoleSink(sys.stderr if self.target == "stderr" else None)


class JsonlSinkConfig(SinkConfig):
    path: str = "alerts.jsonl"

    def build(self, state_dir: str) -> Sink:
        from monitor.sinks.jsonl import JsonlSink

        return JsonlSink(self.path)


class IqaConfig(Strict):
    """BRISQUE/NIQE no-reference scores (lower is better): in raised alerts and a periodic report."""

    brisque: bool = True
    niqe: bool = True
    brisque_model_dir: str | None = Field(
        None, description="folder with brisque_model_live.yml/brisque_range_live.yml (default: Debian's opencv-data)"
    )
    on_raise: bool = Field(True, description="add the scores of the triggering frame to each raise")
    report_every_s: float = Field(300.0, ge=0, description="per-stream scores this often (stream time); 0 = never")


_TileCount = Annotated[int, Field(ge=1, le=8)]


class ScoringConfig(Strict):
    """The CLIP-IQA scorer: one ONNX Runtime session batching frames from every stream."""

    model_dir: str | None = Field(None, description="from `vqmon export clip`; none = no CLIP scoring")
    runtime: Runtime = Field(
        "onnx",
        description="onnx (ONNX Runtime: TensorRT/CUDA/CPU, Jetson) or torch (GPU boxes: CUDA graphs, fp16; "
        "export with --torch)",
    )
    device: Device = "auto"
    precision: Precision = Field(
        "fp32", description="fp16 is for GPUs (export with --fp16); int8 for CPUs (export with --int8)"
    )
    threads: int = Field(0, ge=0, description="CPU threads for ONNX Runtime; 0 lets it choose")
    trt_cache_dir: str | None = Field(None, description="TensorRT engine cache (default: beside the model)")
    prompts: str | None = Field(
        None,
        description="prompt set (YAML file, see configs/prompts/clip_iqa.yaml); none = the one the model's "
        "embeddings were made from. Another set is embedded at start-up with the model's text encoder",
    )
    tiles: Literal["auto", "off"] | tuple[_TileCount, _TileCount] = Field(
        "auto",
        description="also score a grid of tiles cut from the native picture (auto: 3x2 for 16:9; off; "
        "or [columns, rows]): the worst tile's score and position are reported",
    )
    min_tile_quality: float | None = Field(
        None, ge=0, le=1, description="`clip_quality` also when the worst tile scores below this; none = reported only"
    )
    every_s: float = Field(1.0, gt=0, description="score one frame per stream this often (stream time)")
    max_batch: int = Field(16, ge=1)
    max_wait_ms: float = Field(50.0, ge=0, description="wait this long for more frames to fill a batch")
    min_quality: float = Field(0.3, ge=0, le=1, description="`clip_quality` fault below this overall score")
    raise_after_s: float = Field(5.0, ge=0)
    clear_after_s: float = Field(10.0, ge=0)

    @field_validator("tiles", mode="before")
    @classmethod
    def _tiles(cls, v: Any) -> Any:
        # One clear message instead of one per member of the union.
        if v in ("auto", "off"):
            return v
        if isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(n, int) and 1 <= n <= 8 for n in v):
            return tuple(v)
        raise ValueError(f"must be auto, off, or [columns, rows] with 1-8 each (got {v!r})")

    def for_stream(self, own: StreamScoringConfig) -> ScoringConfig | None:
        """These settings with a stream's overrides applied; None when the stream opts out."""
        if not own.enabled:
            return None
        return self.model_copy(update={k: v for k, v in own.model_dump(exclude={"enabled"}).items() if v is not None})


class MqttTlsConfig(Strict):
    ca_file: str | None = Field(None, description="CA certificate that signed the broker's certificate")
    cert_file: str | None = Field(None, description="client certificate, for brokers that require one")
    key_file: str | None = None
    insecure: bool = Field(False, description="skip certificate verification (never in production)")


class HomeAssistantConfig(Strict):
    enabled: bool = False
    discovery_prefix: str = "homeassistant"


class MqttConfig(SinkConfig):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    client_id: str = "vqmon"
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    keepalive_s: int = Field(30, ge=5)
    username: str | None = None
    password: str | None = Field(
        None, description="use ${ENV_VAR}: never written in the file, never logged", repr=False
    )
    tls: MqttTlsConfig | None = None
    topic_prefix: str = Field("vqmon", pattern=r"^[^#+]+$")
    outbox_max_messages: int = Field(100_000, ge=10)
    home_assistant: HomeAssistantConfig = HomeAssistantConfig()
    publish_snapshots: bool = Field(False, description="JPEG of the latest raise on <prefix>/<stream>/snapshot")
    availability_topic: str | None = Field(
        None, description="online/offline of this daemon (default <prefix>/available; a shard: .../<i>-of-<n>)"
    )

    def build(self, state_dir: str) -> Sink:
        from monitor.sinks.mqtt import MqttSink

        return MqttSink(self, state_dir)


class EscalationConfig(Strict):
    """A vision-language model (OpenAI-compatible chat completions) writes a diagnosis per alert."""

    enabled: bool = False
    base_url: str = Field("http://127.0.0.1:11434/v1", description="Ollama, vLLM, llama.cpp server, LM Studio, ...")
    model: str = "llava"
    followup_model: str | None = Field(None, description="model for `vqmon ask` follow-ups (default: model)")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    timeout_s: float = Field(60.0, gt=0)
    image_size: int = Field(768, ge=64, description="longest side of the JPEG sent")
    prompt_file: str | None = Field(None, description="system prompt text file (default: built in)")
    queue_size: int = Field(16, ge=1, description="waiting escalations; more are skipped and counted")
    max_concurrency: int = Field(1, ge=1, le=16, description="requests in flight at once")
    min_interval_s: float = Field(300.0, ge=0, description="at most one call per (stream, fault) this often")
    max_calls_per_minute: int = Field(10, ge=1)


EventName = Literal["raise", "update", "clear"]
ALL_EVENTS: tuple[EventName, ...] = ("raise", "update", "clear")
NOTIFY_EVENTS: tuple[EventName, ...] = ("raise", "clear")  # an update (a diagnosis) is no news on a phone


class WebhookSinkConfig(SinkConfig):
    enabled: bool = False
    url: str = Field("", description="http(s):// endpoint that receives each event as a POST of its JSON")
    secret: str | None = Field(None, description="HMAC-SHA256 key for X-Vqmon-Signature (use ${ENV_VAR})", repr=False)
    events: list[EventName] = Field(default_factory=lambda: list(ALL_EVENTS))
    timeout_s: float = Field(10.0, gt=0)
    outbox_max_messages: int = Field(10_000, ge=10)

    @model_validator(mode="after")
    def _needs_url(self) -> WebhookSinkConfig:
        if self.enabled and not re.match(r"^https?://", self.url):
            raise ValueError("url: an http:// or https:// URL is needed when the webhook is enabled")
        return self

    def build(self, state_dir: str) -> Sink:
        from monitor.sinks.webhook import WebhookSink

        return WebhookSink(self, state_dir)


class NotifySinkConfig(SinkConfig):
    enabled: bool = False
    urls: list[str] = Field(
        default_factory=list, description="apprise URLs: mailto://, slack://, tgram://, ntfy://, json://... "
    )
    events: list[EventName] = Field(default_factory=lambda: list(NOTIFY_EVENTS))
    min_severity: Literal["warning", "critical"] = "warning"
    title: str = Field("vqmon {event_upper} {severity}: {stream} {fault}", description="template: {field} of the event")
    body: str = Field("{source}: {fault} {event} at {stream_time:.1f}s. {measurements} {summary}")
    max_per_minute: int = Field(6, ge=1, description="per stream; more are counted and not sent")
    timeout_s: float = Field(20.0, gt=0)
    outbox_max_messages: int = Field(1_000, ge=10)

    @model_validator(mode="after")
    def _needs_urls(self) -> NotifySinkConfig:
        if self.enabled and not self.urls:
            raise ValueError("urls: at least one apprise URL is needed when notify is enabled")
        return self

    def build(self, state_dir: str) -> Sink:
        from monitor.sinks.notify import NotifySink

        return NotifySink(self, state_dir)


class SinksConfig(Strict):
    """A new sink: its module under monitor/sinks/, its SinkConfig here, one field below."""

    console: ConsoleSinkConfig = ConsoleSinkConfig()
    jsonl: JsonlSinkConfig = JsonlSinkConfig(enabled=False)
    mqtt: MqttConfig = MqttConfig()
    webhook: WebhookSinkConfig = WebhookSinkConfig()
    notify: NotifySinkConfig = NotifySinkConfig()

    def enabled(self) -> list[SinkConfig]:
        sections = (getattr(self, name) for name in type(self).model_fields)
        return [s for s in sections if isinstance(s, SinkConfig) and s.enabled]


class EvidenceConfig(Strict):
    """A short MP4 around each raise, cut from the stream's compressed packets (no re-encode)."""

    clip: bool = Field(False, description="keep pre_s of packets per stream and write a clip with each raise")
    pre_s: float = Field(10.0, gt=0, le=120, description="seconds before the raise (from the key frame before)")
    post_s: float = Field(5.0, ge=0, le=120, description="seconds after the raise")
    max_mb: float = Field(1000.0, gt=0, description="clips under <state_dir>/clips; the oldest go past this")


class HttpConfig(Strict):
    """The daemon's local HTTP endpoint: /metrics, /healthz, /api/status."""

    enabled: bool = True
    bind: str = Field("127.0.0.1", description="0.0.0.0 to reach it from other hosts (then set a token)")
    port: int = Field(9310, ge=0, le=65535, description="0 picks a free port (tests)")
    token: str | None = Field(None, description="require 'Authorization: Bearer TOKEN' (e.g. ${VQMON_HTTP_TOKEN})")


class Config(Strict):
    state_dir: str = "state"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object per log line")
    http: HttpConfig = HttpConfig()
    evidence: EvidenceConfig = EvidenceConfig()
    defaults: dict[str, Any] = Field(default_factory=dict)
    streams: list[StreamConfig] = Field(default_factory=list)
    sinks: SinksConfig = SinksConfig()
    snapshots: SnapshotsConfig = SnapshotsConfig()
    iqa: IqaConfig = IqaConfig()
    scoring: ScoringConfig = ScoringConfig()
    escalation: EscalationConfig = EscalationConfig()
    stats_interval_s: float = Field(30.0, gt=0, description="how often per-stream counters are logged")

    def stream_settings(self, profile: str | None = None) -> StreamSettings:
        """Settings for a stream that is not in the config (files given to `vqmon analyze`)."""
        stream_raw = {"profile": profile} if profile else {}
        return _validate(StreamSettings, _layer(stream_raw, self.defaults), "defaults")


# --------------------------------------------------------------------------- loading


def profiles() -> list[str]:
    folder = resources.files("monitor") / "profiles"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _profile_preset(name: str) -> dict[str, Any]:
    path = resources.files("monitor") / "profiles" / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(name)
    return yaml.safe_load(path.read_text()) or {}


def _deep_merge(base: dict[str, Any], over: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not (depth == 0 and key in ATOMIC_SECTIONS):
            out[key] = _deep_merge(out[key], value, depth + 1)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _layer(stream_raw: dict[str, Any], defaults_raw: dict[str, Any] | None = None, where: str = "") -> dict:
    defaults_raw = defaults_raw or {}
    profile = stream_raw.get("profile", defaults_raw.get("profile", "default"))
    try:
        preset = _profile_preset(str(profile))
    except KeyError:
        raise ConfigError(
            f"{where or 'defaults'}.profile: unknown profile {profile!r} (known: {', '.join(profiles())})"
        ) from None
    return _deep_merge(_deep_merge(defaults_raw, preset), stream_raw)


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute_env(node: Any, path: str) -> Any:
    """Replace ${VAR} and ${VAR:-default} in string values, so secrets stay out of the file."""
    if isinstance(node, dict):
        return {k: _substitute_env(v, _join(path, k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute_env(v, f"{path}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def repl(m: re.Match[str]) -> str:
            value = os.environ.get(m.group(1))
            if value is None:
                if m.group(2) is None:
                    raise ConfigError(
                        f"{path}: environment variable {m.group(1)} is not set "
                        f"(export it, or write ${{{m.group(1)}:-default}})"
                    )
                return m.group(2)
            return value

        return _ENV_RE.sub(repl, node)
    return node


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    if origin in (list, dict):
        return _unwrap(typing.get_args(annotation)[-1])
    return [annotation]


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names valid at the parent of ``loc`` (for 'did you mean' hints)."""
    candidates: list[Any] = [model]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        nxt = []
        for cand in candidates:
            if isinstance(cand, type) and issubclass(cand, BaseModel) and part in cand.model_fields:
                nxt.extend(_unwrap(cand.model_fields[part].annotation))
        candidates = nxt
    for cand in candidates:
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            return list(cand.model_fields)
    return []


def _describe(err: ErrorDetails, model: type[BaseModel]) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    given = err.get("input")
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        allowed = _allowed_keys(model, err["loc"])
        near = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        return f"unknown key ({hint}allowed: {', '.join(allowed)})" if allowed else "unknown key"
    if kind == "missing":
        return "required key is missing"
    bounds = {
        "greater_than_equal": ("≥", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("≤", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        sym, key = bounds[kind]
        return f"must be {sym} {ctx.get(key)} (got {given!r})"
    msg = str(err["msg"])
    msg = re.sub(r"^Value error, ", "", msg)
    msg = re.sub(r"^Input should be", "must be", msg)
    if kind == "string_pattern_mismatch":
        msg = "must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
    if given is not None and not isinstance(given, dict | list) and kind not in ("value_error",):
        msg += f" (got {given!r})"
    return msg


ModelT = typing.TypeVar("ModelT", bound=BaseModel)


def _validate(model: type[ModelT], data: Any, prefix: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        lines = []
        for err in errors:
            path = prefix
            for part in err["loc"]:
                path = _join(path, part)
            lines.append(f"{path or '(top level)'}: {_describe(err, model)}")
        raise ConfigError(lines[0] if len(lines) == 1 else f"{lines[0]} (and {len(lines) - 1} more)") from None


def parse_config(raw: Any, source: str = "config") -> Config:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys (state_dir, defaults, streams, sinks)")
    raw = _substitute_env(raw, "")
    if "quality" in raw:
        # Renamed on 2026-11-27: "quality" also names the CLIP-IQA fault and its scores.
        raise ConfigError(
            "quality: renamed to iqa (the BRISQUE/NIQE scores; the CLIP score's settings are under scoring): "
            "rename the key"
        )
    streams_raw = raw.get("streams", [])
    if not isinstance(streams_raw, list):
        raise ConfigError("streams: must be a list of streams, each with at least name and url")
    defaults_raw = raw.get("defaults") or {}
    if not isinstance(defaults_raw, dict):
        raise ConfigError("defaults: must be a mapping of stream settings (sample, capture, checks, ...)")
    # Validate defaults alone first, so an error in them is reported at defaults.*, not per stream.
    _validate(StreamSettings, _layer(defaults_raw), "defaults")
    merged_streams = []
    for i, stream_raw in enumerate(streams_raw):
        if not isinstance(stream_raw, dict):
            raise ConfigError(f"streams[{i}]: must be a mapping with at least name and url")
        merged = _layer(stream_raw, defaults_raw, f"streams[{i}]")
        merged_streams.append(_validate(StreamConfig, merged, f"streams[{i}]"))
    top = {k: v for k, v in raw.items() if k != "streams"}
    top["defaults"] = defaults_raw
    cfg = _validate(Config, top, "")
    cfg.streams = merged_streams
    seen: dict[str, int] = {}
    for i, s in enumerate(cfg.streams):
        if s.name in seen:
            raise ConfigError(
                f"streams[{i}].name: {s.name!r} is already used by streams[{seen[s.name]}]; names must be unique"
            )
        seen[s.name] = i
    return cfg


def load_config(path: str | os.PathLike[str]) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{p}: config file not found (give a path to a YAML file, e.g. configs/example.yaml)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config file ({exc})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}:{where}: malformed YAML: {problem} (fix the indentation/quoting there)") from None
    return parse_config(raw, str(p))
