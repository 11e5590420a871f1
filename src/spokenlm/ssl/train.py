"""``spokenlm ssl train``: HuBERT-style pretraining on a manifest's audio.

One call is one HuBERT iteration: make targets (k-means of ``--target-encoder`` features:
``mfcc`` for iteration 1; ``hubert --target-encoder-path <iteration-1>/final
--target-layer L`` for iteration 2), then train the masked-prediction model. Run dir::

    targets/        tokenizer/ + <manifest>.jsonl frame labels (reused on rerun)
    checkpoints/    step_XXXXXXXX/ (model + trainer_state.pt), latest
    log.jsonl       step, loss, acc_masked, acc_unmasked, lr (+ valid_loss, valid_acc)
    final/          HF HubertModel dir (+ ssl head) -> encoder "hubert", path=final
    metrics.json

Resumable: rerun with the same options and it continues from ``checkpoints/latest``, or
the newest intact checkpoint before it when that one is damaged (weights, optimizer,
scheduler, RNG, data position; masks are seeded by step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..audio.constants import SAMPLE_RATE
from ..audio.manifest import read_manifest
from ..common.checkpoints import read_weights, reading, restore_checkpoint
from ..common.errors import InputError
from ..common.files import write_json
from ..common.hub import local_or_hub
from ..common.options import arg, command
from ..common.paths import store_path
from ..common.progress import log
from ..training import Env, TrainerOptions, fit, init, shard_slice
from .config import HeadConfig, SSLSize, default_final_dim, hubert_config
from .data import CropBatches, DataState, EpochRecipe
from .masking import span_mask
from .model import HEAD_WEIGHTS, HubertPretrainModel
from .targets import TargetSpec, load_labels, make_targets

#: HuBERT's fairseq recipe: the defaults (Adam (0.9, 0.98), decay 0.01) and clip 10
SSL_TRAINER = TrainerOptions(clip_grad=10.0)


@dataclass
class SSLTrainOptions:
    manifest: Path = arg(positional=True, help="audio manifest (JSONL) to pretrain on")
    output: Path = arg(help="run directory (targets/, checkpoints/, log.jsonl, final/)")
    valid_manifest: Path | None = arg(None, help="manifest for validation loss/accuracy")
    size: SSLSize = arg("tiny", help="tiny (CPU minutes), small, base (HuBERT Base, 95M)")
    layers: int | None = arg(None, help="override the preset's transformer layers")
    target_encoder: str = arg("mfcc", help="features clustered for targets: mfcc "
                              "(iteration 1) or hubert (iteration 2)")
    target_encoder_path: Path | None = arg(None, help="iteration-1 model dir (final/) for "
                                           "--target-encoder hubert")
    target_layer: int = arg(6, help="layer of --target-encoder-path to cluster")
    n_clusters: int = arg(100, help="k-means clusters = prediction classes")
    kmeans_max_frames: int = arg(200_000, help="frames sampled to fit k-means")
    targets: Path | None = arg(None, help="use this tokenizer dir for targets instead of "
                               "fitting one")
    init_from: Path | None = arg(None, help="start from this SSL dir's encoder weights")
    mask_prob: float = arg(0.65, help="span-start probability x span (HuBERT 0.65)")
    mask_length: int = arg(10, help="frames per masked span (HuBERT 10)")
    unmasked_weight: float = arg(0.0, help="loss weight of unmasked frames")
    temperature: float = arg(0.1, help="cosine-similarity logit temperature")
    feature_grad_mult: float = arg(0.1, help="gradient scale of the conv front-end")
    normalize: bool = arg(True, help="zero-mean unit-variance input audio")
    dropout: float | None = arg(None, help="override dropout (tiny: 0, else 0.1)")
    batch_size: int = arg(8, help="utterances per step, over all processes")
    max_seconds: float = arg(4.0, help="longest crop per utterance (s)")
    eval_batches: int = arg(8, help="validation batches per pass")
    trainer: TrainerOptions = arg(SSL_TRAINER, help="training loop options")


def build_model(opts: SSLTrainOptions) -> HubertPretrainModel:
    overrides = {} if opts.layers is None else {"num_hidden_layers": opts.layers}
    config = hubert_config(opts.size, dropout=opts.dropout, mask_prob=opts.mask_prob,
                           mask_length=opts.mask_length, **overrides)
    head = HeadConfig(n_clusters=opts.n_clusters, final_dim=default_final_dim(opts.size),
                      temperature=opts.temperature, unmasked_weight=opts.unmasked_weight)
    torch.manual_seed(opts.trainer.seed)
    model = HubertPretrainModel(config, head, normalize=opts.normalize,
                                feature_grad_mult=opts.feature_grad_mult)
    if opts.init_from is not None:
        from transformers import HubertModel

        src = HubertModel.from_pretrained(str(local_or_hub(opts.init_from, "SSL model")),
                                          local_files_only=True)
        model.hubert.load_state_dict(src.state_dict())
    return model


def step_mask(n_frames: int, batch: int, opts: SSLTrainOptions, step: int) -> torch.Tensor:
    """The span mask (B, F) of training step ``step`` (seeded by (seed, step))."""
    return span_mask([n_frames] * batch, opts.mask_prob, opts.mask_length,
                     seed=(opts.trainer.seed, 7, step))


@torch.no_grad()
def evaluate(model: HubertPretrainModel, data: CropBatches, opts: SSLTrainOptions,
             device: torch.device) -> dict[str, float]:
    """Masked loss and accuracy on fixed crops and masks of the first batches of epoch 0."""
    was = model.training
    model.eval()
    losses, accs = [], []
    for b, idx in enumerate(data.epoch_batches(0)[: opts.eval_batches]):
        wav, lab = data.load(idx, seed=(opts.trainer.seed, 99, b))
        mask = span_mask([lab.shape[1]] * len(idx), opts.mask_prob, opts.mask_length,
                         seed=(opts.trainer.seed, 99, b))
        out = model(wav.to(device), lab.to(device), mask.to(device))
        losses.append(float(out.loss))
        accs.append(out.acc_masked)
    model.train(was)
    return {"valid_loss": float(np.mean(losses)), "valid_acc": float(np.nanmean(accs))}


def _load_checkpoint(path: Path, model: HubertPretrainModel) -> dict[str, Any]:
    """Read the encoder, the head and the trainer state of checkpoint ``path``, check they
    fit ``model``, then load them into it; return the trainer state."""
    from transformers import HubertModel

    with reading(path):
        encoder = HubertModel.from_pretrained(str(path), local_files_only=True).state_dict()
    weights = {**{f"hubert.{k}": v for k, v in encoder.items()},
               **read_weights(path / HEAD_WEIGHTS)}
    return restore_checkpoint(path, model, weights)


class SSLRecipe(EpochRecipe):
    """Masked prediction on equal-length crops; each process loads its rows of each batch."""

    name = "ssl train"

    def __init__(self, model: HubertPretrainModel, data: CropBatches,
                 valid: CropBatches | None, opts: SSLTrainOptions, env: Env) -> None:
        self.model, self.data, self.valid, self.opts, self.env = model, data, valid, opts, env
        self.position = DataState()

    def batches(self, step: int, shards: range, n_shards: int) -> list[Any]:
        state, seed = self.position, (self.data.seed, self.position.epoch, self.position.batch)
        idx, self.position = self.data.batch_at(state)
        out = []
        for s in shards:
            part = shard_slice(len(idx), s, n_shards)
            wav, lab = self.data.load(idx, seed=seed, part=part)
            mask = step_mask(lab.shape[1], len(idx), self.opts, step)[part]
            out.append((wav, lab, mask))
        return out

    def loss(self, model: nn.Module, batch: Any, step: int) -> dict[str, Any]:
        wav, lab, mask = batch
        d = self.env.device
        out = model(wav.to(d), lab.to(d), mask.to(d))
        return {"loss": out.loss, "acc_masked": out.acc_masked,
                "acc_unmasked": out.acc_unmasked}

    def evaluate(self, model: nn.Module, step: int | None) -> dict[str, float]:
        if self.valid is None:
            return {}
        assert isinstance(model, HubertPretrainModel)
        return evaluate(model, self.valid, self.opts, self.env.device)

    def read_checkpoint(self, path: Path) -> dict[str, Any]:
        return _load_checkpoint(path, self.model)

    def describe(self) -> str:
        o = self.opts
        return (f"{sum(p.numel() for p in self.model.hubert.parameters()) / 1e6:.2f}M encoder "
                f"params ({o.size}), {len(self.data.rows)} utterances, {o.n_clusters} targets "
                f"from {o.target_encoder}")


@command("ssl train", SSLTrainOptions)
def train_ssl(opts: SSLTrainOptions) -> Path:
    """HuBERT-style pretraining (one iteration); returns the final encoder dir."""
    t, env = opts.trainer, init(opts.trainer)
    run = opts.output
    if opts.target_encoder == "hubert" and opts.target_encoder_path is None:
        raise InputError("--target-encoder hubert needs --target-encoder-path (the "
                         "iteration-1 run's final/ dir)")
    manifests = [opts.manifest] + ([opts.valid_manifest] if opts.valid_manifest else [])
    spec = TargetSpec(opts.target_encoder, opts.target_encoder_path, opts.target_layer,
                      opts.n_clusters, opts.kmeans_max_frames, seed=t.seed, device=t.device)
    tokenizer, label_files = env.first(lambda: make_targets(manifests, run / "targets", spec,
                                                            opts.targets))
    n_tok = int(json.loads((tokenizer / "config.json").read_text())["n_units"])
    if n_tok != opts.n_clusters:
        raise InputError(f"{tokenizer}: {n_tok} units but --n-clusters {opts.n_clusters}; "
                         f"pass --n-clusters {n_tok}")
    max_samples = int(opts.max_seconds * SAMPLE_RATE)
    data = CropBatches(read_manifest(opts.manifest), load_labels(label_files[0]),
                       opts.batch_size, max_samples, t.seed, opts.manifest)
    valid = (CropBatches(read_manifest(opts.valid_manifest), load_labels(label_files[1]),
                         opts.batch_size, max_samples, t.seed, opts.valid_manifest)
             if opts.valid_manifest else None)
    model = build_model(opts)
    n_params = sum(p.numel() for p in model.hubert.parameters())
    result = fit(SSLRecipe(model, data, valid, opts, env), t, env, run, record=opts)
    final = run / "final"
    if env.main:
        model.save_pretrained(final)
        write_json(run / "metrics.json", {
            "metric": "ssl_train", **result.last, **result.valid, "steps": result.steps,
            "train_seconds": result.time_s, "parameters": n_params,
            "inputs": {"manifest": store_path(opts.manifest, run / "metrics.json"),
                       "targets": store_path(tokenizer, run / "metrics.json")}})
        log(f"SSL encoder written to {final} (loss {result.last.get('loss', float('nan')):.3f}, "
            f"masked acc {result.last.get('acc_masked', float('nan')):.3f})")
    env.barrier()
    return final
