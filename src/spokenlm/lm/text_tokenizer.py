"""The word- or character-level text tokenizer of ``spokenlm lm pretrain-text`` text LMs
(saved as ``text_tokenizer.json`` in the LM dir); :mod:`spokenlm.lm.text_codec` reads it and
:mod:`spokenlm.lm.text_lm` (which re-exports it) fits it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from ..common.files import read_json, write_json

TOKENIZER_FILE = "text_tokenizer.json"
UNK = "<unk>"
_WORD = re.compile(r"[\w']+|[^\w\s]")


class TextTokenizer:
    """Word- or character-level tokenizer over a fixed symbol list; id 0 is ``<unk>``."""

    def __init__(self, symbols: list[str], level: Literal["word", "char"] = "word") -> None:
        if not symbols or symbols[0] != UNK:
            raise ValueError(f"symbols must start with {UNK!r}")
        self.symbols, self.level = list(symbols), level
        self.index = {s: i for i, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    @staticmethod
    def split(text: str, level: Literal["word", "char"]) -> list[str]:
        """Lowercased words (punctuation marks are words of their own) or characters."""
        text = " ".join(text.lower().split())
        return _WORD.findall(text) if level == "word" else list(text)

    @classmethod
    def fit(cls, lines: list[str], level: Literal["word", "char"] = "word",
            min_count: int = 1) -> TextTokenizer:
        """Symbols seen at least ``min_count`` times, most frequent first (ties by symbol)."""
        counts: dict[str, int] = {}
        for line in lines:
            for s in cls.split(line, level):
                counts[s] = counts.get(s, 0) + 1
        kept = sorted((s for s, c in counts.items() if c >= min_count),
                      key=lambda s: (-counts[s], s))
        return cls([UNK, *kept], level)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(s, 0) for s in self.split(text, self.level)]

    def decode(self, ids: list[int]) -> str:
        sep = " " if self.level == "word" else ""
        return sep.join(self.symbols[i] for i in ids)

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, {"type": "spokenlm-text", "level": self.level,
                                 "symbols": self.symbols})

    @classmethod
    def load(cls, path: str | os.PathLike) -> TextTokenizer:
        d = read_json(path)
        return cls(d["symbols"], d["level"])
