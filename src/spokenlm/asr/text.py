"""Transcript units for CTC: characters or phonemes, a vocabulary, greedy decoding, error
rates.

Characters: lowercase letters, digits and apostrophes, ``|`` between words (the wav2vec 2.0
convention). Phonemes: the manifest's ``phonemes`` field (espeak-ng IPA, see
:mod:`spokenlm.data.phonemes`), word marks dropped. Token 0 is the CTC blank.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ..common.edit_distance import error_rate
from ..common.errors import ArtifactError, InputError
from ..common.files import read_json, write_json
from ..data.phonemes import split_phones

Unit = Literal["chars", "phonemes"]
BLANK = "<blank>"
WORD_SEP = "|"
_NOT_CHAR = re.compile(r"[^\w' ]+")


def normalize_chars(text: str) -> str:
    """Lowercase, accents kept, punctuation (except apostrophes) dropped, spaces collapsed."""
    text = unicodedata.normalize("NFC", text).lower().replace("_", " ")
    return " ".join(_NOT_CHAR.sub(" ", text).split())


def row_tokens(row: dict, unit: Unit, source: str | Path = "<manifest>") -> list[str]:
    """Transcript tokens of a manifest row: characters (``|`` for spaces) or phones."""
    if unit == "phonemes":
        if not row.get("phonemes"):
            raise InputError(f"{source}: row {row.get('id')!r} has no 'phonemes'; make the "
                             f"corpus with `spokenlm data synth` or add phonemes, or train "
                             f"with --unit chars")
        return split_phones(row["phonemes"])
    if not row.get("text"):
        raise InputError(f"{source}: row {row.get('id')!r} has no 'text' transcript; add "
                         f"one or drop the row")
    return [WORD_SEP if c == " " else c for c in normalize_chars(row["text"])]


def tokens_to_text(tokens: Sequence[str], unit: Unit) -> str:
    """Tokens -> transcript: ``"the dog"`` for chars, ``"ð ə d ɑː ɡ"`` for phonemes."""
    if unit == "phonemes":
        return " ".join(tokens)
    return " ".join("".join(tokens).replace(WORD_SEP, " ").split())


def reference_text(row: dict, unit: Unit) -> str:
    """The reference transcript of a row in the format :func:`tokens_to_text` produces."""
    return tokens_to_text(row_tokens(row, unit), unit)


class Vocab:
    """Token list with the CTC blank at index 0."""

    def __init__(self, tokens: Sequence[str], unit: Unit) -> None:
        if not tokens or tokens[0] != BLANK:
            raise ValueError(f"vocabulary must start with {BLANK!r}")
        self.tokens = list(tokens)
        self.unit: Unit = unit
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], unit: Unit) -> Vocab:
        """Vocabulary of every token in ``sequences`` (sorted, blank first)."""
        found = sorted({t for s in sequences for t in s})
        if unit == "chars" and WORD_SEP not in found:
            found.append(WORD_SEP)
        return cls([BLANK, *found], unit)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token ids; unknown tokens are dropped (a new character or phone in test data)."""
        return [self.index[t] for t in tokens if t in self.index]

    def decode(self, ids: Iterable[int]) -> str:
        return tokens_to_text([self.tokens[i] for i in ids if i != 0], self.unit)

    def save(self, path: Path) -> Path:
        return write_json(path, {"unit": self.unit, "tokens": self.tokens})

    @classmethod
    def load(cls, path: Path) -> Vocab:
        if not Path(path).exists():
            raise ArtifactError(f"{path}: vocabulary missing; the CTC model dir is incomplete, "
                                f"re-run `spokenlm asr train`")
        d = read_json(path)
        return cls(d["tokens"], d["unit"])


def ctc_greedy(frame_ids: Sequence[int] | np.ndarray, blank: int = 0) -> list[int]:
    """Best-path decoding of per-frame argmax ids (F,): merge repeats, then drop blanks."""
    ids = np.asarray(frame_ids, dtype=np.int64)
    if ids.size == 0:
        return []
    keep = np.concatenate([[True], ids[1:] != ids[:-1]]) & (ids != blank)
    return ids[keep].tolist()


def error_rates(refs: Sequence[str], hyps: Sequence[str], unit: Unit) -> dict[str, float]:
    """Corpus error rates: ``wer`` and ``cer`` for characters, ``per`` for phonemes."""
    if unit == "phonemes":
        return {"per": error_rate([r.split() for r in refs], [h.split() for h in hyps])["rate"]}
    return {"wer": error_rate([r.split() for r in refs], [h.split() for h in hyps])["rate"],
            "cer": error_rate([list(r) for r in refs], [list(h) for h in hyps])["rate"]}
