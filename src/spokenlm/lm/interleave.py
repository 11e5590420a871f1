"""Interleaved speech-text sequences (SpiritLM, Nguyen et al. 2024; SIMS, Maimon et al. 2025).

An utterance with word alignments becomes one token sequence that switches between the
text tokens of its words and the units spoken over them, at word boundaries; every stretch
starts with a modality marker, as SpiritLM's ``[Text]`` / ``[Speech]`` and slamkit's
``<text>`` / ``<speech>`` do::

    words   the        dog          runs
    plan    text       speech       text
    tokens  [TEXT] the [SPEECH] u u [TEXT] runs

Vocabulary (:class:`InterleavedVocab`): the warm-start text LM's ``V`` token ids stay at
``0..V-1`` with their embeddings (TWIST's ``keep_text_vocab``), the ``K`` units follow at
``V..V+K-1``, then BOS, EOS, PAD (``V+K..V+K+2``, the unit LM's own) and the two markers
``[TEXT] = V+K+3`` and ``[SPEECH] = V+K+4``. Sequences are stored without BOS/EOS: the LM
data loader adds them, as for units.

Which units a word owns: a deduplicated unit covers frames ``[F, F + d)`` (``d`` its
duration); its time is the centre of its middle frame (frame ``i`` is centred at
``(hop * i + window / 2) / sr``, :class:`~spokenlm.audio.framing.Framing`). Word ``k`` owns
the units between the cut before it and the cut after it, a cut being the middle of the
pause between two words (the start of the next word when they touch); the first word also
owns the leading silence, the last the trailing one. So the spans of all words tile the
utterance, and an utterance spoken throughout gives exactly its speech-only sequence.

Which words are spoken (:func:`speech_mask`), as slamkit's interleaving tokeniser (SIMS):

- ``poisson`` (SIMS' setting: mean span 10 words, 30 % of the words spoken): speech spans of
  Poisson(``mean_span``) words (at least one) start at random free words until
  ``speech_fraction`` of the words are spoken; a span stops at the next spoken word, so
  spans never merge into one by overlap;
- ``random``: every word is spoken with probability ``speech_fraction`` on its own.

A text stretch is encoded as its words joined by spaces, with a leading space unless it
starts the utterance (what a BPE tokenizer sees in running text).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..audio.framing import Framing
from ..common.errors import InputError
from ..common.packed import N_SPECIALS
from ..data.alignments import Interval, is_silence
from .text_codec import TextCodec

Method = Literal["poisson", "random"]
Modality = Literal["text", "speech"]
#: markers after BOS/EOS/PAD
N_MARKERS = 2
#: the names markers print as (SpiritLM writes [Text] / [Speech])
TEXT_MARKER, SPEECH_MARKER = "[TEXT]", "[SPEECH]"


@dataclass(frozen=True)
class InterleavedVocab:
    """Token ids of an interleaved LM over ``text_vocab`` text ids and ``n_units`` units."""

    text_vocab: int
    n_units: int

    def __post_init__(self) -> None:
        if self.text_vocab < 1 or self.n_units < 1:
            raise InputError(f"interleaved vocabulary: text_vocab={self.text_vocab} and "
                             f"n_units={self.n_units} must both be positive")

    @property
    def unit_offset(self) -> int:
        return self.text_vocab

    @property
    def bos_id(self) -> int:
        return self.text_vocab + self.n_units

    @property
    def eos_id(self) -> int:
        return self.bos_id + 1

    @property
    def pad_id(self) -> int:
        return self.bos_id + 2

    @property
    def text_id(self) -> int:
        """``[TEXT]``: what follows is text tokens."""
        return self.bos_id + N_SPECIALS

    @property
    def speech_id(self) -> int:
        """``[SPEECH]``: what follows is units."""
        return self.text_id + 1

    @property
    def vocab_size(self) -> int:
        return self.speech_id + 1

    def marker(self, modality: Modality) -> int:
        return self.text_id if modality == "text" else self.speech_id

    def modality_of(self, token: int) -> str:
        """``text``, ``speech``, ``marker`` or ``special`` (BOS/EOS/PAD) for a token id."""
        if 0 <= token < self.text_vocab:
            return "text"
        if token < self.bos_id:
            return "speech"
        return "marker" if token in (self.text_id, self.speech_id) else "special"

    def to_json(self) -> dict[str, int]:
        return {"text_vocab": self.text_vocab, "n_units": self.n_units,
                "unit_offset": self.unit_offset, "bos_id": self.bos_id, "eos_id": self.eos_id,
                "pad_id": self.pad_id, "text_id": self.text_id, "speech_id": self.speech_id,
                "vocab_size": self.vocab_size}

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str = "<interleaved>") -> InterleavedVocab:
        try:
            vocab = cls(int(d["text_vocab"]), int(d["n_units"]))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{source}: no interleaved vocabulary (text_vocab, n_units) in "
                             f"it ({e}); write it with `spokenlm lm interleave-data`") from e
        for k, v in vocab.to_json().items():
            if k in d and int(d[k]) != v:
                raise InputError(f"{source}: {k}={d[k]} does not follow from text_vocab="
                                 f"{vocab.text_vocab}, n_units={vocab.n_units} ({v}); the "
                                 f"file was edited or comes from another version")
        return vocab


# ---- words and the units they own --------------------------------------------------------


def aligned_words(intervals: Sequence[Interval]) -> list[Interval]:
    """The word intervals of an alignment tier (silences and empty labels dropped)."""
    return [iv for iv in intervals if not is_silence(iv.label) and iv.label.strip()]


def unit_times(durations: Sequence[int], framing: Framing) -> np.ndarray:
    """Time (seconds) of each deduplicated unit: the centre of its middle frame. (N,)"""
    d = np.asarray(durations, dtype=np.float64)
    first = np.concatenate([[0.0], np.cumsum(d)[:-1]])  # (N,) first frame of each unit
    middle = first + (d - 1) / 2
    return framing.centre_times(middle)


def word_unit_spans(words: Sequence[Interval], durations: Sequence[int],
                    framing: Framing) -> list[tuple[int, int]]:
    """``[start, end)`` unit indices of each word (see the module docstring); they tile
    ``[0, N)`` in order, a word may own none."""
    if not words:
        return []
    times = unit_times(durations, framing)
    cuts = [(a.end + b.start) / 2 if a.end < b.start else b.start
            for a, b in zip(words[:-1], words[1:])]
    bounds = [0, *(int(np.searchsorted(times, c, side="left")) for c in cuts), len(times)]
    return list(zip(bounds[:-1], bounds[1:]))


# ---- which words are spoken ------------------------------------------------------------


def speech_mask(n_words: int, rng: np.random.Generator, method: Method = "poisson",
                mean_span: float = 10.0, speech_fraction: float = 0.3) -> np.ndarray:
    """(n_words,) bool: True for the words given as units (see the module docstring)."""
    if not 0.0 <= speech_fraction <= 1.0:
        raise InputError(f"speech_fraction={speech_fraction}: must be within [0, 1]")
    mask = np.zeros(n_words, dtype=bool)
    if method == "random":
        return rng.random(n_words) < speech_fraction
    if method != "poisson":
        raise InputError(f"interleave method {method!r}: choose poisson or random")
    if mean_span <= 0:
        raise InputError(f"mean_span={mean_span}: must be positive")
    target = math.ceil(n_words * speech_fraction)
    while mask.sum() < target:
        free = np.flatnonzero(~mask)
        start = int(free[rng.integers(len(free))])
        length = max(1, int(rng.poisson(mean_span)))
        taken = np.flatnonzero(mask[start:])
        stop = min(start + length, n_words, start + int(taken[0]) if len(taken) else n_words)
        mask[start:stop] = True
    return mask


def stretches(mask: np.ndarray) -> list[tuple[Modality, int, int]]:
    """Runs of one modality over the words: ``(modality, first word, end word)``."""
    out: list[tuple[Modality, int, int]] = []
    for k, spoken in enumerate(mask.tolist()):
        modality: Modality = "speech" if spoken else "text"
        if out and out[-1][0] == modality:
            out[-1] = (modality, out[-1][1], k + 1)
        else:
            out.append((modality, k, k + 1))
    return out


# ---- sequences ---------------------------------------------------------------------------


def text_span_ids(codec: TextCodec, words: Sequence[str], first: bool) -> list[int]:
    """Token ids of a text stretch: its words joined by spaces, with a leading space when it
    does not start the utterance."""
    text = " ".join(w.strip() for w in words)
    return codec.encode(text if first else " " + text)


def interleave(words: Sequence[Interval], units: Sequence[int], durations: Sequence[int],
               framing: Framing, mask: np.ndarray, codec: TextCodec,
               vocab: InterleavedVocab) -> tuple[list[int], list[dict]]:
    """(token ids, stretches) of an utterance whose words ``mask`` marks spoken.

    A spoken stretch whose words own no unit (words shorter than a unit) is given as text,
    so no marker ever stands alone. ``stretches`` lists ``{"modality", "words", "n_tokens"}``
    for a reader of the data.
    """
    if len(units) != len(durations):
        raise InputError(f"{len(units)} units but {len(durations)} durations")
    spans = word_unit_spans(words, durations, framing)
    mask = np.asarray(mask, dtype=bool).copy()
    for modality, a, b in stretches(mask):
        if modality == "speech" and spans[a][0] == spans[b - 1][1]:
            mask[a:b] = False
    tokens: list[int] = []
    info: list[dict] = []
    for modality, a, b in stretches(mask):
        labels = [w.label for w in words[a:b]]
        if modality == "text":
            body = text_span_ids(codec, labels, first=a == 0)
        else:
            body = [int(u) + vocab.unit_offset for u in units[spans[a][0]: spans[b - 1][1]]]
        tokens += [vocab.marker(modality), *body]
        info.append({"modality": modality, "words": " ".join(labels), "n_tokens": len(body)})
    return tokens, info


def speech_sequence(units: Sequence[int], vocab: InterleavedVocab) -> list[int]:
    """``[SPEECH] u..`` (units shifted to the interleaved vocabulary)."""
    return [vocab.speech_id, *(int(u) + vocab.unit_offset for u in units)]


def text_sequence(text: str, codec: TextCodec, vocab: InterleavedVocab) -> list[int]:
    """``[TEXT] t..``."""
    return [vocab.text_id, *codec.encode(text)]
