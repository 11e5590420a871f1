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
from typing import Any

import numpy as np
import torch

from ..audio.constants import FRAME_RATE
from ..audio.manifest import read_manifest
from ..common.errors import InputError
from ..common.files import read_json, read_jsonl
from ..common.options import arg, command
from ..data.phonemes import split_phones
from ..ssl.targets import TargetSpec, load_labels, make_targets
from ..training import Env, TrainerOptions, fit, init, shard_slice
from .loop import JOINT_TRAINER, JointRecipe, write_final
from .t2u import SILENCE, T2UConfig, T2UModel

#: FastSpeech-like text-to-unit model: a higher lr and a shorter run than the encoders
T2U_TRAINER = JOINT_TRAINER.replace(lr=1e-3, warmup_steps=50, max_steps=500)


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
    batch_size: int = arg(16, help="utterances per step, over all processes")
    dropout: float = arg(0.1, help="dropout")
    trainer: TrainerOptions = arg(T2U_TRAINER, help="training loop options")


def even_durations(n_phones: int, n_frames: int) -> np.ndarray:
    """(P,) frames per phone spreading ``n_frames`` evenly (sums to ``n_frames``)."""
    edges = np.round(np.linspace(0, n_frames, n_phones + 1)).astype(np.int64)
    return np.diff(edges)


def aligned_durations(intervals: list[list], n_frames: int) -> tuple[list[str], np.ndarray]:
    """Phones (``sil`` included) and frames per interval, summing to ``n_frames``."""
    phones = [str(p) for _, _, p in intervals]
    edges = np.round(np.array([s for s, _, _ in intervals] + [intervals[-1][1]]) * FRAME_RATE)
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


class T2URecipe(JointRecipe):
    """Phones, durations and frame units of utterances drawn by (seed, step)."""

    def __init__(self, model: T2UModel, examples: list, opts: T2UTrainOptions,
                 env: Env) -> None:
        super().__init__("t2u train", model, env)
        self.examples, self.opts = examples, opts
        self.ids = [model.phone_ids(ph) for ph, _, _ in examples]

    def shard(self, step: int, shard: int, n_shards: int) -> Any:
        rng = np.random.default_rng([self.opts.trainer.seed, 3, step])
        idx = rng.integers(0, len(self.examples),
                           size=min(self.opts.batch_size, len(self.examples)))
        idx = idx[shard_slice(len(idx), shard, n_shards)]
        ex, ids = self.examples, self.ids
        plen = torch.tensor([len(ids[i]) for i in idx])
        x = torch.zeros(len(idx), int(plen.max()), dtype=torch.long)
        d = torch.zeros_like(x)
        u = torch.full((len(idx), max(len(ex[i][2]) for i in idx)), -100, dtype=torch.long)
        for b, i in enumerate(idx):
            x[b, : plen[b]] = torch.tensor(ids[i])
            d[b, : plen[b]] = torch.from_numpy(ex[i][1])
            u[b, : len(ex[i][2])] = torch.from_numpy(ex[i][2])
        return x, plen, d, u

    def loss(self, model: torch.nn.Module, batch: Any, step: int) -> dict[str, Any]:
        dev = self.env.device
        return model.loss(*(t.to(dev) for t in batch))  # type: ignore[operator]


@command("joint t2u train", T2UTrainOptions)
def train_t2u(opts: T2UTrainOptions) -> Path:
    """Train SpeechLM-H's text-to-unit model (phonemes -> durations -> hidden units)."""
    t, env = opts.trainer, init(opts.trainer)
    torch.manual_seed(t.seed)
    rows = read_manifest(opts.manifest)
    if opts.units is None:
        if opts.tokenizer is None:
            raise InputError("t2u train needs the speech's units: pass --units JSONL "
                             "(tokenized without dedup) or --tokenizer DIR")
        _, (units_path,) = env.first(lambda: make_targets(
            [opts.manifest], opts.output / "targets", TargetSpec(device=t.device),
            opts.tokenizer))
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
    model = T2UModel(cfg)
    env.log(f"t2u train: {len(examples)} paired utterances, {len(phones)} phones, {n_units} "
            f"units, durations from {'alignments' if ali else 'even split'}")
    result = fit(T2URecipe(model, examples, opts, env), t, env, opts.output, record=opts)
    return write_final(model, result, opts, env, "t2u_train")
