"""Intelligibility on real speech: each offline ASR on LJSpeech and AN4 clips, and (optionally)
the same ASRs on those clips resynthesised through a spokenlm tokenizer + vocoder.

The resynthesis WER of the evaluation suite is only meaningful if the ASR itself works on
real recordings, so this measures each ASR's own WER/CER against the reference transcripts
first (``../shared/data/real``; skipped with a message when absent), with its speed, then
the resynthesis. WER and CER are jiwer's corpus rates over texts normalised by
``spokenlm.asr.base.normalize_text`` (what the evaluation suite does); ``wer_en_norm`` applies
Whisper's English text normaliser (transformers' ``EnglishTextNormalizer``: numbers to digits,
contractions, titles; no spelling table) to both sides instead, which is fair to an ASR that writes digits;
``cer_en_nospace`` is the CER of those texts with spaces removed, which also forgives the way
a spelled word is written ("P-O-W-E-L-L", "JPEG 4" for AN4's "P O W E L L", "J P E G FOUR").

    python benchmarks/intelligibility_real.py                      # whisper and pocketsphinx
    python benchmarks/intelligibility_real.py --asr whisper:/models/small --n 100 --beam 1
    python benchmarks/intelligibility_real.py --tokenizer runs/demo/tokenizer \\
        --vocoder runs/demo/vocoder/final

Prints one JSON line per (ASR, dataset): clips, audio seconds, WER / CER, seconds spent
transcribing (model load apart) and the CPU seconds of this process in them (all threads;
steadier than wall time on a shared machine), real-time factor (wall seconds per audio second)
and x real time.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from pathlib import Path

from spokenlm.asr import load_asr
from spokenlm.asr.base import normalize_text
from spokenlm.audio.load import load_audio

DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
BENCH = "intelligibility_real"


def ljspeech(root: Path, n: int) -> list[tuple[str, Path, str]]:
    """The first ``n`` clips of ``metadata.csv`` (``id|raw|normalised``): normalised text."""
    folder = root / "ljspeech-part1"
    with open(folder / "metadata.csv", newline="") as f:
        rows = list(csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE))
    out = []
    for uid, _raw, norm in rows:
        path = next((folder / "wavs").glob(f"{uid}.*"), None)
        if path is not None:
            out.append((uid, path, norm))
        if len(out) == n:
            break
    return out


def an4(root: Path, n: int) -> list[tuple[str, Path, str]]:
    """The first ``n`` AN4 clips found on disk, transcripts from ``an4_test.transcription``
    then ``an4_train.transcription`` (``<s> TEXT </s> (utterance-id)``)."""
    folder = root / "an4"
    audio = {p.stem: p for p in folder.rglob("*") if p.suffix in (".flac", ".wav", ".sph")}
    out = []
    for name in ("an4_test.transcription", "an4_train.transcription"):
        if not (folder / name).exists():
            continue
        for line in (folder / name).read_text().splitlines():
            m = re.match(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\((\S+)\)\s*$", line)
            if m and m.group(1).strip() and m.group(2) in audio:
                out.append((m.group(2), audio[m.group(2)], m.group(1).strip()))
            if len(out) == n:
                return out
    return out


def build_asr(spec: str, beam: int | None):
    """``load_asr(spec)``, or with ``--beam`` a Whisper spec at that beam width."""
    if beam is None or not spec.startswith("whisper"):
        return load_asr(spec)
    from spokenlm.asr.whisper import WhisperDecoding, default_model_dir, load_whisper

    _, _, arg = spec.partition(":")
    return load_whisper(Path(arg) if arg else default_model_dir(), WhisperDecoding(beam_size=beam))


def rates(refs: list[str], hyps: list[str], prefix: str = "") -> dict[str, float]:
    import jiwer
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    en = EnglishTextNormalizer({})
    n_refs, n_hyps = [normalize_text(t) for t in refs], [normalize_text(t) for t in hyps]
    e_refs, e_hyps = [en(t) for t in refs], [en(t) for t in hyps]
    squash = [[t.replace(" ", "") or "-" for t in ts] for ts in (e_refs, e_hyps)]
    return {f"{prefix}wer": round(jiwer.wer(n_refs, n_hyps), 4),
            f"{prefix}cer": round(jiwer.cer(n_refs, n_hyps), 4),
            f"{prefix}wer_en_norm": round(jiwer.wer(e_refs, e_hyps), 4),
            f"{prefix}cer_en_nospace": round(jiwer.cer(*squash), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder with ljspeech-part1/ and an4/")
    p.add_argument("--n", type=int, default=30, help="clips per dataset")
    p.add_argument("--asr", nargs="+", default=["whisper", "pocketsphinx"],
                   help="ASR specs (see spokenlm.asr), each measured in turn")
    p.add_argument("--beam", type=int, default=None, help="beam width for Whisper specs "
                   "(default: spokenlm's, 5)")
    p.add_argument("--tokenizer", type=Path, default=None, help="tokenizer dir for resynthesis")
    p.add_argument("--vocoder", type=Path, default=None, help="vocoder dir for resynthesis")
    args = p.parse_args()
    if not args.root.exists():
        print(json.dumps({"bench": BENCH, "skipped": f"{args.root} not found (the real-speech "
                          f"clips: ljspeech-part1/ and an4/)"}))
        return
    datasets = {"ljspeech": ljspeech(args.root, args.n), "an4": an4(args.root, args.n)}
    wavs = {name: [load_audio(path) for _, path, _ in clips] for name, clips in datasets.items()}
    resynth = None
    if args.tokenizer is not None and args.vocoder is not None:
        from spokenlm.tokenize.tokenizer import SpeechTokenizer
        from spokenlm.vocoder import load_vocoder

        tok, voc = SpeechTokenizer.from_pretrained(args.tokenizer), load_vocoder(args.vocoder)

        def resynth(wav):  # noqa: E306
            units = tok.encode(wav, dedup=True)
            return voc.synthesize(units.units, units.durations)

        resynth = {name: [resynth(w) for w in ws] for name, ws in wavs.items()}
    for spec in args.asr:
        t0 = time.perf_counter()
        try:
            asr = build_asr(spec, args.beam)
        except Exception as e:  # noqa: BLE001 - a missing backend skips its rows only
            print(json.dumps({"bench": BENCH, "asr": spec, "skipped": str(e)}))
            continue
        load_s = time.perf_counter() - t0
        for name, clips in datasets.items():
            refs = [t for _, _, t in clips]
            seconds = sum(len(w) for w in wavs[name]) / 16000
            t0, c0 = time.perf_counter(), time.process_time()
            hyps = asr.transcribe_many(wavs[name], desc=f"{spec} {name}")
            spent, cpu = time.perf_counter() - t0, time.process_time() - c0
            entry = {"bench": BENCH, "asr": asr.describe(), "dataset": name,
                     "clips": len(clips), "audio_s": round(seconds, 1), **rates(refs, hyps),
                     "seconds": round(spent, 2), "cpu_s": round(cpu, 2),
                     "load_s": round(load_s, 2),
                     "rtf": round(spent / seconds, 4), "x_realtime": round(seconds / spent, 1)}
            if args.beam is not None:
                entry["beam"] = args.beam
            if resynth is not None:
                entry.update(rates(refs, asr.transcribe_many(resynth[name],
                                                             desc=f"{spec} resynth {name}"),
                                   prefix="resynth_"))
            print(json.dumps(entry), flush=True)
            print(f"{name}: {entry}", file=sys.stderr)


if __name__ == "__main__":
    main()
