"""CLIP's byte-pair-encoding tokenizer without torch, so a box re-embeds prompts with the exported
text encoder alone. It reads the vocabulary file `vqmon export clip` copies into the model
directory (CLIP's merges list) and gives the same token ids as open_clip's SimpleTokenizer:
the same text cleaning (ftfy, HTML entities, whitespace, lower case), the same Unicode-class
split (hence `regex`, not `re`), the same merges.
"""

from __future__ import annotations

import gzip
import html
import itertools
from functools import lru_cache
from pathlib import Path

import ftfy
import numpy as np
import regex

from monitor.errors import VqmonError

SOT, EOT = "<start_of_text>", "<end_of_text>"
_MERGES = 49152 - 256 - 2  # CLIP's vocabulary: 256 bytes x2 (word-final or not), merges, 2 specials
_PATTERN = regex.compile(
    rf"{SOT}|{EOT}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+", regex.IGNORECASE
)


@lru_cache
def _byte_symbols() -> dict[int, str]:
    """Each byte as a printable character, as CLIP's vocabulary spells them: printable Latin-1
    bytes stand for themselves, the rest are moved above 255."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    out = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in out:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def _clean(text: str) -> str:
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).lower()


class ClipTokenizer:
    def __init__(self, vocab_path: str | Path, context_length: int = 77) -> None:
        try:
            with gzip.open(vocab_path, "rt", encoding="utf-8") as f:
                lines = f.read().split("\n")
        except FileNotFoundError:
            raise VqmonError(f"{vocab_path}: tokenizer vocabulary missing; re-export the model") from None
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise VqmonError(f"{vocab_path}: unreadable tokenizer vocabulary ({exc}); re-export the model") from None
        merges = [tuple(m.split()) for m in lines[1 : _MERGES + 1]]
        if len(merges) != _MERGES or any(len(m) != 2 for m in merges):
            raise VqmonError(f"{vocab_path}: not CLIP's BPE merges list ({len(merges)} merges); re-export the model")
        symbols = list(_byte_symbols().values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [SOT, EOT]
        self._ids = {tok: i for i, tok in enumerate(vocab)}
        self._ranks = {m: i for i, m in enumerate(merges)}
        self._cache: dict[str, list[str]] = {SOT: [SOT], EOT: [EOT]}
        self.sot, self.eot = self._ids[SOT], self._ids[EOT]
        self.context_length = context_length

    def _bpe(self, token: str) -> list[str]:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        word = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            # The lowest-ranked adjacent pair merges first, everywhere it occurs.
            best = min(itertools.pairwise(word), key=lambda p: self._ranks.get(p, _MERGES))
            if best not in self._ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self._cache[token] = word
        return word

    def encode(self, text: str) -> list[int]:
        symbols = _byte_symbols()
        ids: list[int] = []
        for piece in _PATTERN.findall(_clean(text)):
            spelled = "".join(symbols[b] for b in piece.encode("utf-8"))
            ids.extend(self._ids[t] for t in self._bpe(spelled))
        return ids

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Token ids, (len(texts), context_length) int64: start, the text, end, zeros; a text too
        long is cut and still ends with the end token (as open_clip does)."""
        out = np.zeros((len(texts), self.context_length), np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot, *self.encode(text), self.eot][: self.context_length]
            ids[-1] = self.eot
            out[row, : len(ids)] = ids
        return out
