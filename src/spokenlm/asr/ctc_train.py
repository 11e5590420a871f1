"""``spokenlm asr train`` (CTC fine-tuning of any spokenlm encoder) and ``spokenlm asr eval``.

The encoder's transformer is frozen for the first ``--freeze-encoder-steps`` steps (only
the head and adapter train), then fine-tuned; the conv front-end stays frozen. Run dir:
``checkpoints/`` (resumable, as the LM trainer), ``log.jsonl``, ``final/`` (a
:class:`CTCModel` dir), ``metrics.json`` (error rates on ``--valid-manifest``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..audio.load import load_row
from ..audio.manifest import read_manifest
from ..common.checkpoints import check_fits, read_state, reading, resume_training, rng_state, \
    save_checkpoint
from ..common.device import resolve_device
from ..common.errors import InputError
from ..common.files import iter_jsonl, json_line, write_json, write_jsonl
from ..common.options import arg, command
from ..common.paths import store_path, stored_fields
from ..common.progress import log, progress
from ..lm.optim import make_optimizer, warmup_cosine
from ..ssl.data import DataState
from ..ssl.masking import span_mask
from ..tokenize.encoders import ENCODERS, encoder_options
from .ctc_model import Adapter, CTCConfig, CTCModel
from .text import Unit, Vocab, error_rates, reference_text, row_tokens


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
    batch_size: int = arg(8, help="utterances per step")
    lr: float = arg(5e-4, help="peak learning rate")
    warmup_steps: int = arg(100, help="linear warmup steps")
    max_steps: int = arg(1000, help="optimizer steps")
    freeze_encoder_steps: int = arg(100, help="steps with the encoder frozen")
    weight_decay: float = arg(0.01, help="AdamW weight decay")
    clip_grad: float = arg(5.0, help="gradient norm clip (0 disables)")
    device: str = arg("auto", help="auto, cpu, cuda, ...")
    seed: int = arg(0, help="seed of init, data order and masks")
    log_every: int = arg(10, help="steps between log lines")
    eval_every: int = arg(0, help="steps between validation scores (0: end only)")
    save_every: int = arg(200, help="steps between checkpoints")
    keep_checkpoints: int = arg(2, help="checkpoints kept")
    resume: bool = arg(True, help="continue from checkpoints/latest when present")


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


class CTCBatches:
    """Length-grouped shuffled batches: (wav (B, T) zero-padded, lengths (B,), targets
    list of id lists). Batches are a function of (seed, epoch)."""

    def __init__(self, rows: list[dict], vocab: Vocab, batch_size: int, seed: int,
                 source: Path) -> None:
        self.rows = rows
        self.targets = [vocab.encode(row_tokens(r, vocab.unit, source)) for r in rows]
        self.batch_size = max(1, min(batch_size, len(rows)))
        self.seed = seed

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))
        dur = np.array([float(self.rows[i].get("duration") or 0) for i in order])
        order = order[np.argsort(dur, kind="stable")]
        batches = [order[s:s + self.batch_size].tolist()
                   for s in range(0, len(order), self.batch_size)]
        perm = np.random.default_rng([self.seed, epoch, 1]).permutation(len(batches))
        return [batches[i] for i in perm]

    def load(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
        wavs = [load_row(self.rows[i]) for i in idx]
        lengths = torch.tensor([len(w) for w in wavs])
        wav = torch.zeros(len(wavs), int(lengths.max()))
        for b, w in enumerate(wavs):
            wav[b, :len(w)] = torch.from_numpy(w)
        return wav, lengths, [self.targets[i] for i in idx]


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
    state = read_state(path)
    check_fits(path, weights, model)
    model.load_state_dict(weights)
    return state


@command("asr train", ASRTrainOptions)
def train_asr(opts: ASRTrainOptions) -> Path:
    """Fine-tune an encoder with a CTC head on transcribed audio; returns final/."""
    device = resolve_device(opts.device)
    rows = select_rows(read_manifest(opts.manifest), opts.max_utterances, opts.max_minutes)
    if not rows:
        raise InputError(f"{opts.manifest}: no utterances to train on")
    vocab = Vocab.build((row_tokens(r, opts.unit, opts.manifest) for r in rows), opts.unit)
    path = None if opts.encoder_path is None else str(Path(opts.encoder_path).resolve())
    enc = encoder_options(opts.encoder, path=path, layer=opts.layer)
    if opts.encoder in ("hubert", "wav2vec2") and opts.layer is None and path is not None:
        enc["layer"] = int(json.loads((Path(path) / "config.json").read_text())
                           ["num_hidden_layers"])
    torch.manual_seed(opts.seed)
    np.random.seed(opts.seed)  # HF SpecAugment draws its masks from numpy's global RNG
    model = CTCModel(CTCConfig(encoder=enc, unit=opts.unit, adapter=opts.adapter,
                               adapter_layers=opts.adapter_layers, adapter_dim=opts.adapter_dim,
                               dropout=opts.dropout, mask_prob=opts.mask_prob), vocab).to(device)
    model.train()
    data = CTCBatches(rows, vocab, opts.batch_size, opts.seed, opts.manifest)
    valid_rows = read_manifest(opts.valid_manifest) if opts.valid_manifest else []
    optimizer = make_optimizer(model, opts.lr, opts.weight_decay, (0.9, 0.98), device)
    warmup = min(opts.warmup_steps, max(1, opts.max_steps // 5))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(warmup, opts.max_steps, 0.0))
    run, ckpt_dir = opts.output, opts.output / "checkpoints"
    state: dict[str, Any] = {"step": 0, "time_s": 0.0, "data": DataState().to_dict(),
                             "loss": None}
    ckpt, saved = resume_training(run, opts.resume, lambda path: _load_checkpoint(path, model),
                                  optimizer, scheduler)
    if ckpt is not None:
        state = saved["state"]
    log_path = run / "log.jsonl"
    write_jsonl(log_path, [r for r in iter_jsonl(log_path) if r["step"] <= state["step"]]
                if ckpt is not None and log_path.exists() else [])
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    write_json(run / "options.json", {**stored_fields(opts, run / "options.json"),
                                      "trainable_parameters": n_params,
                                      "vocab_size": len(vocab)})
    minutes = sum(float(r.get("duration") or 0) for r in rows) / 60
    log(f"asr train: {opts.encoder} + {model.config.adapter} adapter, {n_params / 1e6:.2f}M "
        f"trainable, {len(rows)} utterances ({minutes:.1f} min), {len(vocab)} {opts.unit}")

    bar = progress(desc="asr train", total=opts.max_steps, unit="step")
    bar.update(state["step"])
    window: list[float] = []
    metrics: dict[str, float] = {}
    while state["step"] < opts.max_steps:
        t0 = time.perf_counter()
        ds = DataState(**state["data"])
        batches = data.epoch_batches(ds.epoch)
        wav, lengths, targets = data.load(batches[ds.batch])
        nxt = DataState(ds.epoch, ds.batch + 1) if ds.batch + 1 < len(batches) \
            else DataState(ds.epoch + 1, 0)
        mask = None
        if model.adapter is not None and opts.mask_prob > 0:
            n = [int((t - 400) // 320 + 1) for t in lengths]
            mask = span_mask(n, opts.mask_prob, 10, seed=(opts.seed, 7, state["step"]),
                             max_frames=(int(lengths.max()) - 400) // 320 + 1).to(device)
        frozen = state["step"] < opts.freeze_encoder_steps
        log_probs, frames = model(wav.to(device), lengths, freeze_encoder=frozen, mask=mask)
        loss = ctc_loss(log_probs, frames, targets)
        loss.backward()
        if opts.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip_grad)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step = state["step"] = state["step"] + 1
        state["data"], state["loss"] = nxt.to_dict(), float(loss.detach())
        state["time_s"] += time.perf_counter() - t0
        if not math.isfinite(state["loss"]):
            raise InputError(f"asr train: loss is {state['loss']} at step {step}; lower --lr")
        window.append(state["loss"])
        do_eval = bool(valid_rows) and opts.eval_every > 0 and step % opts.eval_every == 0
        if do_eval:
            metrics = evaluate_rows(model, valid_rows, desc="valid")[0]
            model.train()
        if step % opts.log_every == 0 or step == opts.max_steps or do_eval:
            row = {"step": step, "loss": float(np.mean(window)), "lr": lr, "frozen": frozen,
                   **(metrics if do_eval else {})}
            with open(log_path, "a") as f:
                f.write(json_line(row))
            bar.set_postfix(loss=f"{row['loss']:.3f}", refresh=False)
            window = []
        bar.update(1)
        if step % opts.save_every == 0 or step == opts.max_steps:
            save_checkpoint(ckpt_dir, step, model, {
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": rng_state(), "state": state}, opts.keep_checkpoints)
    bar.close()
    final = model.eval().save_pretrained(run / "final")
    hyps: list[dict] = []
    if valid_rows:
        metrics, hyps = evaluate_rows(model, valid_rows, desc="valid")
        write_jsonl(run / "valid_hypotheses.jsonl", hyps)
    write_json(run / "metrics.json", {
        "metric": "asr_ctc", **metrics, "train_loss": state["loss"], "steps": state["step"],
        "train_minutes_audio": minutes, "train_seconds": state["time_s"],
        "inputs": {k: store_path(v, run / "metrics.json") for k, v in
                   (("manifest", opts.manifest), ("valid_manifest", opts.valid_manifest),
                    ("encoder_path", opts.encoder_path))}})
    log(f"CTC model written to {final} {metrics}")
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
