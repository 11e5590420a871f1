"""``spokenlm lm dpo``: preference-tune a unit LM with DPO on (prompt, chosen, rejected) pairs.

The recipe is Slam's (Maimon et al. 2025; slamkit's ``preference_alignment_train``: TRL's
``DPOTrainer`` with its sigmoid loss, β 0.1, learning rate 5e-5 held constant after 100
warmup steps -- its cosine schedule's floor equals the peak --, gradient clip 0.5, 8 pairs
a batch, one epoch over SpokenSwag, dropout off), on the objective of
:mod:`spokenlm.lm.dpo_loss`: summed log-probs of each continuation (EOS included), the prompt
not scored, no length normalisation. The reference is the starting LM (or ``--ref-lm``),
frozen; its log-probs are computed once for every pair before training, so only the policy
is in memory while it trains.

Resumable like ``lm train``: a run killed at any point and restarted with the same options
continues from its newest intact checkpoint with the same pair order, optimizer, scheduler
and RNG state, and ends with the weights an uninterrupted run gives. Writes
``<output>/final`` (a unit LM dir), ``log.jsonl`` (loss, rewards, margin, accuracy),
``metrics.json`` and ``options.json``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..audio.framing import check_same_framing
from ..common.checkpoints import load_checkpoint, resume_training, rng_state, save_checkpoint
from ..common.device import resolve_device, resolve_dtype
from ..common.errors import InputError
from ..common.files import iter_jsonl, json_line, write_json, write_jsonl
from ..common.options import arg, command
from ..common.paths import store_path, stored_fields
from ..common.progress import log, progress
from .dpo_loss import PairTokens, dpo_loss, encode_pair, pair_logps, reference_logps
from .model import UnitLM
from .optim import make_optimizer, warmup_cosine
from .preference_data import PreferenceData, read_pairs

#: running sums of a log window / an evaluation: loss, accuracy, margin, rewards, pairs
_SUMS = ("loss", "accuracy", "margin", "chosen_reward", "rejected_reward")


@dataclass
class DPOOptions:
    pairs: Path = arg(positional=True, help="preference pairs: a pairs JSONL, or a folder with "
                      "pairs.jsonl + manifest.jsonl (`spokenlm data bench build --generate "
                      "preference`); rows of units (prompt_units/chosen_units/rejected_units), "
                      "audio ids or audio paths (prompt_path/chosen_path/rejected_path)")
    lm: Path = arg(help="unit LM dir to start from (`lm train`'s final/); also the frozen "
                   "reference unless --ref-lm")
    output: Path = arg(help="run directory (checkpoints/, log.jsonl, final/, metrics.json)")
    ref_lm: Path | None = arg(None, help="reference unit LM dir (default: --lm)")
    tokenizer: Path | None = arg(None, help="tokenizer dir for audio pairs (default: the one "
                                 "the LM records)")
    valid_pairs: Path | None = arg(None, help="held-out pairs for validation (default: the last "
                                   "--valid-fraction of --pairs)")
    valid_fraction: float = arg(0.05, help="held-out share of the pairs without --valid-pairs")
    beta: float = arg(0.1, help="DPO β: how far the policy may move from the reference "
                      "(Slam: 0.1)")
    score_eos: bool = arg(True, help="score EOS after each continuation, as TRL and slamkit "
                          "do; --no-score-eos scores the units alone")
    max_prompt_tokens: int = arg(512, help="longest prompt fed (BOS + its last units), as "
                                 "TRL's max_prompt_length")
    lr: float = arg(5e-5, help="peak learning rate (Slam: 5e-5)")
    min_lr_ratio: float = arg(1.0, help="final learning rate as a fraction of --lr (cosine "
                              "decay; 1.0: constant after warmup, as Slam)")
    warmup_steps: int = arg(100, help="linear warmup steps (at most a fifth of the steps)")
    max_steps: int | None = arg(None, help="optimizer steps (default: one epoch of the pairs)")
    batch_size: int = arg(8, help="pairs per micro-batch (each one forward of 2x as many rows)")
    grad_accum: int = arg(1, help="micro-batches per optimizer step")
    weight_decay: float = arg(0.0, help="AdamW weight decay on weight matrices")
    adam_beta2: float = arg(0.999, help="AdamW beta2")
    clip_grad: float = arg(0.5, help="gradient norm clip (0 disables; Slam: 0.5)")
    precision: Literal["auto", "bf16", "fp32"] = arg("auto", help="auto: bf16 autocast "
                                                     "where native, else fp32")
    device: str = arg("auto", help="auto, cpu, cuda, cuda:1, ...")
    seed: int = arg(0, help="seed of the pair order")
    log_every: int = arg(10, help="steps between log.jsonl lines")
    eval_every: int = arg(100, help="steps between validation passes (0: only at the end)")
    save_every: int = arg(200, help="steps between checkpoints")
    keep_checkpoints: int = arg(2, help="checkpoints kept on disk")
    resume: bool = arg(True, help="continue from checkpoints/latest when present")


def load_policy(opts: DPOOptions) -> tuple[UnitLM, Any]:
    """The LM DPO starts from, and the tokenizer of audio pairs: ``--tokenizer`` loaded and
    checked against the LM (units, frame rate), else the dir the LM records (loaded only if
    the pairs are audio), else None."""
    lm = UnitLM.from_pretrained(opts.lm)
    if opts.tokenizer is None:
        return lm, None if lm.tokenizer is None else Path(lm.tokenizer)
    from ..tokenize.tokenizer import SpeechTokenizer

    tokenizer = SpeechTokenizer.from_pretrained(opts.tokenizer)
    lm.check_tokenizer(tokenizer.n_units)
    check_same_framing(lm.framing, f"LM {opts.lm}", tokenizer.framing,
                       f"tokenizer {opts.tokenizer}")
    return lm, tokenizer


def _same_vocabulary(lm: UnitLM, ref: UnitLM, opts: DPOOptions) -> None:
    ours = {**{k: getattr(lm, k) for k in ("n_units", "unit_offset", "bos_id", "eos_id",
                                            "add_bos")}, "vocab": lm.vocab_size}
    theirs = {**{k: getattr(ref, k) for k in ours if k != "vocab"}, "vocab": ref.vocab_size}
    if ours != theirs:
        raise InputError(f"--ref-lm {opts.ref_lm}: its vocabulary {theirs} differs from --lm "
                         f"{opts.lm}'s {ours}; use a reference trained on the same tokenizer")


def _items(data: PreferenceData, lm: UnitLM, opts: DPOOptions, what: str
           ) -> tuple[list[PairTokens], dict[str, str]]:
    """Encoded pairs and the reasons the rest were left out (pair id -> reason)."""
    limit = getattr(lm.model.config, "max_position_embeddings", None)
    items, skipped = [], dict(data.skipped)
    for pair in data.pairs:
        enc = encode_pair(lm, pair, score_eos=opts.score_eos,
                          max_prompt_tokens=opts.max_prompt_tokens, max_length=limit)
        if isinstance(enc, str):
            skipped[pair.id] = enc
        else:
            items.append(enc)
    if skipped:
        first = next(iter(skipped.items()))
        log(f"{what}: skipped {len(skipped)} pair(s), e.g. {first[0]}: {first[1]}")
    return items, skipped


def _split(opts: DPOOptions, lm: UnitLM, tokenizer: Any
           ) -> tuple[list[PairTokens], list[PairTokens], dict[str, str]]:
    """(training pairs, validation pairs, skipped pairs)."""
    train, skipped = _items(read_pairs(opts.pairs, lm.n_units, tokenizer), lm, opts,
                            str(opts.pairs))
    if opts.valid_pairs is not None:
        valid, more = _items(read_pairs(opts.valid_pairs, lm.n_units, tokenizer), lm, opts,
                             str(opts.valid_pairs))
        skipped.update(more)
    else:
        n_valid = int(len(train) * opts.valid_fraction) if len(train) > 1 else 0
        train, valid = train[: len(train) - n_valid], train[len(train) - n_valid:]
    if not train:
        raise InputError(f"{opts.pairs}: no usable preference pairs to train on "
                         f"({len(skipped)} skipped); check the pairs file")
    return train, valid, skipped


class PairOrder:
    """Batches of pair indices: a permutation per epoch drawn from ``(seed, epoch)``, read in
    order, running on into the next epoch; ``(epoch, position)`` is all a resume needs."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed

    def permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def next_batch(self, state: dict[str, int], size: int) -> list[int]:
        out: list[int] = []
        while len(out) < size:
            perm = self.permutation(state["epoch"])
            take = perm[state["pos"]: state["pos"] + size - len(out)].tolist()
            out += take
            state["pos"] += len(take)
            if state["pos"] >= self.n:
                state["epoch"], state["pos"] = state["epoch"] + 1, 0
        return out


def _sums(loss: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor) -> np.ndarray:
    """Per-batch sums of :data:`_SUMS` plus the pair count, (6,) float64."""
    n = len(chosen)
    return np.array([float(loss) * n, float((chosen > rejected).float().sum()),
                     float((chosen - rejected).sum()), float(chosen.sum()),
                     float(rejected.sum()), n], dtype=np.float64)


def _means(sums: np.ndarray | list[float], prefix: str = "") -> dict[str, float]:
    n = max(sums[-1], 1.0)
    return {f"{prefix}{k}": float(sums[i] / n) for i, k in enumerate(_SUMS)}


@torch.no_grad()
def evaluate(model: torch.nn.Module, items: list[PairTokens], ref: torch.Tensor, pad_id: int,
             beta: float, device: torch.device, amp: torch.dtype | None,
             batch_size: int) -> dict[str, float]:
    """DPO loss, reward accuracy and margin over ``items`` (their reference log-probs ``ref``
    (N, 2)), and ``logp_accuracy``: the share whose chosen continuation the policy finds
    likelier than the rejected one (as story cloze scores it)."""
    sums, likelier = np.zeros(len(_SUMS) + 1), 0.0
    for i in range(0, len(items), batch_size):
        chosen, rejected = pair_logps(model, items[i: i + batch_size], pad_id, device, amp)
        r = ref[i: i + batch_size].to(device)
        loss, cr, rr = dpo_loss(chosen, rejected, r[:, 0], r[:, 1], beta)
        sums += _sums(loss, cr, rr)
        likelier += float((chosen > rejected).float().sum())
    return {**_means(sums), "logp_accuracy": likelier / max(len(items), 1), "pairs": len(items)}


def _logp_accuracy(ref: torch.Tensor) -> float | None:
    return float((ref[:, 0] > ref[:, 1]).float().mean()) if len(ref) else None


@command("lm dpo", DPOOptions)
def train_dpo(opts: DPOOptions) -> Path:
    """Preference-tune a unit LM with DPO; returns the final unit LM dir (<output>/final)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise InputError("lm dpo runs in one process; start it without torchrun")
    if opts.beta <= 0 or opts.batch_size < 1 or opts.grad_accum < 1:
        raise InputError(f"--beta {opts.beta}, --batch-size {opts.batch_size}, --grad-accum "
                         f"{opts.grad_accum}: β must be > 0 and the sizes >= 1")
    device = resolve_device(opts.device)
    amp = resolve_dtype(opts.precision, device)
    run, ckpt_dir = opts.output, opts.output / "checkpoints"
    lm, tokenizer = load_policy(opts)
    train, valid, skipped = _split(opts, lm, tokenizer)

    t_ref = time.perf_counter()
    ref_lm = lm if opts.ref_lm is None else UnitLM.from_pretrained(opts.ref_lm)
    _same_vocabulary(lm, ref_lm, opts)
    ref_lm.model.to(device)
    ref_train = reference_logps(ref_lm.model, train, lm.pad_id, device, amp, opts.batch_size)
    ref_valid = reference_logps(ref_lm.model, valid, lm.pad_id, device, amp, opts.batch_size)
    del ref_lm
    t_ref = time.perf_counter() - t_ref
    log(f"reference log-probs of {len(train)} + {len(valid)} pairs in {t_ref:.1f}s")

    model = lm.model.to(device)
    model.eval()  # dropout off, as TRL's disable_dropout; gradients flow as in training
    n_params = sum(p.numel() for p in model.parameters())
    steps = opts.max_steps or math.ceil(len(train) / (opts.batch_size * opts.grad_accum))
    optimizer = make_optimizer(model, opts.lr, opts.weight_decay, (0.9, opts.adam_beta2),
                               device)
    warmup = min(opts.warmup_steps, max(1, steps // 5))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(warmup, steps, opts.min_lr_ratio))
    state: dict[str, Any] = {"step": 0, "epoch": 0, "pos": 0, "time_s": 0.0,
                             "window": [0.0] * (len(_SUMS) + 1), "last": None}
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else ()
    ckpt, saved = resume_training(run, opts.resume,
                                  lambda path: load_checkpoint(path, model, tied),
                                  optimizer, scheduler)
    if ckpt is not None:
        state = saved["state"]
    log_path = run / "log.jsonl"
    rows = [r for r in iter_jsonl(log_path) if r["step"] <= state["step"]] \
        if ckpt is not None and log_path.exists() else []
    write_jsonl(log_path, rows)  # drops lines logged after the checkpoint
    write_json(run / "options.json", {**stored_fields(opts, run / "options.json"),
                                      "steps": steps, "parameters": n_params})
    log(f"{'resuming from ' + ckpt.name if ckpt else 'DPO'}: {n_params / 1e6:.2f}M params, "
        f"{len(train)} pairs, {steps} steps, β {opts.beta}, {device}, {amp or torch.float32}")

    order = PairOrder(len(train), opts.seed)
    valid_metrics: dict[str, float] | None = None
    t_window = time.perf_counter()
    bar = progress(desc="lm dpo", total=steps, unit="step")
    bar.update(state["step"])
    while state["step"] < steps:
        t0 = time.perf_counter()
        sums = np.zeros(len(_SUMS) + 1)
        for _ in range(opts.grad_accum):
            idx = order.next_batch(state, opts.batch_size)
            chosen, rejected = pair_logps(model, [train[i] for i in idx], lm.pad_id, device, amp)
            r = ref_train[idx].to(device)
            loss, cr, rr = dpo_loss(chosen, rejected, r[:, 0], r[:, 1], opts.beta)
            (loss / opts.grad_accum).backward()
            sums += _sums(loss.detach(), cr, rr)
        if opts.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip_grad)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step = state["step"] = state["step"] + 1
        state["time_s"] += time.perf_counter() - t0
        state["last"] = _means(sums)
        state["window"] = window = (np.asarray(state["window"]) + sums).tolist()
        evaluate_now = bool(valid) and opts.eval_every > 0 and step % opts.eval_every == 0
        if evaluate_now:
            valid_metrics = evaluate(model, valid, ref_valid, lm.pad_id, opts.beta, device,
                                     amp, opts.batch_size)
        if step % opts.log_every == 0 or step == steps or evaluate_now:
            now = time.perf_counter()
            row = {"step": step, **_means(window), "lr": lr,
                   "pairs_per_s": round(window[-1] / max(now - t_window, 1e-9), 2)}
            if evaluate_now:
                row.update({f"valid_{k}": v for k, v in valid_metrics.items() if k != "pairs"})
            with open(log_path, "a") as f:
                f.write(json_line(row))
            bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['accuracy']:.2f}",
                            refresh=False)
            state["window"], t_window = [0.0] * (len(_SUMS) + 1), now
        bar.update(1)
        if step % opts.save_every == 0 or step == steps:
            trainer_state = {"optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "rng": rng_state(),
                             "state": state}
            save_checkpoint(ckpt_dir, step, lm, trainer_state, opts.keep_checkpoints)
    bar.close()

    if valid:
        valid_metrics = evaluate(model, valid, ref_valid, lm.pad_id, opts.beta, device, amp,
                                 opts.batch_size)
    final = lm.save_pretrained(run / "final")
    metrics_path = run / "metrics.json"
    write_json(metrics_path, {
        "metric": "lm_dpo", "beta": opts.beta, "steps": state["step"], "train_pairs": len(train),
        "valid_pairs": len(valid), "pairs_skipped": len(skipped),
        "skipped": dict(list(skipped.items())[:20]), "train": state["last"],
        "valid": valid_metrics,
        "reference": {"train_logp_accuracy": _logp_accuracy(ref_train),
                      "valid_logp_accuracy": _logp_accuracy(ref_valid),
                      "time_s": round(t_ref, 3)},
        "time_s": round(state["time_s"], 3), "parameters": n_params,
        "inputs": {k: store_path(v, metrics_path) for k, v in
                   (("pairs", opts.pairs), ("valid_pairs", opts.valid_pairs), ("lm", opts.lm),
                    ("ref_lm", opts.ref_lm or opts.lm),
                    ("tokenizer", opts.tokenizer or lm.tokenizer))}})
    log(f"DPO unit LM written to {final} (valid reward accuracy "
        f"{None if valid_metrics is None else round(valid_metrics['accuracy'], 3)})")
    return final
