"""``spokenlm joint t2u train``: the text-to-unit model of SpeechLM-H on the paired subset.

Inputs: a manifest with ``phonemes`` (the paired subset), its frame-level hidden units (a
units JSONL written without dedup, e.g. by ``spokenlm tokenize run --no-dedup`` or
``spokenlm ssl train``'s ``targets/``; or ``--tokenizer DIR`` to label it here), and
optionally ``spokenlm asr align`` output for phone durations. Run dir: ``checkpoints/``,
``log.jsonl``, ``final/`` (a :class:`T2UModel` dir), ``metrics.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio.manifest import read_manifest
from ..common.errors import InputError
from ..common.files import read_json, read_jsonl, write_json
from ..common.options import arg, command
from ..common.paths import stored_fields
from ..common.progress import log
from ..data.phonemes import split_phones
from ..ssl.targets import TargetSpec, load_labels, make_targets
from .loop import LoopSettings, device_of, train_loop
from .t2u import SILENCE, T2UConfig, T2UModel


@dataclass
class T2UTrainOptions:
    manifest: Path = arg(positional=True, help="paired manifest (rows with phonemes)")
    output: Path = arg(help="run dir (checkpoints/, log.jsonl, final/)")
    units: Path | None = arg(None, help="frame units JSONL of the manifest (no dedup)")
    tokenizer: Path | None = arg(None, help="tokenizer dir to label the manifest with "
                                 "(instead of --units)")
    alignments: Path | None = arg(None, help="`spokenlm asr align` JSONL for phone durations "
                                  "(default: phones spread evenly over the frames)")
    hidden: int = arg(96, help="model width")
    layers: int = arg(2, help="encoder and decoder layers each")
    batch_size: int = arg(16, help="utterances per step")
    lr: float = arg(1e-3, help="peak learning rate")
    warmup_steps: int = arg(50, help="linear warmup steps")
    max_steps: int = arg(500, help="optimizer steps")
    dropout: float = arg(0.1, help="dropout")
    device: str = arg("auto", help="auto, cpu, cuda, ...")
    seed: int = arg(0, help="seed of init and batches")
    log_every: int = arg(10, help="steps between log lines")
    save_every: int = arg(200, help="steps between checkpoints")
    resume: bool = arg(True, help="continue from checkpoints/latest when present")


def even_durations(n_phones: int, n_frames: int) -> np.ndarray:
    """(P,) frames per phone spreading ``n_frames`` evenly (sums to ``n_frames``)."""
    edges = np.round(np.linspace(0, n_frames, n_phones + 1)).astype(np.int64)
    return np.diff(edges)


def aligned_durations(intervals: list[list], n_frames: int) -> tuple[list[str], np.ndarray]:
    """Phones (``sil`` included) and frames per interval, summing to ``n_frames``."""
    phones = [str(p) for _, _, p in intervals]
    edges = np.round(np.array([s for s, _, _ in intervals] + [intervals[-1][1]]) * 50)
    edges = np.clip(edges.astype(np.int64), 0, n_frames)
    edges[-1] = n_frames
    return phones, np.diff(edges).clip(min=0)


def training_examples(rows: list[dict], labels: dict[str, np.ndarray],
                      alignments: dict[str, dict] | None, source: Path
                      ) -> list[tuple[list[str], np.ndarray, np.ndarray]]:
    """[(phones, durations (P,), frame units (F,))] for rows with units (and alignments)."""
    out = []
    for r in rows:
        units = labels.get(r["id"])
        if units is None:
            continue
        if alignments is not None:
            ali = alignments.get(r["id"])
            if ali is None or not ali.get("intervals"):
                continue
            phones, dur = aligned_durations(ali["intervals"], len(units))
        else:
            if not r.get("phonemes"):
                raise InputError(f"{source}: row {r['id']!r} has no phonemes; the t2u model "
                                 f"needs phonemes (make the corpus with `spokenlm data synth`)")
            phones = [SILENCE, *split_phones(r["phonemes"]), SILENCE]
            dur = even_durations(len(phones), len(units))
        out.append((phones, dur, units))
    if not out:
        raise InputError(f"{source}: no utterance has both units and durations; check that "
                         f"--units/--alignments were made from this manifest")
    return out


@command("joint t2u train", T2UTrainOptions)
def train_t2u(opts: T2UTrainOptions) -> Path:
    """Train SpeechLM-H's text-to-unit model (phonemes -> durations -> hidden units)."""
    torch.manual_seed(opts.seed)
    rows = read_manifest(opts.manifest)
    if opts.units is None:
        if opts.tokenizer is None:
            raise InputError("t2u train needs the speech's units: pass --units JSONL "
                             "(tokenized without dedup) or --tokenizer DIR")
        _, (units_path,) = make_targets([opts.manifest], opts.output / "targets",
                                        TargetSpec(device=opts.device), opts.tokenizer)
    else:
        units_path = opts.units
    labels = load_labels(units_path)
    ali = ({a["id"]: a for a in read_jsonl(opts.alignments)}
           if opts.alignments is not None else None)
    examples = training_examples(rows, labels, ali, opts.manifest)
    n_units = int(max(int(u.max()) for _, _, u in examples) + 1)
    if opts.tokenizer is not None:
        n_units = max(n_units, int(read_json(opts.tokenizer / "config.json")["n_units"]))
    phones = sorted({p for ph, _, _ in examples for p in ph} | {SILENCE})
    cfg = T2UConfig(phones=phones, n_units=n_units, hidden=opts.hidden, heads=2,
                    ffn=opts.hidden * 4, encoder_layers=opts.layers, decoder_layers=opts.layers,
                    dropout=opts.dropout)
    device = device_of(LoopSettings(device=opts.device))
    model = T2UModel(cfg).to(device)
    ids = [model.phone_ids(ph) for ph, _, _ in examples]

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([opts.seed, 3, step])
        idx = rng.integers(0, len(examples), size=min(opts.batch_size, len(examples)))
        plen = torch.tensor([len(ids[i]) for i in idx])
        flen = max(len(examples[i][2]) for i in idx)
        x = torch.zeros(len(idx), int(plen.max()), dtype=torch.long)
        d = torch.zeros_like(x)
        u = torch.full((len(idx), flen), -100, dtype=torch.long)
        for b, i in enumerate(idx):
            x[b, : plen[b]] = torch.tensor(ids[i])
            d[b, : plen[b]] = torch.from_numpy(examples[i][1])
            u[b, : len(examples[i][2])] = torch.from_numpy(examples[i][2])
        return model.loss(x.to(device), plen.to(device), d.to(device), u.to(device))

    settings = LoopSettings(max_steps=opts.max_steps, lr=opts.lr, warmup_steps=opts.warmup_steps,
                            log_every=opts.log_every, save_every=opts.save_every,
                            resume=opts.resume, device=opts.device)
    log(f"t2u train: {len(examples)} paired utterances, {len(phones)} phones, {n_units} units, "
        f"durations from {'alignments' if ali else 'even split'}")
    metrics = train_loop(model, step_fn, opts.output, settings, "t2u train")
    final = model.cpu().save_pretrained(opts.output / "final")
    write_json(opts.output / "metrics.json", {"metric": "t2u_train", **metrics,
                                              "options": stored_fields(
                                                  opts, opts.output / "metrics.json")})
    return final
