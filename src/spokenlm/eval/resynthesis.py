"""Resynthesis intelligibility: the output of ``spokenlm resynth`` through an ASR.

For each row of ``resynth.jsonl`` (``source``, ``path``, ``text``) the resynthesised wav is
transcribed and compared with the reference transcript: corpus WER and CER (edits /
reference tokens, see :mod:`spokenlm.eval.edit_distance`). The source audio is transcribed
too (``source_wer``), so the ASR's own error on this voice/domain is visible next to
what the units lose. With a phone recogniser (``--phone-asr pocketsphinx-phones``) PER
compares phones of the resynthesis with phones of the source. A speaker encoder
(``--speaker-encoder``: by default Resemblyzer's pretrained GE2E when installed; ``ge2e:PATH``,
a local Hugging Face x-vector model dir, or ``none``, see :mod:`spokenlm.eval.speaker`) gives
the cosine similarity of each source and its resynthesis (``speaker_similarity``: mean, std,
per file, and the encoder used); without one the block says it was skipped and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.load import AudioError, load_row
from ..common.edit_distance import error_rate
from ..common.errors import InputError
from ..common.files import read_jsonl, write_json, write_jsonl
from ..common.options import arg, command
from ..common.paths import resolve_path, stored_fields
from ..common.progress import log
from .judges import asr_option, speaker_encoder_option
from .skips import Skips, fmt, set_or_reason
from .speaker import AUTO, SpeakerEmbedder, load_speaker_encoder, no_encoder_reason


@dataclass
class ResynthEvalOptions:
    resynth: Path = arg(positional=True, help="resynth output dir (resynth.jsonl) or the file")
    asr: str = asr_option()
    phone_asr: str | None = arg(None, help="phone recogniser for PER (pocketsphinx-phones)")
    speaker_encoder: str = speaker_encoder_option()
    source: bool = arg(True, help="also transcribe the source audio (ASR's own WER)")
    limit: int | None = arg(None, help="evaluate at most this many files")
    output: Path = arg(Path("resynthesis.json"), help="metrics JSON to write")


def _rates(refs: list[str], hyps: list[str], prefix: str = "") -> dict[str, float | None]:
    """Corpus WER and CER (keys ``<prefix>wer``, ``<prefix>cer``); None with a reason when
    the references have no words."""
    from ..asr.base import normalize_text

    refs = [normalize_text(r) for r in refs]
    hyps = [normalize_text(h) for h in hyps]
    out: dict = {}
    empty = "the reference texts have no words after normalisation"
    set_or_reason(out, f"{prefix}wer", error_rate([r.split() for r in refs],
                                                  [h.split() for h in hyps])["rate"], empty)
    set_or_reason(out, f"{prefix}cer", error_rate(refs, hyps)["rate"], empty)
    return out


def _speaker_block(encoder: SpeakerEmbedder, src: list, wavs: list,
                   per_row: list[dict]) -> dict:
    """Mean / std cosine similarity of source and resynthesis embeddings; per-file values
    go into ``per_row`` (None with a reason where a pair gives no similarity)."""
    sims = encoder.paired_similarity(src, wavs, desc="speaker similarity")
    skips = Skips("speaker similarity", "utterance pairs")
    too_short = (f"shorter than the speaker encoder's receptive field "
                 f"({encoder.min_samples} samples)")
    for row, s, a, b in zip(per_row, sims, src, wavs):
        row["speaker_similarity"] = s
        if s is None:
            reason = too_short if min(len(a), len(b)) < encoder.min_samples else \
                "no finite embedding (silent or broken audio?)"
            row["speaker_similarity_reason"] = reason
            skips.add(reason, row.get("id"))
    values = np.array([s for s in sims if s is not None], dtype=np.float64)
    if not len(values):
        return {"skipped": f"all {skips.total} utterance pairs skipped: {skips.summary()}",
                **skips.report(), "encoder": encoder.describe()}
    if skips.total:
        log(f"resynthesis: {skips.total} pairs left out of speaker similarity: "
            f"{skips.summary()}")
    return {"mean": float(values.mean()), "std": float(values.std()), "n": len(values),
            "n_too_short": skips.counts[too_short], **skips.report(),
            "encoder": encoder.describe()}


def _row_audio(row: dict, key: str, results: Path) -> np.ndarray:
    """The audio a results row names under ``key`` (a relative path is relative to the
    ``results`` file); :class:`AudioError` if it cannot."""
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise AudioError(f"{results}: row {row.get('id')!r} has no `{key}` audio path")
    return load_row({"id": row.get("id"), "path": resolve_path(value, results),
                     "start": row.get(f"{key}_start"), "duration": row.get(f"{key}_duration")})


@command("eval resynthesis", ResynthEvalOptions)
def evaluate_resynthesis(opts: ResynthEvalOptions) -> dict:
    """WER / CER (and PER) of resynthesised audio transcribed by an ASR."""
    from ..asr import load_asr

    path = opts.resynth / "resynth.jsonl" if opts.resynth.is_dir() else opts.resynth
    skips = Skips("resynthesis", "utterances")
    rows = []
    for r in read_jsonl(path):
        if isinstance(r.get("text"), str) and r["text"]:
            rows.append(r)
        else:
            skips.add("no reference `text`", r.get("id"))
    if not rows:
        raise InputError(f"{path}: no row with a reference `text`; resynthesise a manifest "
                         f"that has transcripts")
    rows = rows[:opts.limit] if opts.limit is not None else rows
    speaker = load_speaker_encoder(opts.speaker_encoder)
    need_source = bool(opts.source or opts.phone_asr or speaker)
    wavs, src, kept = [], [], []
    for r in rows:
        try:
            wav = _row_audio(r, "path", path)
        except AudioError as e:
            skips.add("unreadable resynthesised audio", e)
            continue
        try:
            source = _row_audio(r, "source", path) if need_source else None
        except AudioError as e:
            skips.add("unreadable source audio", e)
            continue
        wavs.append(wav)
        src.append(source)
        kept.append(r)
    skips.require(len(kept), path)
    asr = load_asr(opts.asr)
    refs = [r["text"] for r in kept]
    hyps = asr.transcribe_many(wavs, desc="asr resynth")
    metrics: dict = {"metric": "resynthesis", "n_utterances": len(kept), **skips.report(),
                     "asr": asr.describe(), **_rates(refs, hyps)}
    per_row = [{"id": r.get("id"), "text": r["text"], "resynth": h} for r, h in zip(kept, hyps)]
    if opts.source:
        src_hyps = asr.transcribe_many(src, desc="asr source")
        metrics.update(_rates(refs, src_hyps, prefix="source_"))
        for row, h in zip(per_row, src_hyps):
            row["source"] = h
    if opts.phone_asr:
        pasr = load_asr(opts.phone_asr)
        if pasr.unit != "phones":
            raise InputError(f"--phone-asr {opts.phone_asr}: not a phone recogniser")
        p_src = pasr.transcribe_many(src, desc="phones source")
        p_out = pasr.transcribe_many(wavs, desc="phones resynth")
        set_or_reason(metrics, "per", error_rate([p.split() for p in p_src],
                                                 [p.split() for p in p_out])["rate"],
                      "the phone recogniser found no phone in the source audio")
        metrics["phone_asr"] = pasr.describe()
    metrics["speaker_similarity"] = (
        _speaker_block(speaker, src, wavs, per_row) if speaker else
        {"skipped": no_encoder_reason(opts.speaker_encoder)})
    metrics["inputs"] = stored_fields(opts, opts.output, drop_none=True)
    write_json(opts.output, metrics)
    write_jsonl(Path(opts.output).with_suffix(".transcripts.jsonl"), per_row)
    log(f"resynthesis: WER {fmt(metrics['wer'])}, CER {fmt(metrics['cer'])}"
        + (f" (source WER {fmt(metrics['source_wer'])})" if "source_wer" in metrics else "")
        + (f", speaker similarity {metrics['speaker_similarity']['mean']:.3f}"
           if "mean" in metrics["speaker_similarity"] else ""))
    return metrics
