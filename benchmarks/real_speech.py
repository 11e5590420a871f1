"""The real-speech recipe: spokenlm end to end on LJSpeech + AN4 (~90 min of real speech).

On ``../shared/data/real`` (``ljspeech-part1/`` and ``an4/``; skipped with a message when
absent), with the library functions behind the CLI commands:

1. data: ``data manifest`` of each folder (audio checked, durations), plus what it cannot pick
   up: LJSpeech's ``metadata.csv`` (normalised text), AN4's ``*.transcription`` and speaker
   folders, espeak-ng phonemes of every transcript (``spokenlm.data.phonemes``); AN4 clips
   without a transcript (the test speaker ``fcaw``) are left out. A fixed held-out set
   (``--eval-lj`` LJSpeech clips spread over the corpus, ``--eval-an4`` AN4 test clips drawn
   round-robin over its speakers) is resynthesised and evaluated; everything else trains;
2. one CTC phoneme aligner (``asr train --unit phonemes``, MFCC + adapter) on the training
   transcripts, its PER on the held-out set, its forced alignment of the held-out set
   (``align``) and a ZeroSpeech ``.item`` file of its triphones (``eval abx-items``);
3. for each tokenizer (``--encoders`` x ``--rates`` x ``--units``): ``tokenizer train`` on the
   training audio, ``tokenize``, a unit LM (``lm train``; its held-out loss also as bits per
   second of audio, comparable across unit sets), a fast vocoder on the LJSpeech units
   (GSLM's vocoders speak LJSpeech's voice), ``resynth`` of the held-out clips,
   ``eval resynthesis`` with each ASR (``--asr``: Whisper tiny.en and pocketsphinx) per corpus
   (pocketsphinx, which decodes poor resynthesis at ~0.1-0.3x real time, on the first
   ``--pocketsphinx-clips`` of each corpus by id), ``eval pnmi`` and ``eval abx`` (triphone
   ABX within context, within / across speaker; features once per encoder and rate) against
   the aligner's phones;
4. a deliberately short unit HiFi-GAN run (``--hifigan-steps``) on one tokenizer
   (``--hifigan-config``), resynthesised and transcribed the same way;
5. the same ASRs on the original held-out audio (the reference each WER is read against).

Prints a markdown table (stderr and ``<output>/table.md``) and one JSON line per row on
stdout, appended to ``benchmarks/results.jsonl`` (``--no-record`` to skip). Every stage
writes under ``--output`` and is skipped when its result is there, so a rerun after a kill
resumes (trainers resume from their checkpoints); a folder made with other settings is
refused. ``--threads`` defaults to 1: on cores shared with other jobs, two torch threads ran
the vocoder ~10x slower than one.

    python benchmarks/real_speech.py                   # reduced: ~35 min on 2 CPU cores
    python benchmarks/real_speech.py --full            # every AN4 test clip, 4 unit counts,
                                                       # longer training (hours on a CPU)
    python benchmarks/real_speech.py --encoders logmel --rates 50 --units 100 --asr whisper
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spokenlm.audio.manifest import make_manifest, read_manifest, write_manifest
from spokenlm.common.files import iter_jsonl, read_json, read_jsonl, write_json, write_jsonl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import device_info, log, parser, setup  # noqa: E402

BENCH = "real_speech"
DEFAULT_ROOT = HERE.parent.parent / "shared" / "data" / "real"
CORPORA = ("ljspeech", "an4")
#: flags of the reduced run and of --full (each one overridable on the command line)
SIZES = {
    "reduced": {"eval_lj": 30, "eval_an4": 30, "units": [50, 200], "aligner_steps": 1200,
                "lm_steps": 200, "lm_layers": 2, "lm_hidden": 128, "vocoder_steps": 300,
                "hifigan_steps": 30, "hifigan_size": "small", "pocketsphinx_clips": 6},
    "full": {"eval_lj": 40, "eval_an4": 0, "units": [50, 100, 200, 500], "aligner_steps": 3000,
             "lm_steps": 2000, "lm_layers": 4, "lm_hidden": 256, "vocoder_steps": 3000,
             "hifigan_steps": 20000, "hifigan_size": "v1", "pocketsphinx_clips": 0},
}


@dataclass(frozen=True)
class TokenizerConfig:
    """One row of the table: encoder, frame rate (Hz), number of units."""

    encoder: str
    rate: float
    n_units: int

    @property
    def name(self) -> str:
        return f"{self.encoder}-{self.rate:g}hz-k{self.n_units}"

    @classmethod
    def parse(cls, spec: str) -> TokenizerConfig:
        """``logmel:50:100`` -> TokenizerConfig("logmel", 50.0, 100)."""
        encoder, rate, k = spec.split(":")
        return cls(encoder, float(rate), int(k))


# ---------------------------------------------------------------- data


def _an4_transcripts(folder: Path) -> dict[str, str]:
    """AN4's ``<s> TEXT </s> (utterance-id)`` lines of both transcription files: id -> TEXT."""
    out = {}
    for name in ("an4_train.transcription", "an4_test.transcription"):
        for line in (folder / name).read_text().splitlines():
            m = re.match(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\((\S+)\)\s*$", line)
            if m and m.group(1).strip():
                out[m.group(2)] = m.group(1).strip()
    return out


def _lj_transcripts(folder: Path) -> dict[str, str]:
    """LJSpeech ``metadata.csv`` (``id|raw|normalised``): id -> normalised text."""
    with open(folder / "metadata.csv", newline="", encoding="utf-8") as f:
        return {row[0]: row[2] for row in csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE)}


def corpus_manifest(root: Path, work: Path) -> list[dict]:
    """Every clip of both corpora as a manifest row with ``text``, ``phonemes``,
    ``speaker``, ``corpus`` and (AN4) ``split``; made once into ``work/all.jsonl``."""
    from spokenlm.data.phonemes import phonemize_batch

    path = work / "all.jsonl"
    if path.exists():
        return read_manifest(path)
    texts = {**_lj_transcripts(root / "ljspeech-part1"), **_an4_transcripts(root / "an4")}
    rows, untranscribed = [], []
    parts = [("ljspeech", None, root / "ljspeech-part1" / "wavs", "none")] + \
        [("an4", split, root / "an4" / split, "folder") for split in ("train", "test")]
    for corpus, split, folder, speaker_from in parts:
        name = corpus if split is None else f"{corpus}-{split}"
        manifest = make_manifest(root=folder, output=work / f"{name}.jsonl",
                                 speaker_from=speaker_from, transcripts=False)
        for row in read_manifest(manifest):
            uid = Path(row["path"]).stem
            if uid not in texts:
                untranscribed.append(uid)
                continue
            rows.append({**row, "id": uid, "text": texts[uid], "corpus": corpus,
                         "speaker": row.get("speaker") or "LJ",
                         **({"split": split} if split else {})})
    if untranscribed:
        log(f"{len(untranscribed)} clips have no transcript and are left out (first: "
            f"{untranscribed[0]})")
    log(f"phonemizing {len(rows)} transcripts with espeak-ng")
    for row, ph in zip(rows, phonemize_batch([r["text"] for r in rows])):
        row["phonemes"] = ph
    return read_manifest(write_manifest(rows, path))


def split_rows(rows: list[dict], n_lj: int, n_an4: int, seed: int
               ) -> tuple[list[dict], list[dict]]:
    """(train, held-out): ``n_lj`` LJSpeech clips evenly spread over the sorted corpus and
    ``n_an4`` AN4 test clips (0 = all), drawn round-robin over the test speakers (seeded
    order within each speaker), are held out; every other clip trains."""
    lj = sorted((r for r in rows if r["corpus"] == "ljspeech"), key=lambda r: r["id"])
    held = {lj[i]["id"] for i in np.linspace(0, len(lj) - 1, n_lj).round().astype(int)} \
        if n_lj else set()
    rng = np.random.default_rng(seed)
    test = [r for r in rows if r.get("split") == "test"]
    queues = [list(rng.permutation(sorted(r["id"] for r in test if r["speaker"] == s)))
              for s in sorted({r["speaker"] for r in test})]
    an4 = [uid for group in itertools.zip_longest(*queues) for uid in group if uid is not None]
    held.update(an4[:n_an4] if n_an4 > 0 else an4)
    return [r for r in rows if r["id"] not in held], [r for r in rows if r["id"] in held]


# ---------------------------------------------------------------- shared stages


def done(path: Path) -> bool:
    return path.exists()


def aligner_stage(train: Path, held_out: Path, work: Path, steps: int, device: str
                  ) -> dict[str, Any]:
    """CTC phoneme aligner on the training transcripts; its PER on the held-out clips; the
    held-out alignments and their triphone ``.item`` file."""
    from spokenlm.asr.align import align_manifest
    from spokenlm.asr.ctc_train import train_asr
    from spokenlm.eval.abx_items import abx_items

    run = work / "aligner"
    t0 = time.perf_counter()
    if not done(run / "metrics.json"):
        train_asr(manifest=train, output=run, valid_manifest=held_out, encoder="mfcc",
                  unit="phonemes", max_steps=steps, warmup_steps=max(1, steps // 10),
                  freeze_encoder_steps=0, lr=1e-3, batch_size=8,
                  save_every=max(1, steps // 4), device=device)
    alignments, items = work / "alignments.jsonl", work / "held_out.item"
    if not done(alignments):
        align_manifest(manifest=held_out, aligner=f"spokenlm-ctc:{run / 'final'}",
                       output=alignments)
    if not done(items):
        abx_items(alignments=alignments, manifest=held_out, output=items)
    metrics = read_json(run / "metrics.json")
    aligned = sum(1 for _ in iter_jsonl(alignments))
    return {"per": metrics.get("per"), "steps": metrics.get("steps"),
            "train_minutes_audio": metrics.get("train_minutes_audio"),
            "aligned": aligned, "items": sum(1 for _ in open(items)) - 1,
            "alignments": alignments, "items_path": items, "s": time.perf_counter() - t0}


def corpus_index(rows: list[dict], path: Path, corpus: str, limit: int | None = None) -> Path:
    """The rows of one corpus (the first ``limit``) written as their own index next to
    ``path`` (same folder, so stored relative paths still resolve)."""
    out = path.with_name(f"{path.stem}.{corpus}{'' if limit is None else f'.first{limit}'}.jsonl")
    write_jsonl(out, [r for r in rows if r.get("corpus", _corpus_of(r)) == corpus][:limit])
    return out


def _corpus_of(row: dict) -> str:
    return "ljspeech" if str(row.get("id", "")).startswith("LJ") else "an4"


def clip_limit(asr: str, pocketsphinx_clips: int) -> int | None:
    """Clips per corpus an ASR transcribes (None: all)."""
    return pocketsphinx_clips or None if asr.startswith("pocketsphinx") else None


def asr_scores(index: Path, work: Path, asrs: list[str], speaker: bool,
               pocketsphinx_clips: int) -> dict[str, dict]:
    """``eval resynthesis`` of an index, per corpus and ASR: {"<asr>/<corpus>": metrics}.
    Rows are sorted by id, so a clip limit takes the same clips from every index; the
    source audio is not re-transcribed here (see :func:`source_scores`); speaker similarity
    (GE2E) with the first ASR only."""
    from spokenlm.eval.resynthesis import evaluate_resynthesis

    rows = sorted(read_jsonl(index), key=lambda r: r["id"])
    out = {}
    work.mkdir(parents=True, exist_ok=True)
    for corpus in CORPORA:
        for i, asr in enumerate(asrs):
            limit = clip_limit(asr, pocketsphinx_clips)
            sub = corpus_index(rows, index, corpus, limit)
            dst = work / f"{asr.replace(':', '_').replace('/', '_')}.{corpus}.json"
            if not done(dst):
                threads = torch.get_num_threads()
                evaluate_resynthesis(resynth=sub, asr=asr, source=False, output=dst,
                                     speaker_encoder="auto" if speaker and i == 0 else "none")
                torch.set_num_threads(threads)  # CTranslate2 sets OpenMP's to its own
            out[f"{asr}/{corpus}"] = read_json(dst)
    return out


def source_scores(held_out: list[dict], work: Path, asrs: list[str],
                  pocketsphinx_clips: int) -> dict[str, dict]:
    """Each ASR on the original held-out audio (an index whose wavs are the sources)."""
    work.mkdir(parents=True, exist_ok=True)
    index = work / "source.jsonl"
    write_jsonl(index, [{"id": r["id"], "path": r["path"], "source": r["path"],
                         "text": r["text"], "corpus": r["corpus"]} for r in held_out])
    return asr_scores(index, work, asrs, speaker=False, pocketsphinx_clips=pocketsphinx_clips)


# ---------------------------------------------------------------- one tokenizer


def tokenizer_stage(cfg: TokenizerConfig, data: dict[str, Path], work: Path, args: Any,
                    alignments: dict[str, Any], features_abx: bool) -> dict[str, Any]:
    """Everything of one tokenizer: train, tokenize, LM, fast vocoder, resynthesis, ASR
    scores, PNMI, ABX. Returns the row (metrics and seconds per stage)."""
    from spokenlm.eval.abx import evaluate_abx
    from spokenlm.eval.pnmi import evaluate_pnmi
    from spokenlm.lm.train import train_lm
    from spokenlm.pipeline.resynth import resynth
    from spokenlm.tokenize.run import tokenize_manifest
    from spokenlm.tokenize.train import STATS_NAME, train_tokenizer
    from spokenlm.vocoder.train import train_vocoder

    work.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t = time.perf_counter()

    def tick(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        seconds[name] = round(seconds.get(name, 0.0) + now - t, 1)
        t = now

    tok = work / "tokenizer"
    if not done(tok / STATS_NAME):
        train_tokenizer(manifest=data["train"], output=tok, encoder=cfg.encoder,
                        frame_rate=cfg.rate, n_units=cfg.n_units, seed=args.seed,
                        device=args.device, overwrite=True)
    tick("tokenizer")
    units = {name: work / "units" / f"{name}.jsonl" for name in ("train", "held_out")}
    for name, path in units.items():
        if not done(path):
            tokenize_manifest(manifest=data[name], tokenizer=tok, output=path,
                              device=args.device)
    units["lj_train"] = corpus_index(read_jsonl(units["train"]), units["train"], "ljspeech")
    tick("tokenize")
    lm_run = work / "lm"
    if not done(lm_run / "metrics.json"):
        train_lm(units=units["train"], valid_units=units["held_out"], output=lm_run,
                 tokenizer=tok, size="small", n_layers=args.lm_layers, hidden=args.lm_hidden,
                 intermediate=3 * args.lm_hidden, seq_len=256, batch_size=8,
                 max_steps=args.lm_steps, warmup_steps=max(1, args.lm_steps // 10),
                 eval_every=args.lm_steps, save_every=max(1, args.lm_steps // 2),
                 seed=args.seed, device=args.device)
    lm = read_json(lm_run / "metrics.json")
    tick("lm")
    vocoder = train_vocoder(units=units["lj_train"], output=work / "vocoder_fast", type="fast",
                            size="base", max_steps=args.vocoder_steps, n_units=cfg.n_units,
                            segment_frames=round(64 * cfg.rate / 50),  # 1.28 s at any rate
                            save_every=max(1, args.vocoder_steps // 3), seed=args.seed,
                            device=args.device)
    tick("vocoder")
    out = resynth(input=data["held_out"], tokenizer=tok, vocoder=vocoder,
                  output=work / "resynth_fast")
    tick("resynth")
    asr = asr_scores(out / "resynth.jsonl", work / "eval_fast", args.asr, speaker=True,
                     pocketsphinx_clips=args.pocketsphinx_clips)
    tick("asr")
    pnmi_path = work / "pnmi.json"
    if not done(pnmi_path):
        evaluate_pnmi(units=units["held_out"], labels=alignments["alignments"],
                      ignore=["SIL"], output=pnmi_path)
    abx_path = work / "abx.json"
    if not done(abx_path):
        evaluate_abx(tokenizer=tok, item_file=alignments["items_path"],
                     manifest=data["held_out"], output=abx_path, device=args.device,
                     representations=["features", "units"] if features_abx else ["units"])
    tick("pnmi_abx")
    return {"config": cfg.name, "encoder": cfg.encoder, "frame_rate": cfg.rate,
            "n_units": cfg.n_units, "vocoder": "fast", "asr": asr,
            "pnmi": read_json(pnmi_path), "abx": read_json(abx_path),
            "lm": {**{k: lm.get(k) for k in ("valid_loss", "train_loss", "steps", "tokens",
                                              "parameters")},
                   **units_rate(units["held_out"], lm.get("valid_loss"))},
            "tokenizer_stats": {k: read_json(tok / STATS_NAME).get(k)
                                for k in ("n_frames", "audio_hours", "inertia_per_frame")},
            "seconds": seconds}


def units_rate(units: Path, valid_loss: float | None) -> dict[str, float | None]:
    """Deduplicated units per second of held-out audio, and the LM's held-out loss in bits
    per second of audio (loss per unit x units per second / ln 2)."""
    n_units, frames, rate = 0, 0, None
    for row in iter_jsonl(units):
        n_units += len(row["units"])
        frames += int(sum(row["durations"])) if row.get("durations") else len(row["units"])
        rate = rate or row.get("frame_rate")
    if not frames or rate is None:
        return {"units_per_s": None, "valid_bits_per_s": None}
    per_s = n_units / (frames / float(rate))
    bits = None if valid_loss is None else valid_loss * per_s / math.log(2)
    return {"units_per_s": per_s, "valid_bits_per_s": bits}


def hifigan_stage(cfg: TokenizerConfig, data: dict[str, Path], work: Path, args: Any
                  ) -> dict[str, Any]:
    """A short unit HiFi-GAN run on an already trained tokenizer's LJSpeech units, its
    resynthesis of the held-out clips and their ASR scores."""
    from spokenlm.pipeline.resynth import resynth
    from spokenlm.vocoder.train import train_vocoder

    t0 = time.perf_counter()
    vocoder = train_vocoder(units=work / "units" / "train.ljspeech.jsonl",
                            output=work / "vocoder_hifigan",
                            type="hifigan", size=args.hifigan_size, max_steps=args.hifigan_steps,
                            batch_size=args.hifigan_batch, n_units=cfg.n_units,
                            save_every=max(1, args.hifigan_steps // 4), log_every=10,
                            seed=args.seed, device=args.device)
    train_s = time.perf_counter() - t0
    out = resynth(input=data["held_out"], tokenizer=work / "tokenizer", vocoder=vocoder,
                  output=work / "resynth_hifigan")
    asr = asr_scores(out / "resynth.jsonl", work / "eval_hifigan", args.asr, speaker=True,
                     pocketsphinx_clips=args.pocketsphinx_clips)
    return {"config": cfg.name, "encoder": cfg.encoder, "frame_rate": cfg.rate,
            "n_units": cfg.n_units, "vocoder": f"hifigan-{args.hifigan_size}",
            "vocoder_steps": args.hifigan_steps, "asr": asr,
            "pnmi": read_json(work / "pnmi.json"), "abx": read_json(work / "abx.json"),
            "seconds": {"vocoder": round(train_s, 1),
                        "resynth_asr": round(time.perf_counter() - t0 - train_s, 1)}}


# ---------------------------------------------------------------- table


def _num(x: Any, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _pair(asr: dict[str, dict], name: str, key: str) -> str:
    """``"LJ / AN4"`` cell of one ASR's metric (``wer`` or ``cer``)."""
    return " / ".join(_num(asr.get(f"{name}/{c}", {}).get(key), 2) for c in CORPORA)


def table(rows: list[dict], sources: dict[str, dict], asrs: list[str],
          pocketsphinx_clips: int = 0) -> str:
    """Markdown table: one row per (tokenizer, vocoder), then the ASRs on the source audio."""
    def label(asr: str, metric: str) -> str:
        limit = clip_limit(asr, pocketsphinx_clips)
        clips = "" if limit is None else f", {limit} + {limit} clips"
        return f"{asr.split(':')[0]} {metric} (LJ / AN4{clips})"

    head = ["units", "vocoder"] + [label(a, m) for a in asrs for m in ("WER", "CER")] + \
        ["speaker sim. (LJ / AN4)", "PNMI", "phone purity", "ABX within / across, units",
         "ABX within / across, features", "LM bits/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows + [{"config": "source audio", "vocoder": "-", "asr": sources}]:
        cells = [r["config"], r["vocoder"]]
        cells += [_pair(r["asr"], a, m) for a in asrs for m in ("wer", "cer")]
        spk = [r["asr"].get(f"{asrs[0]}/{c}", {}).get("speaker_similarity", {}).get("mean")
               for c in CORPORA] if asrs else [None, None]
        cells.append(" / ".join(_num(s, 2) for s in spk) if any(spk) else "-")
        pnmi, abx = r.get("pnmi") or {}, r.get("abx") or {}
        cells += [_num(pnmi.get("pnmi")), _num(pnmi.get("phone_purity"))]
        for rep in ("units", "features"):
            block = abx.get(rep) or {}
            cells.append(" / ".join(_num(block.get(k)) for k in ("within", "across"))
                         if block else "-")
        cells.append(_num((r.get("lm") or {}).get("valid_bits_per_s"), 0))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: flags that change cached results; the others only choose which rows are made
SETTINGS = ("root", "seed", "eval_lj", "eval_an4", "aligner_steps", "lm_steps", "lm_layers",
            "lm_hidden", "vocoder_steps", "hifigan_steps", "hifigan_size", "hifigan_batch",
            "pocketsphinx_clips", "device")


def check_settings(out: Path, args: Any) -> None:
    """Write ``out/settings.json``, or refuse to reuse a folder made with other settings
    (its cached artifacts would silently mix with the new ones)."""
    settings = {k: str(getattr(args, k)) if isinstance(getattr(args, k), Path) else
                getattr(args, k) for k in SETTINGS}
    path = out / "settings.json"
    if path.exists() and (old := read_json(path)) != settings:
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        sys.exit(f"{path}: this folder was made with other settings {diff} (old, new); "
                 f"rerun with those flags, or pass a new --output")
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, settings)


def record(rows: list[dict], path: Path, flags: list[str]) -> None:
    from run_all import git_commit

    meta = {"run_id": time.strftime("%Y-%m-%dT%H:%M:%S"), "git_commit": git_commit(),
            "flags": flags}
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps({**row, **meta}, default=str) + "\n")


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> list[dict]:
    p = parser(__doc__)
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                   help="folder with ljspeech-part1/ and an4/")
    p.add_argument("--output", type=Path, default=Path("runs/real_speech"),
                   help="work folder (every artifact; a rerun resumes from it)")
    p.add_argument("--encoders", nargs="+", default=["mfcc", "logmel"])
    p.add_argument("--rates", nargs="+", type=float, default=[50.0, 25.0])
    p.add_argument("--units", nargs="+", type=int, default=None, help="unit counts")
    p.add_argument("--asr", nargs="+", default=["whisper", "pocketsphinx"])
    p.add_argument("--eval-lj", type=int, default=None, help="held-out LJSpeech clips")
    p.add_argument("--eval-an4", type=int, default=None,
                   help="held-out AN4 test clips, round-robin over its speakers (0: all)")
    p.add_argument("--aligner-steps", type=int, default=None)
    p.add_argument("--lm-steps", type=int, default=None)
    p.add_argument("--lm-layers", type=int, default=None, help="unit LM depth (LLaMA)")
    p.add_argument("--lm-hidden", type=int, default=None, help="unit LM width")
    p.add_argument("--vocoder-steps", type=int, default=None)
    p.add_argument("--hifigan-steps", type=int, default=None, help="0: no HiFi-GAN row")
    p.add_argument("--hifigan-size", default=None, help="tiny | small | v1")
    p.add_argument("--hifigan-batch", type=int, default=8)
    p.add_argument("--hifigan-config", default="logmel:50:200", help="ENCODER:RATE:UNITS of "
                   "the tokenizer the HiFi-GAN speaks (one of the table's)")
    p.add_argument("--pocketsphinx-clips", type=int, default=None,
                   help="clips per corpus pocketsphinx transcribes (the first by id, the same "
                        "for the source audio; 0: all): it decodes poor resynthesis at ~0.3x "
                        "real time")
    p.add_argument("--no-record", action="store_true", help="do not append to results.jsonl")
    p.add_argument("--results", type=Path, default=HERE / "results.jsonl")
    p.set_defaults(threads=1)  # on shared cores, 2 torch threads ran the vocoder 10x slower
    args = p.parse_args(argv)
    for key, value in SIZES["full" if args.full else "reduced"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not (args.root / "ljspeech-part1").is_dir() or not (args.root / "an4").is_dir():
        row = {"bench": BENCH, "skipped": f"{args.root}: no ljspeech-part1/ and an4/ (the "
                                          f"real-speech clips, see shared/data/README.md)"}
        print(json.dumps(row), flush=True)
        return [row]
    device = setup(args)
    args.device = str(device)
    t0 = time.perf_counter()
    out = args.output
    check_settings(out, args)
    work = out / "data"
    work.mkdir(parents=True, exist_ok=True)
    rows_all = corpus_manifest(args.root, work)
    train_rows, held_rows = split_rows(rows_all, args.eval_lj, args.eval_an4,
                                       args.seed)
    data = {"train": write_manifest(train_rows, work / "train.jsonl"),
            "held_out": write_manifest(held_rows, work / "held_out.jsonl")}
    minutes = {name: round(sum(r["duration"] for r in rs) / 60, 1)
               for name, rs in (("train", train_rows), ("held_out", held_rows))}
    log(f"{len(train_rows)} training clips ({minutes['train']} min), {len(held_rows)} held out "
        f"({minutes['held_out']} min)")
    aligner = aligner_stage(data["train"], data["held_out"], out / "aligner", args.aligner_steps,
                            args.device)
    log(f"aligner: PER {aligner['per']}, {aligner['aligned']} aligned, {aligner['items']} items")
    sources = source_scores(held_rows, out / "source", args.asr, args.pocketsphinx_clips)
    configs = [TokenizerConfig(e, r, k) for e, r, k in
               itertools.product(args.encoders, args.rates, args.units)]
    rows, seen = [], set()
    for cfg in configs:
        log(f"== {cfg.name}")
        row = tokenizer_stage(cfg, data, out / cfg.name, args, aligner,
                              features_abx=(cfg.encoder, cfg.rate) not in seen)
        seen.add((cfg.encoder, cfg.rate))
        rows.append(row)
        log(f"{cfg.name}: {json.dumps(row['seconds'])}")
    hifi = TokenizerConfig.parse(args.hifigan_config)
    if args.hifigan_steps and hifi in configs:
        rows.append(hifigan_stage(hifi, data, out / hifi.name, args))
    elif args.hifigan_steps:
        log(f"--hifigan-config {args.hifigan_config} is not one of the table's tokenizers; "
            f"no HiFi-GAN row")
    md = table(rows, sources, args.asr, args.pocketsphinx_clips)
    (out / "table.md").write_text(md + "\n")
    print(md, file=sys.stderr)
    info = {"bench": BENCH, "device": device_info(device), "total_s": round(time.perf_counter()
                                                                             - t0, 1),
            "data": {"train_clips": len(train_rows), "held_out_clips": len(held_rows),
                     "minutes": minutes},
            "aligner": {k: v for k, v in aligner.items() if k not in ("alignments",
                                                                       "items_path")},
            "sources": sources, "size": {k: getattr(args, k) for k in SIZES["reduced"]}}
    lines = [{"bench": BENCH, "part": "row", **compact(r)} for r in rows] + \
        [{**info, "part": "summary", "table": md}]
    for line in lines:
        print(json.dumps(line, default=str), file=sys.__stdout__, flush=True)
    if not args.no_record:
        record(lines, args.results, sys.argv[1:] if argv is None else list(argv))
    return lines


def compact(row: dict) -> dict:
    """A table row without the per-utterance lists the metrics JSONs carry."""
    def strip(m: dict) -> dict:
        return {k: v for k, v in m.items() if not isinstance(v, (list, dict)) or
                k in ("speaker_similarity",)} if isinstance(m, dict) else m

    out = dict(row)
    out["asr"] = {k: {**strip(v), "speaker_similarity": {
        kk: vv for kk, vv in (v.get("speaker_similarity") or {}).items()
        if not isinstance(vv, (list, dict))}} for k, v in row["asr"].items()}
    out["pnmi"] = strip(row.get("pnmi") or {})
    out["abx"] = {k: strip(v) for k, v in (row.get("abx") or {}).items()
                  if k in ("features", "units")}
    return out


if __name__ == "__main__":
    main()
