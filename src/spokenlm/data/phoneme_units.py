"""SpeechLM-P phoneme units from text: G2P, then each phone repeated by a sampled duration.

Speech gives frame-level phones from forced alignment (``spokenlm align``); text gives
phones from espeak-ng, each repeated for a number of 50 Hz frames drawn from that phone's
duration distribution measured on the alignments (phones seen fewer than ``min_count``
times use the distribution over all phones; with no alignments at all, a global default).
Sampling is deterministic in ``seed``::

    model = DurationModel.fit(read_jsonl("alignments.jsonl"))
    units = text_to_phoneme_units("the dog runs", model, inventory, seed=0)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio.constants import FRAME_RATE
from ..common.errors import InputError
from ..common.files import read_json, write_json
from .phonemes import phonemize, split_phones

SILENCE = "sil"
#: fallback durations (frames at 50 Hz -> weight): ~80 ms mean, as a typical phone
DEFAULT_DURATIONS: dict[int, float] = {2: 1, 3: 3, 4: 5, 5: 5, 6: 4, 7: 3, 8: 2, 10: 1, 12: 1}


@dataclass
class DurationModel:
    """Empirical duration distributions in frames: per phone, and over all phones."""

    phones: dict[str, Counter] = field(default_factory=dict)
    pooled: Counter = field(default_factory=Counter)
    min_count: int = 5

    @classmethod
    def fit(cls, alignments: Iterable[dict], frame_rate: float = FRAME_RATE,
            min_count: int = 5) -> DurationModel:
        """Count durations from ``spokenlm align`` rows (their ``intervals``; ``sil``
        ignored)."""
        model = cls(min_count=min_count)
        for row in alignments:
            for start, end, phone in row.get("intervals", []):
                if phone == SILENCE:
                    continue
                d = max(1, int(round((end - start) * frame_rate)))
                model.phones.setdefault(phone, Counter())[d] += 1
                model.pooled[d] += 1
        return model

    def distribution(self, phone: str) -> tuple[np.ndarray, np.ndarray]:
        """(durations (K,) int64, probabilities (K,)) used for ``phone``."""
        counts = self.phones.get(phone)
        if counts is None or sum(counts.values()) < self.min_count:
            counts = self.pooled if self.pooled else Counter(DEFAULT_DURATIONS)
        d = np.array(sorted(counts), dtype=np.int64)
        p = np.array([counts[k] for k in d], dtype=np.float64)
        return d, p / p.sum()

    def sample(self, phones: Sequence[str], seed: int | Sequence[int] = 0) -> np.ndarray:
        """Durations (N,) int64 frames for ``phones``, deterministic in ``seed``."""
        rng = np.random.default_rng(seed)
        out = np.empty(len(phones), dtype=np.int64)
        for i, ph in enumerate(phones):
            d, p = self.distribution(ph)
            out[i] = d[rng.choice(len(d), p=p)]
        return out

    def mean(self, phone: str) -> float:
        d, p = self.distribution(phone)
        return float((d * p).sum())

    def save(self, path: str | Path) -> Path:
        return write_json(path, {"min_count": self.min_count,
                                 "pooled": {str(k): v for k, v in sorted(self.pooled.items())},
                                 "phones": {ph: {str(k): v for k, v in sorted(c.items())}
                                            for ph, c in sorted(self.phones.items())}})

    @classmethod
    def load(cls, path: str | Path) -> DurationModel:
        d = read_json(path)
        return cls({ph: Counter({int(k): v for k, v in c.items()}) for ph, c in
                    d["phones"].items()}, Counter({int(k): v for k, v in d["pooled"].items()}),
                   d.get("min_count", 5))


def phone_inventory(phone_lists: Iterable[Sequence[str]]) -> list[str]:
    """Sorted phone inventory with ``sil`` first (unit 0)."""
    return [SILENCE, *sorted({p for ps in phone_lists for p in ps} - {SILENCE})]


def phones_to_units(phones: Sequence[str], durations: Sequence[int],
                    inventory: Sequence[str]) -> list[int]:
    """Frame-level unit ids: phone ``i`` repeated ``durations[i]`` times."""
    index = {p: i for i, p in enumerate(inventory)}
    missing = sorted({p for p in phones if p not in index})
    if missing:
        raise InputError(f"phones {missing} are not in the unit inventory; rebuild the "
                         f"inventory from data that contains them")
    return [index[p] for p, d in zip(phones, durations) for _ in range(int(d))]


def text_to_phoneme_units(text: str, durations: DurationModel, inventory: Sequence[str],
                          seed: int | Sequence[int] = 0, voice: str = "en-us"
                          ) -> tuple[list[int], list[str]]:
    """Text -> (frame units at 50 Hz, phones): espeak-ng G2P, then sampled durations."""
    phones = split_phones(phonemize(text, voice))
    return phones_to_units(phones, durations.sample(phones, seed), inventory), phones


def speech_phoneme_units(alignment: dict, inventory: Sequence[str]) -> list[int]:
    """Frame units of an aligned utterance (its ``phones`` frame labels)."""
    return phones_to_units(alignment["phones"], [1] * len(alignment["phones"]), inventory)
