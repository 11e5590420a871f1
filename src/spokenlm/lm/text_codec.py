"""The text side of an interleaved LM: the warm-start text LM's own tokenizer, kept.

A :class:`TextCodec` wraps either tokenizer a text LM dir can hold, so interleaving, training
and evaluation see one interface:

- spokenlm's word/char :class:`~spokenlm.lm.text_tokenizer.TextTokenizer`
  (``text_tokenizer.json`` of a ``spokenlm lm pretrain-text`` model: symbols at ids
  ``0..S-1``, the LM's BOS/EOS/PAD after them);
- a Hugging Face tokenizer (``AutoTokenizer`` files beside an OPT / LLaMA / Qwen2 / GPT-2).

``text_vocab`` is the number of rows of the text LM's embedding (``config.json``
``vocab_size``), which is where the units start in the interleaved vocabulary; it can be
larger than the tokenizer (padded vocabularies, the LM's own specials).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from ..common.errors import InputError
from ..common.files import read_json
from ..common.hub import local_or_hub
from .text_tokenizer import TOKENIZER_FILE, TextTokenizer

_PUNCT = re.compile(r"[^\w\s]+")


class TextCodec:
    """Encode / decode text with a text LM's tokenizer; see the module docstring."""

    def __init__(self, tokenizer: Any, kind: str, text_vocab: int) -> None:
        self.tokenizer, self.kind, self.text_vocab = tokenizer, kind, int(text_vocab)

    @classmethod
    def load(cls, path: str | os.PathLike, text_vocab: int | None = None) -> TextCodec:
        """The tokenizer in ``path`` (a text LM dir, or a saved codec dir); ``text_vocab``
        defaults to the ``vocab_size`` of the dir's ``config.json``."""
        path = local_or_hub(path, "text LM")
        if text_vocab is None:
            text_vocab = text_vocab_size(path)
        if (path / TOKENIZER_FILE).is_file():
            return cls(TextTokenizer.load(path / TOKENIZER_FILE), "spokenlm", text_vocab)
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"{path}: no tokenizer ({TOKENIZER_FILE} or Hugging Face "
                             f"tokenizer files) to read the text with ({e}); pass the text "
                             f"LM dir with its tokenizer") from e
        return cls(tok, "hf", text_vocab)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer files into the dir ``path`` (created)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.kind == "spokenlm":
            self.tokenizer.save(path / TOKENIZER_FILE)
        else:
            self.tokenizer.save_pretrained(path)
        return path

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens). With spokenlm's tokenizer, punctuation
        it has no symbol for is left out (a text LM trained on transcripts without it would
        otherwise read every "." as ``<unk>``); an unknown word stays ``<unk>``."""
        if self.kind == "spokenlm":
            index = self.tokenizer.index
            ids = [index.get(s, 0) for s in self.tokenizer.split(text, self.tokenizer.level)
                   if s in index or not _PUNCT.fullmatch(s)]
        else:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if ids and max(ids) >= self.text_vocab:
            raise InputError(f"the text tokenizer gives id {max(ids)} for {text[:40]!r}, but "
                             f"the text LM has {self.text_vocab} embedding rows; the "
                             f"tokenizer is not this LM's")
        return [int(i) for i in ids]

    def decode(self, ids: list[int]) -> str:
        """Text of token ids; ids outside the tokenizer (the LM's specials) are dropped."""
        ids = [int(i) for i in ids if 0 <= int(i) < self.n_symbols]
        if self.kind == "spokenlm":
            return self.tokenizer.decode(ids)
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    @property
    def n_symbols(self) -> int:
        """Ids ``0..n_symbols-1`` are the tokenizer's."""
        return len(self.tokenizer)

    def not_generated(self) -> list[int]:
        """Ids of the tokenizer a text continuation never draws: special tokens (BOS, EOS,
        PAD, UNK of a HF tokenizer) and spokenlm's ``<unk>``."""
        if self.kind == "spokenlm":
            return [0]
        return sorted({int(i) for i in self.tokenizer.all_special_ids})

    def fingerprint(self) -> str:
        """sha256 of the vocabulary (symbol -> id), to check data and LM share it."""
        if self.kind == "spokenlm":
            vocab: Any = self.tokenizer.symbols
        else:
            vocab = sorted(self.tokenizer.get_vocab().items())
        blob = json.dumps([self.kind, vocab], ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()


def text_vocab_size(path: Path) -> int:
    """Rows of the token embedding of the text LM in ``path`` (``config.json`` ``vocab_size``,
    also when nested in ``text_config``)."""
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: no config.json; pass the text LM dir (a `spokenlm lm "
                         f"pretrain-text` final/ dir or a Hugging Face causal LM dir)")
    cfg = read_json(path / "config.json")
    size = cfg.get("vocab_size", (cfg.get("text_config") or {}).get("vocab_size"))
    if not isinstance(size, int) or size < 1:
        raise InputError(f"{path / 'config.json'}: no vocab_size; pass a causal LM dir")
    return size
