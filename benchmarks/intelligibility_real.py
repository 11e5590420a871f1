"""Intelligibility on real speech: the offline ASR on LJSpeech and AN4 clips, and (optionally)
the same ASR on those clips resynthesised through a spokenlm tokenizer + vocoder.

The resynthesis WER of the evaluation suite is only meaningful if the ASR itself works on
real recordings, so this measures the ASR's own WER/CER against the reference transcripts
first (``../shared/data/real``; skipped with a message when absent), then the resynthesis.

    python benchmarks/intelligibility_real.py --n 40
    python benchmarks/intelligibility_real.py --n 40 --tokenizer runs/demo/tokenizer \\
        --vocoder runs/demo/vocoder/final

Prints one JSON line.
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
from spokenlm.eval.edit_distance import cer, wer

DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def ljspeech(root: Path, n: int) -> list[tuple[str, Path, str]]:
    folder = root / "ljspeech-part1"
    with open(folder / "metadata.csv", newline="") as f:
        rows = list(csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE))
    out = []
    for uid, _raw, norm in rows[:n]:
        path = next((folder / "wavs").glob(f"{uid}.*"), None)
        if path is not None:
            out.append((uid, path, norm))
    return out


def an4(root: Path, n: int) -> list[tuple[str, Path, str]]:
    folder = root / "an4"
    out = []
    for line in (folder / "an4_test.transcription").read_text().splitlines():
        m = re.match(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\((\S+)\)\s*$", line)
        if not m:
            continue
        text, uid = m.group(1).strip(), m.group(2)
        path = next((folder / "test").rglob(f"{uid}.*"), None)
        if path is not None and text:
            out.append((uid, path, text))
        if len(out) == n:
            break
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder with ljspeech-part1/ and an4/")
    p.add_argument("--n", type=int, default=40, help="clips per dataset")
    p.add_argument("--asr", default="pocketsphinx", help="ASR backend spec (see spokenlm.asr)")
    p.add_argument("--tokenizer", type=Path, default=None, help="tokenizer dir for resynthesis")
    p.add_argument("--vocoder", type=Path, default=None, help="vocoder dir for resynthesis")
    args = p.parse_args()
    if not args.root.exists():
        print(json.dumps({"bench": "intelligibility_real", "skipped": f"{args.root} not found"}))
        return
    asr = load_asr(args.asr)
    resynth = None
    if args.tokenizer is not None and args.vocoder is not None:
        from spokenlm.tokenize.tokenizer import SpeechTokenizer
        from spokenlm.vocoder import load_vocoder

        tok, voc = SpeechTokenizer.from_pretrained(args.tokenizer), load_vocoder(args.vocoder)

        def resynth(wav):  # noqa: E306
            units = tok.encode(wav, dedup=True)
            return voc.synthesize(units.units, units.durations)

    result: dict = {"bench": "intelligibility_real", "asr": asr.describe(), "n_per_dataset": args.n}
    for name, clips in (("ljspeech", ljspeech(args.root, args.n)), ("an4", an4(args.root, args.n))):
        refs = [normalize_text(t) for _, _, t in clips]
        t0 = time.perf_counter()
        wavs = [load_audio(path) for _, path, _ in clips]
        hyps = [normalize_text(h) for h in asr.transcribe_many(wavs, desc=f"asr {name}")]
        seconds = sum(len(w) for w in wavs) / 16000
        entry = {"clips": len(clips), "audio_s": round(seconds, 1), "wer": wer(refs, hyps),
                 "cer": cer(refs, hyps), "asr_rtf": (time.perf_counter() - t0) / seconds}
        if resynth is not None:
            rhyps = [normalize_text(h) for h in asr.transcribe_many(
                [resynth(w) for w in wavs], desc=f"asr resynth {name}")]
            entry.update(resynth_wer=wer(refs, rhyps), resynth_cer=cer(refs, rhyps))
        result[name] = entry
        print(f"{name}: {entry}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
