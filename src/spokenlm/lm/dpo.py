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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..audio.framing import check_same_framing
from ..common.errors import InputError
from ..common.files import write_json
from ..common.options import arg, command
from ..common.paths import store_path
from ..common.progress import log
from ..training import Env, TrainerOptions, fit, init, take
from .dpo_loss import PairTokens, dpo_loss, encode_pair, pair_logps, reference_logps
from .model import UnitLM
from .preference_data import PreferenceData, read_pairs
from .train import UnitLMRecipe

#: Slam's DPO (slamkit / TRL): lr 5e-5 constant after 100 warmup steps (its cosine's floor is
#: the peak), AdamW (0.9, 0.999) without decay, clip 0.5, one epoch (--max-steps None)
DPO_TRAINER = TrainerOptions(lr=5e-5, beta2=0.999, weight_decay=0.0, clip_grad=0.5,
                             min_lr_ratio=1.0, max_steps=None, precision="auto",
                             eval_every=100)

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
    batch_size: int = arg(8, help="pairs per micro-batch over all processes (each one "
                          "forward of 2x as many rows)")
    trainer: TrainerOptions = arg(DPO_TRAINER, help="training loop options (--max-steps "
                                  "None: one epoch of the pairs)")


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


class DPORecipe(UnitLMRecipe):
    """The DPO loss on pairs in a seeded order; reference log-probs precomputed."""

    name = "lm dpo"
    train_mode = False  # dropout off, as TRL's disable_dropout; gradients flow as in training
    token_name = "pairs"

    def __init__(self, lm: UnitLM, train: list[PairTokens], valid: list[PairTokens],
                 ref_train: torch.Tensor, ref_valid: torch.Tensor, opts: DPOOptions,
                 env: Env) -> None:
        self.lm, self.model, self.train, self.valid = lm, lm.model, train, valid
        self.ref_train, self.ref_valid, self.opts, self.env = ref_train, ref_valid, opts, env
        self.order = PairOrder(len(train), opts.trainer.seed)
        self.position = {"epoch": 0, "pos": 0}
        self.step_tokens = opts.batch_size * opts.trainer.grad_accum  # pairs, for the log

    def default_steps(self) -> int:
        return math.ceil(len(self.train) / (self.opts.batch_size * self.opts.trainer.grad_accum))

    def batches(self, step: int, shards: range, n_shards: int) -> list[list[int]]:
        idx = self.order.next_batch(self.position, self.step_tokens)
        return [take(idx, s, n_shards) for s in shards]

    def loss(self, model: nn.Module, batch: list[int], step: int) -> dict[str, Any]:
        chosen, rejected = pair_logps(model, [self.train[i] for i in batch], self.lm.pad_id,
                                      self.env.device, self.env.amp)
        r = self.ref_train[batch].to(self.env.device)
        loss, cr, rr = dpo_loss(chosen, rejected, r[:, 0], r[:, 1], self.opts.beta)
        return {**_means(_sums(loss.detach(), cr, rr)), "loss": loss}

    def evaluate(self, model: nn.Module, step: int | None) -> dict[str, float]:
        if not self.valid:
            return {}
        metrics = evaluate(model, self.valid, self.ref_valid, self.lm.pad_id, self.opts.beta,
                           self.env.device, self.env.amp, self.opts.batch_size)
        if step is None:
            return metrics
        return {f"valid_{k}": v for k, v in metrics.items() if k != "pairs"}

    def state_dict(self) -> dict[str, Any]:
        return {"order": dict(self.position)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = dict(state["order"])

    def describe(self) -> str:
        return f"{len(self.train)} pairs, β {self.opts.beta}"


@command("lm dpo", DPOOptions)
def train_dpo(opts: DPOOptions) -> Path:
    """Preference-tune a unit LM with DPO; returns the final unit LM dir (<output>/final)."""
    t = opts.trainer
    if opts.beta <= 0 or opts.batch_size < 1 or t.grad_accum < 1:
        raise InputError(f"--beta {opts.beta}, --batch-size {opts.batch_size}, --grad-accum "
                         f"{t.grad_accum}: β must be > 0 and the sizes >= 1")
    env = init(t)
    run = opts.output
    lm, tokenizer = load_policy(opts)
    train, valid, skipped = _split(opts, lm, tokenizer)

    t_ref = time.perf_counter()
    ref_lm = lm if opts.ref_lm is None else UnitLM.from_pretrained(opts.ref_lm)
    _same_vocabulary(lm, ref_lm, opts)
    ref_lm.model.to(env.device)
    ref_train = reference_logps(ref_lm.model, train, lm.pad_id, env.device, env.amp,
                                opts.batch_size)
    ref_valid = reference_logps(ref_lm.model, valid, lm.pad_id, env.device, env.amp,
                                opts.batch_size)
    del ref_lm
    t_ref = time.perf_counter() - t_ref
    env.log(f"reference log-probs of {len(train)} + {len(valid)} pairs in {t_ref:.1f}s")

    result = fit(DPORecipe(lm, train, valid, ref_train, ref_valid, opts, env), t, env, run,
                 record=opts)
    final = run / "final"
    if env.main:
        lm.save_pretrained(final)
        metrics_path = run / "metrics.json"
        write_json(metrics_path, {
            "metric": "lm_dpo", "beta": opts.beta, "steps": result.steps,
            "train_pairs": len(train), "valid_pairs": len(valid), "pairs_skipped": len(skipped),
            "skipped": dict(list(skipped.items())[:20]),
            "train": {k: result.last[k] for k in _SUMS},
            "valid": result.valid or None,
            "reference": {"train_logp_accuracy": _logp_accuracy(ref_train),
                          "valid_logp_accuracy": _logp_accuracy(ref_valid),
                          "time_s": round(t_ref, 3)},
            "time_s": round(result.time_s, 3), "parameters": result.parameters,
            "inputs": {k: store_path(v, metrics_path) for k, v in
                       (("pairs", opts.pairs), ("valid_pairs", opts.valid_pairs),
                        ("lm", opts.lm), ("ref_lm", opts.ref_lm or opts.lm),
                        ("tokenizer", opts.tokenizer or lm.tokenizer))}})
        log(f"DPO unit LM written to {final} (valid reward accuracy "
            f"{None if not result.valid else round(result.valid['accuracy'], 3)})")
    env.barrier()
    return final
