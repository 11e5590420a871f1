"""``spokenlm asr train`` (CTC fine-tuning of any spokenlm encoder) and ``spokenlm asr eval``.

The encoder's transformer is frozen for the first ``--freeze-encoder-steps`` steps (only
the head and adapter train), then fine-tuned; the conv front-end stays frozen. Run dir:
``checkpoints/`` (resumable, as the LM trainer), ``log.jsonl``, ``final/`` (a
:class:`CTCModel` dir), ``metrics.json`` (error rates on ``--valid-manifest``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..audio.load import load_row
from ..audio.manifest import read_manifest
from ..common.checkpoints import reading, restore_checkpoint
from ..common.errors import InputError
from ..common.files import write_json, write_jsonl
from ..common.options import arg, command
from ..common.paths import store_path
from ..common.progress import log, progress
from ..ssl.data import DataState, EpochRecipe
from ..ssl.masking import span_mask
from ..tokenize.encoders import ENCODERS, encoder_options
from ..training import Env, TrainerOptions, fit, init, shard_slice
from .batching import CTCBatches
from .ctc_model import Adapter, CTCConfig, CTCModel
from .text import Unit, Vocab, error_rates, reference_text, row_tokens

#: fine-tuning an encoder: the defaults (Adam (0.9, 0.98), decay 0.01), a tighter clip
ASR_TRAINER = TrainerOptions(clip_grad=5.0, eval_every=0)


@dataclass
class ASRTrainOptions:
    manifest: Path = arg(positional=True, help="labelled manifest (text / phonemes per row)")
    output: Path = arg(help="run dir (checkpoints/, log.jsonl, final/, metrics.json)")
    valid_manifest: Path | None = arg(None, help="manifest scored at the end (and every "
                                      "--eval-every steps)")
    encoder: str = arg("hubert", help=f"encoder, one of {sorted(ENCODERS)}")
    encoder_path: Path | None = arg(None, help="model dir for hubert/wav2vec2 (e.g. the "
                                    "final/ dir of `spokenlm ssl train`)")
    layer: int | None = arg(None, help="transformer layers kept (default: all)")
    unit: Unit = arg("chars", help="chars (WER/CER) or phonemes (PER)")
    adapter: Adapter = arg("auto", help="auto: transformer on encoders without weights "
                           "(mfcc, logmel), none on SSL encoders")
    adapter_layers: int = arg(3, help="adapter layers")
    adapter_dim: int = arg(96, help="adapter width")
    dropout: float = arg(0.1, help="dropout before the head and in the adapter")
    mask_prob: float = arg(0.3, help="time masking while training (span 10)")
    max_utterances: int | None = arg(None, help="train on the first N utterances")
    max_minutes: float | None = arg(None, help="train on the first N minutes of audio")
    batch_size: int = arg(8, help="utterances per step, over all processes")
    freeze_encoder_steps: int = arg(100, help="steps with the encoder frozen")
    trainer: TrainerOptions = arg(ASR_TRAINER, help="training loop options (--eval-every: "
                                  "steps between validation scores on --valid-manifest)")


def select_rows(rows: list[dict], max_utterances: int | None,
                max_minutes: float | None) -> list[dict]:
    """The first rows up to ``max_utterances`` and ``max_minutes`` (by ``duration``)."""
    out, seconds = [], 0.0
    for r in rows:
        if max_utterances is not None and len(out) >= max_utterances:
            break
        if max_minutes is not None and seconds >= 60 * max_minutes:
            break
        out.append(r)
        seconds += float(r.get("duration") or 0)
    return out


def ctc_loss(log_probs: torch.Tensor, frames: torch.Tensor,
             targets: list[list[int]]) -> torch.Tensor:
    """Mean CTC loss per target token: log_probs (B, F, V), frames (B,), targets (B, L_b)."""
    flat = torch.tensor([t for seq in targets for t in seq], dtype=torch.long)
    lens = torch.tensor([len(s) for s in targets], dtype=torch.long)
    return F.ctc_loss(log_probs.transpose(0, 1), flat, frames.cpu(), lens, blank=0,
                      reduction="mean", zero_infinity=True)


def evaluate_rows(model: CTCModel, rows: list[dict], desc: str = "asr eval"
                  ) -> tuple[dict[str, float], list[dict]]:
    """Error rates of ``model`` on manifest rows, and per-utterance hypotheses."""
    refs, hyps, out = [], [], []
    for r in progress(rows, desc=desc, unit="utt"):
        hyp = model.transcribe(load_row(r))
        ref = reference_text(r, model.vocab.unit)
        refs.append(ref)
        hyps.append(hyp)
        out.append({"id": r["id"], "ref": ref, "hyp": hyp})
    return {**error_rates(refs, hyps, model.vocab.unit), "n_utterances": len(rows)}, out


def _load_checkpoint(path: Path, model: CTCModel) -> dict[str, Any]:
    """Read checkpoint ``path`` (a CTC model dir + trainer state), check it fits ``model``,
    then load its weights into it; return the trainer state."""
    with reading(path):
        weights = CTCModel.from_pretrained(path).state_dict()
    return restore_checkpoint(path, model, weights)


class CTCRecipe(EpochRecipe):
    """CTC on length-grouped batches; each process loads its rows of each batch."""

    name = "asr train"
    unused_parameters = True  # the encoder gets no gradient while frozen

    def __init__(self, model: CTCModel, data: CTCBatches, valid_rows: list[dict],
                 opts: ASRTrainOptions, env: Env) -> None:
        self.model, self.data, self.valid_rows, self.opts, self.env = (model, data, valid_rows,
                                                                       opts, env)
        self.position = DataState()

    def batches(self, step: int, shards: range, n_shards: int) -> list[Any]:
        ds = self.position
        epoch = self.data.epoch_batches(ds.epoch)
        idx = epoch[ds.batch]
        self.position = (DataState(ds.epoch, ds.batch + 1) if ds.batch + 1 < len(epoch)
                         else DataState(ds.epoch + 1, 0))
        out = []
        for s in shards:
            part = shard_slice(len(idx), s, n_shards)
            wav, lengths, targets = self.data.load(idx[part])
            mask = None
            if self.model.adapter is not None and self.opts.mask_prob > 0:
                samples = [self.data.length(i) for i in idx]  # the whole batch's mask
                samples[part] = lengths.tolist()
                frames = self.model.encoder.num_frames  # the encoder's own frame rate
                mask = span_mask([frames(t) for t in samples], self.opts.mask_prob, 10,
                                 seed=(self.opts.trainer.seed, 7, step),
                                 max_frames=frames(max(samples)))
                mask = mask[part, :frames(int(lengths.max()))]
            out.append((wav, lengths, targets, mask))
        return out

    def loss(self, model: nn.Module, batch: Any, step: int) -> dict[str, Any]:
        wav, lengths, targets, mask = batch
        frozen = step < self.opts.freeze_encoder_steps
        d = self.env.device
        log_probs, frames = model(wav.to(d), lengths, freeze_encoder=frozen,
                                  mask=None if mask is None else mask.to(d))
        return {"loss": ctc_loss(log_probs, frames, targets), "frozen": float(frozen)}

    def evaluate(self, model: nn.Module, step: int | None) -> dict[str, float]:
        if not self.valid_rows or step is None:  # the final scores: see train_asr
            return {}
        assert isinstance(model, CTCModel)
        return evaluate_rows(model, self.valid_rows, desc="valid")[0]

    def read_checkpoint(self, path: Path) -> dict[str, Any]:
        return _load_checkpoint(path, self.model)

    def run_info(self) -> dict[str, Any]:
        return {"trainable_parameters": sum(p.numel() for p in self.model.parameters()
                                            if p.requires_grad),
                "vocab_size": len(self.model.vocab)}

    def describe(self) -> str:
        minutes = sum(float(r.get("duration") or 0) for r in self.data.rows) / 60
        return (f"{self.opts.encoder} + {self.model.config.adapter} adapter, "
                f"{self.run_info()['trainable_parameters'] / 1e6:.2f}M trainable, "
                f"{len(self.data.rows)} utterances ({minutes:.1f} min), {len(self.model.vocab)} "
                f"{self.opts.unit}")


@command("asr train", ASRTrainOptions)
def train_asr(opts: ASRTrainOptions) -> Path:
    """Fine-tune an encoder with a CTC head on transcribed audio; returns final/."""
    t, env = opts.trainer, init(opts.trainer)
    rows = select_rows(read_manifest(opts.manifest), opts.max_utterances, opts.max_minutes)
    if not rows:
        raise InputError(f"{opts.manifest}: no utterances to train on")
    vocab = Vocab.build((row_tokens(r, opts.unit, opts.manifest) for r in rows), opts.unit)
    path = None if opts.encoder_path is None else str(Path(opts.encoder_path).resolve())
    enc = encoder_options(opts.encoder, path=path, layer=opts.layer)
    if opts.encoder in ("hubert", "wav2vec2") and opts.layer is None and path is not None:
        enc["layer"] = int(json.loads((Path(path) / "config.json").read_text())
                           ["num_hidden_layers"])
    torch.manual_seed(t.seed)
    np.random.seed(t.seed)  # HF SpecAugment draws its masks from numpy's global RNG
    model = CTCModel(CTCConfig(encoder=enc, unit=opts.unit, adapter=opts.adapter,
                               adapter_layers=opts.adapter_layers, adapter_dim=opts.adapter_dim,
                               dropout=opts.dropout, mask_prob=opts.mask_prob), vocab)
    data = CTCBatches(rows, vocab, opts.batch_size, t.seed, opts.manifest)
    valid_rows = read_manifest(opts.valid_manifest) if opts.valid_manifest else []
    run = opts.output
    result = fit(CTCRecipe(model, data, valid_rows, opts, env), t, env, run, record=opts)
    final = run / "final"
    if env.main:
        model.save_pretrained(final)
        metrics: dict[str, Any] = {}
        if valid_rows:
            metrics, hyps = evaluate_rows(model, valid_rows, desc="valid")
            write_jsonl(run / "valid_hypotheses.jsonl", hyps)
        minutes = sum(float(r.get("duration") or 0) for r in rows) / 60
        write_json(run / "metrics.json", {
            "metric": "asr_ctc", **metrics, "train_loss": result.last.get("loss"),
            "steps": result.steps, "train_minutes_audio": minutes,
            "train_seconds": result.time_s,
            "inputs": {k: store_path(v, run / "metrics.json") for k, v in
                       (("manifest", opts.manifest), ("valid_manifest", opts.valid_manifest),
                        ("encoder_path", opts.encoder_path))}})
        log(f"CTC model written to {final} {metrics}")
    env.barrier()
    return final


@dataclass
class ASREvalOptions:
    model: Path = arg(positional=True, help="CTC model dir (final/ of `spokenlm asr train`)")
    manifest: Path = arg(positional=True, help="manifest with text (or phonemes)")
    output: Path = arg(Path("asr_metrics.json"), help="metrics JSON to write")
    hypotheses: Path | None = arg(None, output=True, help="also write id/ref/hyp JSONL here")
    max_utterances: int | None = arg(None, help="score the first N utterances only")
    device: str = arg("cpu", help="cpu, cuda, ...")


@command("asr eval", ASREvalOptions)
def eval_asr(opts: ASREvalOptions) -> dict[str, Any]:
    """WER/CER (characters) or PER (phonemes) of a CTC model on a manifest."""
    model = CTCModel.from_pretrained(opts.model, device=opts.device)
    rows = select_rows(read_manifest(opts.manifest), opts.max_utterances, None)
    metrics, hyps = evaluate_rows(model, rows)
    if opts.hypotheses is not None:
        write_jsonl(opts.hypotheses, hyps)
    result = {"metric": "asr", **metrics,
              "inputs": {"model": store_path(opts.model, opts.output),
                         "manifest": store_path(opts.manifest, opts.output)}}
    write_json(opts.output, result)
    log(f"{opts.manifest}: {metrics}")
    return result
