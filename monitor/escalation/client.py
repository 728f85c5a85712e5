"""A client for OpenAI-compatible chat-completions servers (Ollama, vLLM, llama.cpp, LM Studio,
hosted APIs): the frame goes as a JPEG data-URI, the answer must be strict JSON."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import urllib.error
import urllib.request
from typing import Any

import cv2
import numpy as np

from monitor.errors import VqmonError

log = logging.getLogger(__name__)

# The seed's per-aspect judgement (IQA with VLMs): a 1-10 rating and a one-line reason each.
ASPECTS = ("sharpness", "noise", "exposure", "colour", "artifacts", "composition")
# The 1-10 range is in the prompt and checked in validate(), not in the schema: some servers'
# strict structured-output modes reject numeric bounds, and a rejected schema would cost every
# diagnosis.
_RATING = {
    "type": "object",
    "properties": {"score": {"type": "integer"}, "reason": {"type": "string"}},
    "required": ["score", "reason"],
}

DIAGNOSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "faults": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"type": {"type": "string"}, "confidence": {"type": "number"}},
                "required": ["type", "confidence"],
            },
        },
        "likely_cause": {"type": "string"},
        "suggested_actions": {"type": "array", "items": {"type": "string"}},
        "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
        "ratings": {
            "type": "object",
            "properties": {aspect: _RATING for aspect in ASPECTS},
            "required": list(ASPECTS),
        },
    },
    "required": ["summary", "faults", "likely_cause", "suggested_actions", "severity", "ratings"],
}
# Asked for, but a diagnosis without them is still worth publishing (a server that ignores the
# schema, an older prompt file): only ratings that are there must be right.
OPTIONAL_KEYS = ("ratings",)

SYSTEM_PROMPT = (
    "You are a video quality engineer. You get one frame from a monitored video stream and what the "
    "automatic checks measured. Say what is wrong with the picture, the likely cause and what an operator "
    "should do. Answer with one JSON object only, with the keys summary, faults (list of {type, confidence "
    "0-1}), likely_cause, suggested_actions (list of strings), severity (info, warning or critical) and "
    "ratings: for each of sharpness, noise, exposure, colour, artifacts and composition an object "
    "{score: 1 (very poor) to 10 (excellent), reason: one line}."
)


# What matters differs by where the camera is: added to the context per stream profile.
PROFILE_CRITERIA = {
    "broadcast": "Broadcast playout: any visible defect on air matters; consider encoder, transmission and "
    "playout-server faults, and whether viewers would notice.",
    "cctv": "CCTV surveillance: judge whether the picture is still usable to identify people and events; "
    "consider night/IR mode, dirty or covered lenses, tampering, focus and cabling.",
    "default": "General video monitoring: say what a viewer or operator would notice.",
}


class VlmError(VqmonError):
    """The server could not be reached, refused, timed out, or answered unusably."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _loads(text: str) -> Any:
    """JSON, with a nesting too deep for the parser reported like any other invalid answer."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def validate(d: Any) -> dict[str, Any]:
    """Check an answer against DIAGNOSIS_SCHEMA; returns it normalised or raises ValueError."""
    if not isinstance(d, dict):
        raise ValueError("not a JSON object")
    for key in DIAGNOSIS_SCHEMA["required"]:
        if key not in d and key not in OPTIONAL_KEYS:
            raise ValueError(f"missing {key!r}")
    if not isinstance(d["summary"], str) or not isinstance(d["likely_cause"], str):
        raise ValueError("summary and likely_cause must be strings")
    if not isinstance(d["faults"], list) or not all(
        isinstance(f, dict) and isinstance(f.get("type"), str) and isinstance(f.get("confidence"), int | float)
        for f in d["faults"]
    ):
        raise ValueError("faults must be a list of {type, confidence}")
    if not isinstance(d["suggested_actions"], list) or not all(isinstance(a, str) for a in d["suggested_actions"]):
        raise ValueError("suggested_actions must be a list of strings")
    if d["severity"] not in ("info", "warning", "critical"):
        raise ValueError("severity must be info, warning or critical")
    out = {k: d[k] for k in DIAGNOSIS_SCHEMA["required"] if k in d}
    if "ratings" in d:
        out["ratings"] = _validate_ratings(d["ratings"])
    return out


def _validate_ratings(r: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(r, dict) or any(a not in r for a in ASPECTS):
        raise ValueError(f"ratings must rate each of {', '.join(ASPECTS)}")
    out = {}
    for aspect in ASPECTS:
        x = r[aspect]
        score = x.get("score") if isinstance(x, dict) else None
        if isinstance(score, bool) or not isinstance(score, int | float) or not 1 <= score <= 10 or score != int(score):
            raise ValueError(f"ratings.{aspect}.score must be a whole number from 1 to 10")
        if not isinstance(x.get("reason"), str):
            raise ValueError(f"ratings.{aspect}.reason must be a string")
        out[aspect] = {"score": int(score), "reason": x["reason"]}
    return out


def jpeg_data_uri(image: np.ndarray, max_side: int) -> str:
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise VlmError("could not encode the frame as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode()


class VlmClient:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        image_size: int = 768,
        system_prompt: str = SYSTEM_PROMPT,
    ) -> None:
        base = base_url.rstrip("/")
        self.url = (base if base.endswith("/v1") else base + "/v1") + "/chat/completions"
        self.model = model
        self.api_key = os.environ.get(api_key_env) if api_key_env else None
        self.timeout_s = timeout_s
        self.image_size = image_size
        self.system_prompt = system_prompt

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except RecursionError:
            raise VlmError("VLM server sent JSON nested too deeply to read") from None
        except http.client.HTTPException as exc:  # a cut-short body, a garbage status line, a hang-up
            raise VlmError(f"VLM server sent a broken HTTP reply ({type(exc).__name__})") from None
        except urllib.error.HTTPError as exc:
            retry = exc.headers.get("Retry-After") if exc.headers else None
            raise VlmError(
                f"VLM server answered HTTP {exc.code}", float(retry) if retry and retry.isdigit() else None
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise VlmError(f"VLM server {self.url} unreachable or too slow ({reason})") from None
        except ValueError:
            raise VlmError("VLM server sent a body that is not JSON") from None

    def _ask(self, messages: list[dict[str, Any]]) -> str:
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "diagnosis", "schema": DIAGNOSIS_SCHEMA, "strict": True},
            },
        }
        data = self._post(body)
        try:
            return str(data["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError):
            raise VlmError("VLM answer has no choices[0].message.content") from None

    def ask(
        self,
        image: np.ndarray,
        question: str,
        context: dict[str, Any] | None = None,
        history: list[tuple[str, str]] | None = None,
    ) -> str:
        """A free-text answer to a follow-up question about a frame (`vqmon ask`). ``history``:
        the earlier (question, answer) pairs about the same frame, so a follow-up sees them; the
        frame and context go once, with the first question."""
        turns = [*(history or []), (question, "")]
        first_q = turns[0][0]
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "You are a video quality engineer. Answer briefly and concretely."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"{first_q}\nContext: {json.dumps(context or {}, default=str)}"},
                    {"type": "image_url", "image_url": {"url": jpeg_data_uri(image, self.image_size)}},
                ],
            },
        ]
        for i, (q, a) in enumerate(turns):
            if i > 0:
                messages.append({"role": "user", "content": q})
            if a:
                messages.append({"role": "assistant", "content": a})
        body = {"model": self.model, "temperature": 0, "messages": messages}
        data = self._post(body)
        try:
            return str(data["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError):
            raise VlmError("VLM answer has no choices[0].message.content") from None

    def diagnose(self, image: np.ndarray, context: dict[str, Any], question: str | None = None) -> dict[str, Any]:
        """A validated diagnosis; one repair request when the first answer is not valid JSON."""
        text = question or "Diagnose this frame."
        user: dict[str, Any] = {
            "role": "user",
            "content": [
                {"type": "text", "text": f"{text}\nContext: {json.dumps(context, default=str)}"},
                {"type": "image_url", "image_url": {"url": jpeg_data_uri(image, self.image_size)}},
            ],
        }
        messages: list[dict[str, Any]] = [{"role": "system", "content": self.system_prompt}, user]
        answer = self._ask(messages)
        try:
            return validate(_loads(answer))
        except ValueError as first:
            messages += [
                {"role": "assistant", "content": answer},
                {"role": "user", "content": f"That was not valid ({first}). Reply with the JSON object only."},
            ]
            answer = self._ask(messages)
            try:
                return validate(_loads(answer))
            except ValueError as second:
                raise VlmError(f"VLM answer is not a valid diagnosis after one repair: {second}") from None
