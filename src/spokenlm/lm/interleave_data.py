"""``spokenlm lm interleave-data``: units + word alignments -> packed interleaved sequences.

Reads a units JSONL (``spokenlm tokenize run``: ``units``, ``durations``, ``frame_rate`` per
utterance), word alignments of the same utterances (a TextGrid words tier, a CTM, or a labels
JSONL such as ``spokenlm data word-alignments`` writes for an espeak-ng corpus) and the
warm-start text LM (for its tokenizer and vocabulary size), and writes, for each utterance,
the sequences of ``--kinds`` (see :mod:`spokenlm.lm.interleave`)::

    interleaved   [TEXT] the [SPEECH] u u u [TEXT] runs     (--copies draws per utterance)
    speech        [SPEECH] u u u u u u                      (the whole utterance as units)
    text          [TEXT] the dog runs                       (its words as text)

SpiritLM and SIMS train on such a mixture of interleaved, speech-only and text-only data.
Layout (``--output PREFIX``)::

    PREFIX.bin / .idx.npy      token ids in the interleaved LM's vocabulary, one sequence per
                               entry (the packed-units format; BOS/EOS added by the loader)
    PREFIX.meta.json           packed meta + "interleaved": vocabulary, text LM, settings
    PREFIX.jsonl               one row per sequence: id, utterance, kind, stretches, tokens
    PREFIX.skipped.jsonl       utterances left out and why (only when there are any)

``spokenlm lm train PREFIX --interleave --init-from TEXT_LM`` trains on it. Sequences of one
utterance are written next to each other, so the validation hold-out of ``lm train`` (the
last sequences) holds whole utterances.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.framing import Framing, UnitsFraming
from ..common.errors import InputError
from ..common.files import iter_jsonl, read_json, write_jsonl
from ..common.options import arg, command
from ..common.packed import packed_dtype, packed_files, prefix_of, write_packed
from ..common.paths import store_path
from ..common.progress import log, progress
from ..data.alignments import ALIGNMENTS_HELP, TIER_HELP, read_alignments
from .interleave import (InterleavedVocab, Method, aligned_words, interleave, speech_mask,
                         speech_sequence, text_sequence)
from .text_codec import TextCodec

KINDS = ("interleaved", "speech", "text")
#: a last word starting this long after the end of the units is a misfit alignment (s)
ALIGNMENT_SLACK_S = 0.1


@dataclass
class InterleaveDataOptions:
    units: Path = arg(positional=True, help="units JSONL (spokenlm tokenize run): units, "
                      "durations and frame_rate per utterance")
    alignments: Path = arg(help=f"word {ALIGNMENTS_HELP}; ids as in the units")
    text_lm: Path = arg(help="the warm-start text LM dir (lm pretrain-text final/, or a "
                        "Hugging Face causal LM dir): its tokenizer writes the text")
    output: Path = arg(help="output prefix: PREFIX.bin/.idx.npy/.meta.json and PREFIX.jsonl")
    tokenizer: Path | None = arg(None, help="speech tokenizer dir (its n_units); default: "
                                 "the packed meta next to the units JSONL")
    tier: str = arg("words", help=TIER_HELP)
    kinds: list[str] = arg(list(KINDS), help="sequences per utterance: interleaved, speech "
                           "(units only), text (words only)")
    method: Method = arg("poisson", help="which words are spoken: poisson spans (SIMS) or "
                         "random words (see spokenlm.lm.interleave)")
    mean_span: float = arg(10.0, help="poisson: mean spoken span in words (SIMS: 10)")
    speech_fraction: float = arg(0.3, help="share of the words spoken (SIMS: 0.3); random: "
                                 "the probability of each word")
    copies: int = arg(1, help="interleaved sequences per utterance, each its own draw")
    seed: int = arg(0, help="seed of the draws (sequence k of utterance i: (seed, i, k))")


@command("lm interleave-data", InterleaveDataOptions)
def interleave_data(opts: InterleaveDataOptions) -> Path:
    """Interleave units and word text into packed sequences for `lm train --interleave`.

    Returns the output prefix."""
    bad = sorted(set(opts.kinds) - set(KINDS))
    if bad or not opts.kinds:
        raise InputError(f"--kinds {' '.join(opts.kinds)}: choose from {', '.join(KINDS)}")
    if opts.copies < 1:
        raise InputError(f"--copies {opts.copies}: must be at least 1")
    prefix = prefix_of(opts.output)
    if prefix_of(opts.units).resolve() == prefix.resolve():
        raise InputError(f"--output {opts.output}: the prefix of the input {opts.units}; "
                         f"writing there would overwrite its packed units, choose another")
    codec = TextCodec.load(opts.text_lm)
    vocab = InterleavedVocab(codec.text_vocab, _n_units(opts))
    alignments = read_alignments(opts.alignments, tier=opts.tier)
    rows, skipped = [], []
    rates = UnitsFraming(opts.units)
    for i, row in enumerate(progress(iter_jsonl(opts.units), desc="interleave", unit="utt")):
        rates.add(row)
        uid = str(row.get("id"))
        reason = _misfit(row, alignments.get(uid), vocab.n_units)
        if reason is not None:
            skipped.append({"id": uid, "reason": reason})
            continue
        rows += _sequences(i, row, aligned_words(alignments[uid]), opts, codec, vocab)
    if not rows:
        first = skipped[0] if skipped else {"reason": "no rows"}
        raise InputError(f"{opts.units}: no utterance could be interleaved ({len(skipped)} "
                         f"skipped, first: {first['reason']}); check that the alignments "
                         f"{opts.alignments} are of these utterances (same ids)")
    _write_packed(prefix, rows, vocab, opts, codec, rates.framing)
    write_jsonl(f"{prefix}.jsonl", rows)
    if skipped:
        write_jsonl(f"{prefix}.skipped.jsonl", skipped)
    counts = {k: sum(r["kind"] == k for r in rows) for k in opts.kinds}
    log(f"{prefix}: {len(rows)} sequences ({', '.join(f'{n} {k}' for k, n in counts.items())})"
        f" from {len({r['utterance'] for r in rows})} utterances, {len(skipped)} skipped; "
        f"vocabulary {vocab.text_vocab} text + {vocab.n_units} units + 5 specials")
    return prefix


def _n_units(opts: InterleaveDataOptions) -> int:
    """K: from the speech tokenizer, else from the packed meta beside the units JSONL."""
    if opts.tokenizer is not None:
        return int(read_json(opts.tokenizer / "config.json")["n_units"])
    meta = packed_files(prefix_of(opts.units))[".meta.json"]
    if not meta.is_file():
        raise InputError(f"{opts.units}: no packed meta ({meta}) to read the unit count "
                         f"from; pass --tokenizer (the speech tokenizer dir)")
    return int(read_json(meta)["n_units"])


def _misfit(row: dict, intervals: list | None, n_units: int) -> str | None:
    """Why an utterance cannot be interleaved, or None."""
    if intervals is None:
        return "no alignment"
    if not aligned_words(intervals):
        return "no word in the alignment"
    units = row.get("units") or []
    if not units:
        return "no units"
    if max(units) >= n_units or min(units) < 0:
        return f"unit {max(units)} outside [0, {n_units}) (another tokenizer)"
    durations = row.get("durations") or [1] * len(units)
    if len(durations) != len(units):
        return f"{len(units)} units but {len(durations)} durations"
    framing = Framing.from_json({"frame_rate": row.get("frame_rate")}, str(row.get("id")))
    seconds = framing.seconds(sum(durations)) + framing.win_length / framing.sample_rate
    last = aligned_words(intervals)[-1].start
    if last > seconds + ALIGNMENT_SLACK_S:
        return (f"alignment runs past the audio (a word at {last:.2f} s, units end at "
                f"{seconds:.2f} s)")
    return None


def _sequences(i: int, row: dict, words: list, opts: InterleaveDataOptions, codec: TextCodec,
               vocab: InterleavedVocab) -> list[dict]:
    """The sequences of utterance ``i`` (rows of PREFIX.jsonl), in --kinds order."""
    uid, units = str(row["id"]), [int(u) for u in row["units"]]
    durations = row.get("durations") or [1] * len(units)
    framing = Framing.from_json({"frame_rate": row.get("frame_rate")}, uid)
    out = []
    for kind in opts.kinds:
        if kind == "interleaved":
            for k in range(opts.copies):
                rng = np.random.default_rng([opts.seed, i, k])
                mask = speech_mask(len(words), rng, opts.method, opts.mean_span,
                                   opts.speech_fraction)
                tokens, info = interleave(words, units, durations, framing, mask, codec, vocab)
                out.append({"id": f"{uid}:interleaved{k}", "utterance": uid, "kind": kind,
                            "stretches": info, "tokens": tokens})
        elif kind == "speech":
            out.append({"id": f"{uid}:speech", "utterance": uid, "kind": kind,
                        "stretches": [{"modality": "speech", "n_tokens": len(units)}],
                        "tokens": speech_sequence(units, vocab)})
        else:
            text = " ".join(w.label.strip() for w in words)
            tokens = text_sequence(text, codec, vocab)
            out.append({"id": f"{uid}:text", "utterance": uid, "kind": kind,
                        "stretches": [{"modality": "text", "words": text,
                                       "n_tokens": len(tokens) - 1}], "tokens": tokens})
    return out


def _write_packed(prefix: Path, rows: list[dict], vocab: InterleavedVocab,
                  opts: InterleaveDataOptions, codec: TextCodec, framing: Framing) -> None:
    """PREFIX.bin / .idx.npy / .meta.json in the packed-units format (token ids)."""
    meta_path = packed_files(prefix)[".meta.json"]
    write_packed(prefix, (r["tokens"] for r in rows), packed_dtype(vocab.vocab_size, 0), {
        "n_units": vocab.n_units, "dedup": True, "ids": [r["id"] for r in rows],
        "source": opts.units.name, "frame_rate": framing.frame_rate,
        "interleaved": {**vocab.to_json(), "text_lm": store_path(opts.text_lm, meta_path),
                        "text_tokenizer": codec.kind, "fingerprint": codec.fingerprint(),
                        "kinds": {k: sum(r["kind"] == k for r in rows) for k in opts.kinds},
                        "method": opts.method, "mean_span": opts.mean_span,
                        "speech_fraction": opts.speech_fraction, "copies": opts.copies,
                        "seed": opts.seed,
                        "alignments": store_path(opts.alignments, meta_path)}})

