"""SpeechLM-P phoneme units from text: G2P, then each phone repeated by a sampled duration.

Speech gives frame-level phones from forced alignment (``spokenlm asr align``); text gives
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
from itertools import groupby
from pathlib import Path

import numpy as np

from ..audio.constants import FRAME_RATE
from ..common.errors import InputError
from ..common.files import iter_jsonl, read_json, write_json, write_jsonl
from ..common.options import arg, command
from ..common.progress import log, progress
from ..tokenize.dedup import dedup
from ..tokenize.pack import pack_units
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
        """Count durations from ``spokenlm asr align`` rows (their ``intervals``; ``sil``
        ignored)."""
        return cls.from_runs(((phone, max(1, int(round((end - start) * frame_rate))))
                              for row in alignments
                              for start, end, phone in row.get("intervals", [])), min_count)

    @classmethod
    def fit_frames(cls, frame_labels: Iterable[Sequence[str]], min_count: int = 5
                   ) -> DurationModel:
        """Count durations from frame-level phone labels (runs of equal labels)."""
        return cls.from_runs(((phone, sum(1 for _ in run)) for frames in frame_labels
                              for phone, run in groupby(frames)), min_count)

    @classmethod
    def from_runs(cls, runs: Iterable[tuple[str, int]], min_count: int = 5) -> DurationModel:
        """Count ``(phone, frames)`` runs (``sil`` ignored)."""
        model = cls(min_count=min_count)
        for phone, d in runs:
            if phone == SILENCE:
                continue
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


def alignment_frames(row: dict, frame_rate: float = FRAME_RATE) -> list[str]:
    """Frame-level phones (50 Hz) of an alignment row: its ``phones`` (``spokenlm asr align``),
    else its ``intervals`` expanded (``spokenlm asr align``, pocketsphinx)."""
    if "phones" in row:
        return list(row["phones"])
    frames: list[str] = []
    for start, end, phone in row.get("intervals", []):
        n = int(round(end * frame_rate)) - len(frames)
        frames.extend([SILENCE if phone.lower() == SILENCE else phone] * max(0, n))
    return frames


def read_text_rows(path: Path) -> list[dict]:
    """``{"id", "text"}`` rows from a JSONL manifest (its ``text``) or a text file (one
    sentence per line, ids ``line-000001``...; blank lines skipped)."""
    if not path.is_file():
        raise InputError(f"{path}: text file not found")
    if path.suffix == ".jsonl":
        rows = [r for r in iter_jsonl(path)]
        bad = [r.get("id") for r in rows if not isinstance(r.get("text"), str)]
        if bad:
            raise InputError(f"{path}: {len(bad)} rows have no 'text' (first: {bad[0]!r}); "
                             f"give a manifest with transcripts or a plain text file")
        return [{"id": str(r.get("id", f"line-{i + 1:06d}")), "text": r["text"]}
                for i, r in enumerate(rows)]
    lines = path.read_text(encoding="utf-8").splitlines()
    return [{"id": f"line-{i + 1:06d}", "text": t.strip()} for i, t in enumerate(lines)
            if t.strip()]


@dataclass
class PhonemeUnitsOptions:
    alignments: Path = arg(positional=True, help="frame labels from `spokenlm asr align` (or "
                           "intervals from `spokenlm asr align`)")
    output: Path = arg(Path("phoneme_units"), help="directory to write")
    text: Path | None = arg(None, help="text to turn into units: JSONL with 'text' or one "
                            "sentence per line")
    inventory: Path | None = arg(None, help="phone inventory JSON to reuse (default: built "
                                 "from the alignments and the text)")
    voice: str = arg("en-us", help="espeak-ng voice for the text's G2P")
    min_count: int = arg(5, help="phones seen fewer times use the pooled durations")
    dedup: bool = arg(False, help="collapse repeated units, storing their durations")
    pack: bool = arg(True, help="also write packed .bin/.idx.npy/.meta.json for LM training")
    seed: int = arg(0, help="duration sampling seed (sentence i uses [seed, i])")


def _write_units(path: Path, rows: list[dict], n_units: int, dedup_units: bool, pack: bool
                 ) -> None:
    if dedup_units:
        out = []
        for r in rows:
            u, d = dedup(r["units"])
            out.append({"id": r["id"], "units": u.tolist(), "durations": d.tolist()})
        rows = out
    write_jsonl(path, rows)
    if pack:
        pack_units(path, n_units=n_units)


@command("data phoneme-units", PhonemeUnitsOptions)
def phoneme_units(opts: PhonemeUnitsOptions) -> Path:
    """SpeechLM-P phoneme units of aligned speech and of text.

    Aligned speech -> frame phone units; text -> G2P phones repeated by durations sampled
    from the alignments. Writes ``inventory.json``, ``durations.json``, ``speech.jsonl`` and
    (with ``--text``) ``text.jsonl`` (+ packed files)."""
    if not opts.alignments.is_file():
        raise InputError(f"{opts.alignments}: alignments not found; make them with "
                         f"`spokenlm asr align MANIFEST --aligner spokenlm-ctc:MODEL --output "
                         f"{opts.alignments}`")
    aligned = [{"id": r["id"], "phones": alignment_frames(r)} for r in iter_jsonl(opts.alignments)]
    if not aligned:
        raise InputError(f"{opts.alignments}: no aligned utterances")
    durations = DurationModel.fit_frames((r["phones"] for r in aligned), opts.min_count)
    texts = read_text_rows(opts.text) if opts.text is not None else []
    text_phones = [split_phones(phonemize(r["text"], opts.voice))
                   for r in progress(texts, desc="g2p", unit="sent")]
    if opts.inventory is not None:
        inventory = list(read_json(opts.inventory)["phones"])
    else:
        inventory = phone_inventory([r["phones"] for r in aligned] + text_phones)
    out = opts.output
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "inventory.json", {"phones": inventory, "frame_rate": FRAME_RATE})
    durations.save(out / "durations.json")
    speech = [{"id": r["id"], "units": speech_phoneme_units(r, inventory)} for r in aligned]
    _write_units(out / "speech.jsonl", speech, len(inventory), opts.dedup, opts.pack)
    if texts:
        text_rows = [{"id": r["id"], "units": phones_to_units(
            ph, durations.sample(ph, [opts.seed, i]), inventory), "phones": ph}
            for i, (r, ph) in enumerate(zip(texts, text_phones))]
        _write_units(out / "text.jsonl", text_rows, len(inventory), opts.dedup, opts.pack)
    log(f"{len(speech)} aligned utterances and {len(texts)} sentences -> {out} "
        f"({len(inventory)} phone units)")
    return out

