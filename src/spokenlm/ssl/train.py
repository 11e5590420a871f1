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

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..audio.constants import SAMPLE_RATE
from ..audio.manifest import read_manifest
from ..common.checkpoints import check_fits, read_state, read_weights, reading, resume_training, \
    rng_state, save_checkpoint
from ..common.device import resolve_device, resolve_dtype
from ..common.errors import InputError
from ..common.hub import local_or_hub
from ..common.files import iter_jsonl, json_line, write_json, write_jsonl
from ..common.options import arg, command
from ..common.paths import store_path, stored_fields
from ..common.progress import log, progress
from ..lm.optim import make_optimizer, warmup_cosine
from .config import HeadConfig, SSLSize, default_final_dim, hubert_config
from .data import CropBatches, DataState
from .masking import span_mask
from .model import HEAD_WEIGHTS, HubertPretrainModel
from .targets import TargetSpec, load_labels, make_targets


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
    batch_size: int = arg(8, help="utterances per step")
    max_seconds: float = arg(4.0, help="longest crop per utterance (s)")
    lr: float = arg(5e-4, help="peak learning rate")
    min_lr_ratio: float = arg(0.0, help="final learning rate as a fraction of --lr")
    warmup_steps: int = arg(100, help="linear warmup steps (at most a fifth of max-steps)")
    max_steps: int = arg(1000, help="optimizer steps")
    weight_decay: float = arg(0.01, help="AdamW weight decay")
    clip_grad: float = arg(10.0, help="gradient norm clip (0 disables)")
    device: str = arg("auto", help="auto, cpu, cuda, ...")
    precision: Literal["auto", "bf16", "fp32"] = arg("fp32", help="fp32, bf16 or auto")
    seed: int = arg(0, help="seed of init, data order, crops and masks")
    log_every: int = arg(10, help="steps between log lines")
    eval_every: int = arg(200, help="steps between validation passes (0: end only)")
    eval_batches: int = arg(8, help="validation batches per pass")
    save_every: int = arg(200, help="steps between checkpoints")
    keep_checkpoints: int = arg(2, help="checkpoints kept")
    resume: bool = arg(True, help="continue from checkpoints/latest when present")


def build_model(opts: SSLTrainOptions) -> HubertPretrainModel:
    overrides = {} if opts.layers is None else {"num_hidden_layers": opts.layers}
    config = hubert_config(opts.size, dropout=opts.dropout, mask_prob=opts.mask_prob,
                           mask_length=opts.mask_length, **overrides)
    head = HeadConfig(n_clusters=opts.n_clusters, final_dim=default_final_dim(opts.size),
                      temperature=opts.temperature, unmasked_weight=opts.unmasked_weight)
    torch.manual_seed(opts.seed)
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
                     seed=(opts.seed, 7, step))


@torch.no_grad()
def evaluate(model: HubertPretrainModel, data: CropBatches, opts: SSLTrainOptions,
             device: torch.device) -> dict[str, float]:
    """Masked loss and accuracy on fixed crops and masks of the first batches of epoch 0."""
    was = model.training
    model.eval()
    losses, accs = [], []
    for b, idx in enumerate(data.epoch_batches(0)[: opts.eval_batches]):
        wav, lab = data.load(idx, seed=(opts.seed, 99, b))
        mask = span_mask([lab.shape[1]] * len(idx), opts.mask_prob, opts.mask_length,
                         seed=(opts.seed, 99, b))
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
    state = read_state(path)
    check_fits(path, weights, model)
    model.load_state_dict(weights)
    return state


@command("ssl train", SSLTrainOptions)
def train_ssl(opts: SSLTrainOptions) -> Path:
    """HuBERT-style pretraining (one iteration); returns the final encoder dir."""
    device = resolve_device(opts.device)
    amp = resolve_dtype(opts.precision, device)
    run, ckpt_dir = opts.output, opts.output / "checkpoints"
    if opts.target_encoder == "hubert" and opts.target_encoder_path is None:
        raise InputError("--target-encoder hubert needs --target-encoder-path (the "
                         "iteration-1 run's final/ dir)")
    manifests = [opts.manifest] + ([opts.valid_manifest] if opts.valid_manifest else [])
    spec = TargetSpec(opts.target_encoder, opts.target_encoder_path, opts.target_layer,
                      opts.n_clusters, opts.kmeans_max_frames, seed=opts.seed,
                      device=opts.device)
    tokenizer, label_files = make_targets(manifests, run / "targets", spec, opts.targets)
    n_tok = int(json.loads((tokenizer / "config.json").read_text())["n_units"])
    if n_tok != opts.n_clusters:
        raise InputError(f"{tokenizer}: {n_tok} units but --n-clusters {opts.n_clusters}; "
                         f"pass --n-clusters {n_tok}")
    max_samples = int(opts.max_seconds * SAMPLE_RATE)
    data = CropBatches(read_manifest(opts.manifest), load_labels(label_files[0]),
                       opts.batch_size, max_samples, opts.seed, opts.manifest)
    valid = (CropBatches(read_manifest(opts.valid_manifest), load_labels(label_files[1]),
                         opts.batch_size, max_samples, opts.seed, opts.valid_manifest)
             if opts.valid_manifest else None)

    model = build_model(opts).to(device)
    model.train()
    n_params = sum(p.numel() for p in model.hubert.parameters())
    optimizer = make_optimizer(model, opts.lr, opts.weight_decay, (0.9, 0.98), device)
    warmup = min(opts.warmup_steps, max(1, opts.max_steps // 5))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(warmup, opts.max_steps, opts.min_lr_ratio))
    state: dict[str, Any] = {"step": 0, "time_s": 0.0, "data": DataState().to_dict(),
                             "last": {}}
    ckpt, saved = resume_training(run, opts.resume, lambda path: _load_checkpoint(path, model),
                                  optimizer, scheduler)
    if ckpt is not None:
        state = saved["state"]
    log_path = run / "log.jsonl"
    rows = ([r for r in iter_jsonl(log_path) if r["step"] <= state["step"]]
            if ckpt is not None and log_path.exists() else [])
    write_jsonl(log_path, rows)
    write_json(run / "options.json", {**stored_fields(opts, run / "options.json"),
                                      "parameters": n_params})
    log(f"{'resuming from ' + ckpt.name if ckpt else 'ssl train'}: {n_params / 1e6:.2f}M "
        f"encoder params ({opts.size}), {len(data.rows)} utterances, {opts.n_clusters} "
        f"targets from {opts.target_encoder}, {device}")

    bar = progress(desc="ssl train", total=opts.max_steps, unit="step")
    bar.update(state["step"])
    window: list[float] = []
    metrics: dict[str, float] = {}
    while state["step"] < opts.max_steps:
        t0 = time.perf_counter()
        wav, lab, nxt = data.next_batch(DataState(**state["data"]))
        mask = step_mask(lab.shape[1], len(wav), opts, state["step"])
        ctx = (torch.autocast(device.type, dtype=amp) if amp is not None
               else contextlib.nullcontext())
        with ctx:
            out = model(wav.to(device), lab.to(device), mask.to(device))
        out.loss.backward()
        if opts.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip_grad)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step = state["step"] = state["step"] + 1
        state["data"] = nxt.to_dict()
        state["time_s"] += time.perf_counter() - t0
        loss = float(out.loss.detach())
        if not math.isfinite(loss):
            raise InputError(f"ssl train: loss is {loss} at step {step}; lower --lr or use "
                             f"--precision fp32")
        state["last"] = {"loss": loss, "acc_masked": out.acc_masked,
                         "acc_unmasked": out.acc_unmasked}
        window.append(loss)
        do_eval = valid is not None and opts.eval_every > 0 and step % opts.eval_every == 0
        if do_eval:
            metrics = evaluate(model, valid, opts, device)
        if step % opts.log_every == 0 or step == opts.max_steps or do_eval:
            row = {"step": step, "loss": float(np.mean(window)), "lr": lr,
                   "acc_masked": out.acc_masked, "acc_unmasked": out.acc_unmasked,
                   **(metrics if do_eval else {})}
            with open(log_path, "a") as f:
                f.write(json_line(row))
            bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{out.acc_masked:.2f}",
                            refresh=False)
            window = []
        bar.update(1)
        if step % opts.save_every == 0 or step == opts.max_steps:
            save_checkpoint(ckpt_dir, step, model, {
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": rng_state(), "state": state}, opts.keep_checkpoints)
    bar.close()
    if valid is not None:
        metrics = evaluate(model, valid, opts, device)
    final = run / "final"
    model.eval()
    model.save_pretrained(final)
    write_json(run / "metrics.json", {
        "metric": "ssl_train", **state["last"], **metrics, "steps": state["step"],
        "train_seconds": state["time_s"], "parameters": n_params,
        "inputs": {"manifest": store_path(opts.manifest, run / "metrics.json"),
                   "targets": store_path(tokenizer, run / "metrics.json")}})
    log(f"SSL encoder written to {final} (loss {state['last'].get('loss', float('nan')):.3f}, "
        f"masked acc {state['last'].get('acc_masked', float('nan')):.3f})")
    return final
