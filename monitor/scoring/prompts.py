"""CLIP-IQA prompt sets: antonym pairs (positive, negative) grouped into aspects, kept as YAML.

A pair scores an image as the softmax probability of its positive prompt; an aspect's score is
the mean over its pairs. `quality` is the overall aspect (it raises `clip_quality`). The
bundled set is `prompt_sets/default.yaml` (also `configs/prompts/clip_iqa.yaml`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from monitor.errors import VqmonError

LOGIT_SCALE = 100.0
MANIFEST_SCHEMA = "vqmon.clip-model/1"
PROMPTS_SCHEMA = "vqmon.prompts/1"
OVERALL = "quality"
DEFAULT_PROMPTS = "default"
LEARNED = "learned:"  # the source prefix of embeddings made by `vqmon prompts learn`

Prompt = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class PromptError(VqmonError):
    """A prompt set file is missing or malformed."""


class _PromptSetModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: str = Field(PROMPTS_SCHEMA, alias="schema")
    name: str = Field(min_length=1, max_length=64)
    aspects: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")], list[tuple[Prompt, Prompt]]]

    @field_validator("schema_")
    @classmethod
    def _schema(cls, v: str) -> str:
        if v != PROMPTS_SCHEMA:
            raise ValueError(f"must be {PROMPTS_SCHEMA}")
        return v

    @field_validator("aspects")
    @classmethod
    def _aspects(cls, v: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        if OVERALL not in v:
            raise ValueError(f"needs the overall aspect {OVERALL!r} (it raises clip_quality)")
        for name, pairs in v.items():
            if not pairs:
                raise ValueError(f"{name}: needs at least one [positive, negative] pair")
        return v


@dataclass(frozen=True)
class PromptSet:
    name: str
    aspects: dict[str, list[tuple[str, str]]]
    source: str = ""  # where it was read from: a file, bundled:NAME, or the manifest's record

    @property
    def learned(self) -> bool:
        """Its embeddings came from `vqmon prompts learn` (not from the words alone)."""
        return self.source.startswith(LEARNED)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Every pair, aspect by aspect in file order: the rows of the text embeddings."""
        return [p for pairs in self.aspects.values() for p in pairs]

    @property
    def pair_aspects(self) -> list[str]:
        """The aspect of each row of ``pairs``."""
        return [a for a, pairs in self.aspects.items() for _ in pairs]

    @property
    def digest(self) -> str:
        """Identifies the wording (not the file's comments): embeddings made from another set
        must be re-made."""
        canon = json.dumps({a: [list(p) for p in ps] for a, ps in self.aspects.items()}, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    def to_manifest(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "source": self.source,
            "aspects": {a: [list(p) for p in ps] for a, ps in self.aspects.items()},
        }

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> PromptSet:
        """The set a model directory's embeddings were made from. Models exported before prompt
        sets existed list one pair per aspect under ``prompt_pairs``."""
        entry = manifest.get("prompts")
        if isinstance(entry, dict) and isinstance(entry.get("aspects"), dict):
            aspects = {a: [(p[0], p[1]) for p in ps] for a, ps in entry["aspects"].items()}
            return cls(str(entry.get("name", "?")), aspects, str(entry.get("source", "")))
        pairs = manifest.get("prompt_pairs")
        if isinstance(pairs, dict):
            return cls("legacy", {a: [(p[0], p[1])] for a, p in pairs.items()}, "manifest:prompt_pairs")
        raise PromptError("manifest.json lists no prompt set; re-export the model")


def parse_prompt_set(raw: Any, source: str) -> PromptSet:
    try:
        m = _PromptSetModel.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"] if p != "schema_") or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] in ("too_long", "too_short", "tuple_type"):
            msg = "each pair is [positive prompt, negative prompt]"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise PromptError(f"{source}: {where}: {msg}{more}") from None
    return PromptSet(m.name, {a: [(p, n) for p, n in pairs] for a, pairs in m.aspects.items()}, source)


def bundled_prompt_sets() -> list[str]:
    folder = resources.files("monitor.scoring") / "prompt_sets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_prompt_set(path_or_name: str | Path = DEFAULT_PROMPTS) -> PromptSet:
    """A prompt set from a YAML file, or a bundled one by name (``default``)."""
    text: str
    p = Path(path_or_name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PromptError(f"{p}: prompt set not found (start from configs/prompts/clip_iqa.yaml)") from None
        except OSError as exc:
            raise PromptError(f"{p}: cannot read the prompt set ({exc.strerror})") from None
        source = str(p.resolve())
    else:
        name = str(path_or_name)
        if name not in bundled_prompt_sets():
            raise PromptError(
                f"{name}: no such prompt set (a .yaml file, or one of: {', '.join(bundled_prompt_sets())})"
            )
        text = (resources.files("monitor.scoring") / "prompt_sets" / f"{name}.yaml").read_text(encoding="utf-8")
        source = f"bundled:{name}"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise PromptError(f"{source}: not valid YAML{at}; quote a prompt that contains ', ' or ': '") from None
    return parse_prompt_set(raw, source)
