"""``spokenlm lm train``: train a unit LM (LLaMA over units) on packed units.

Resumable: a run killed at any point and restarted with the same options continues from
``checkpoints/latest`` (or, when that one is damaged, the newest intact one before it) with
the same data order, optimizer, scheduler and RNG state, so it ends where an uninterrupted
run would. Runs under ``torchrun`` as DDP (gloo on CPU, nccl on GPU): every rank takes its
slice of each global batch, only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..audio.framing import Framing, check_same_framing
from ..common.checkpoints import load_checkpoint, resume_training, rng_state, save_checkpoint
from ..common.device import resolve_device, resolve_dtype
from ..common.errors import InputError
from ..common.files import iter_jsonl, json_line, read_json, write_json, write_jsonl
from ..common.hub import local_or_hub
from ..common.options import arg, command
from ..common.paths import store_path, stored_fields
from ..common.progress import log, progress
from .budget import Budget, budget_schedule
from .config import LMConfig
from .data import BlockStream, DataState, load_packed, packed_prefix, split_valid
from .interleaved_model import build_interleaved_lm, check_packed, stream_offset
from .mixture import MixState, MixtureStream, parse_mix
from .model import META_FILE, UnitLM
from .optim import make_optimizer
from .released import released_family
from .report import plot_losses, train_metrics

Size = Literal["tiny", "small", "base", "350m", "1b"]


@dataclass
class LMTrainOptions:
    units: Path = arg(positional=True, help="packed units prefix, or a units JSONL whose "
                      "packed files (.bin/.idx.npy/.meta.json) sit next to it")
    output: Path = arg(help="run directory (checkpoints/, log.jsonl, final/, metrics.json)")
    valid_units: Path | None = arg(None, help="packed units for validation (default: hold "
                                   "out the last --valid-fraction of the training utterances)")
    valid_fraction: float = arg(0.02, help="held-out share of utterances without --valid-units")
    size: Size = arg("small", help="model preset: tiny (tests), small (CPU demo), base "
                     "(~100M), 350m, 1b")
    n_layers: int | None = arg(None, help="override the preset's layer count")
    hidden: int | None = arg(None, help="override the hidden size")
    heads: int | None = arg(None, help="override the attention heads")
    kv_heads: int | None = arg(None, help="override the key/value heads (grouped-query)")
    intermediate: int | None = arg(None, help="override the MLP width")
    max_positions: int | None = arg(None, help="override the longest context")
    rope_theta: float | None = arg(None, help="override the RoPE base")
    dropout: float | None = arg(None, help="override the attention dropout")
    tie_embeddings: bool | None = arg(None, help="tie input embedding and output head")
    init_from: Path | None = arg(None, help="start from this dir instead of random: a unit LM "
                                 "dir (continue training it), or any local Hugging Face causal "
                                 "LM dir (OPT, LLaMA, Qwen2, GPT-2, ...: TWIST warm start, its "
                                 "blocks kept and its embeddings/head replaced by the units; "
                                 "the size options are then ignored)")
    init_embeddings: Literal["mean", "random"] = arg("mean", help="TWIST warm start: new "
                                                     "unit rows from the mean text embedding "
                                                     "plus noise, or random (see lm/twist.py)")
    keep_text_vocab: bool = arg(False, help="TWIST warm start: keep the text tokens and put "
                                "units after them (unit_offset = text vocab), as SpiritLM does")
    interleave: bool = arg(False, help="train an interleaved speech-text LM on the packed "
                           "sequences of `spokenlm lm interleave-data`, warm-started "
                           "(--init-from) from the text LM they were written for, or "
                           "continuing an interleaved LM (see spokenlm.lm.interleave)")
    tokenizer: Path | None = arg(None, help="tokenizer dir the units came from (checked and "
                                 "recorded in the LM's metadata)")
    seq_len: int = arg(512, help="tokens per training sequence")
    batch_size: int = arg(16, help="sequences per micro-batch, summed over all processes")
    grad_accum: int = arg(1, help="micro-batches per optimizer step")
    lr: float = arg(5e-4, help="peak learning rate")
    min_lr_ratio: float = arg(0.1, help="final learning rate as a fraction of --lr")
    warmup_steps: int = arg(100, help="linear warmup steps (at most a fifth of --max-steps)")
    max_steps: int = arg(2000, help="optimizer steps")
    max_tokens: int | None = arg(None, help="token budget: stop after this many training "
                                 "tokens (the schedule is fitted to it)")
    max_hours: float | None = arg(None, help="wall-clock budget in hours, counted across "
                                  "resumes: the cosine decays on the time used and the run "
                                  "stops cleanly with a final checkpoint when it is spent")
    mix: list[str] = arg([], help="more packed unit sets mixed into training, each "
                         "PATH:WEIGHT (e.g. data/synth/units.jsonl:0.3); the positional "
                         "units get --units-weight")
    units_weight: float = arg(1.0, help="sampling weight of the positional units in a --mix")
    weight_decay: float = arg(0.1, help="AdamW weight decay on weight matrices")
    beta2: float = arg(0.95, help="AdamW beta2")
    clip_grad: float = arg(1.0, help="gradient norm clip (0 disables)")
    precision: Literal["auto", "bf16", "fp32"] = arg("auto", help="auto: bf16 autocast "
                                                     "where native, else fp32")
    device: str = arg("auto", help="auto, cpu, cuda, cuda:1, ...")
    compile: bool = arg(False, help="torch.compile the training forward/backward (inductor; "
                        "on a CPU it needs a C++ compiler): a one-off compile of tens of "
                        "seconds, then faster steps from fused element-wise kernels")
    seed: int = arg(0, help="seed of the init, the data order and dropout")
    log_every: int = arg(10, help="steps between log.jsonl lines")
    eval_every: int = arg(200, help="steps between validation losses (0: only at the end)")
    eval_batches: int = arg(20, help="validation batches per evaluation")
    save_every: int = arg(200, help="steps between checkpoints")
    keep_checkpoints: int = arg(2, help="checkpoints kept on disk")
    resume: bool = arg(True, help="continue from checkpoints/latest when present")


def build_model(opts: LMTrainOptions, n_units: int) -> UnitLM:
    """The model a run starts from: ``init_from`` (a unit LM dir, or a HF text LM dir for a
    TWIST warm start, see :mod:`spokenlm.lm.twist`) or a fresh preset."""
    tokenizer = None if opts.tokenizer is None else str(opts.tokenizer)
    if opts.init_from is not None:
        init_from = local_or_hub(opts.init_from, "--init-from model")
        if not (init_from / META_FILE).exists() and released_family(init_from) is None:
            from .twist import warm_start

            return warm_start(init_from, n_units, init=opts.init_embeddings,
                              keep_text_vocab=opts.keep_text_vocab, seed=opts.seed,
                              tokenizer=tokenizer)
        lm = UnitLM.from_pretrained(init_from)
        lm.check_tokenizer(n_units)
        lm.tokenizer = tokenizer or lm.tokenizer
        return lm
    return UnitLM.build(n_units, model_config(opts), seed=opts.seed, tokenizer=tokenizer)


def model_config(opts: LMTrainOptions) -> LMConfig:
    return LMConfig.named(opts.size, n_layers=opts.n_layers, hidden=opts.hidden,
                          heads=opts.heads, kv_heads=opts.kv_heads,
                          intermediate=opts.intermediate, max_positions=opts.max_positions,
                          rope_theta=opts.rope_theta, dropout=opts.dropout,
                          tie_word_embeddings=opts.tie_embeddings)


def lm_loss(model: torch.nn.Module, x: torch.Tensor, bos_id: int) -> torch.Tensor:
    """Mean next-token cross-entropy of blocks x (B, T+1); BOS targets are not scored."""
    logits = model(input_ids=x[:, :-1], use_cache=False).logits  # (B, T, V)
    target = x[:, 1:].masked_fill(x[:, 1:] == bos_id, -100)  # (B, T)
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), ignore_index=-100)


@torch.no_grad()
def evaluate(model: torch.nn.Module, blocks: np.ndarray, bos_id: int, batch_size: int,
             device: torch.device, amp: torch.dtype | None, rank: int = 0,
             world: int = 1) -> float:
    """Mean token loss over ``blocks`` (n, T+1), shared across ranks."""
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)  # (loss sum, targets)
    mine = blocks[rank::world]
    for i in range(0, len(mine), batch_size):
        x = torch.from_numpy(mine[i: i + batch_size]).to(device)
        n = (x[:, 1:] != bos_id).sum()
        with _autocast(device, amp):
            total += torch.stack([lm_loss(model, x, bos_id).double() * n, n.double()])
    if world > 1:
        dist.all_reduce(total)
    model.train(was_training)
    return float(total[0] / total[1].clamp(min=1))


def _autocast(device: torch.device, amp: torch.dtype | None) -> contextlib.AbstractContextManager:
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp)


def _init_distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); joins the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if world > 1:
        return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def _data(opts: LMTrainOptions, prefix: Path, packed: tuple, lm: UnitLM,
          rank: int) -> tuple[BlockStream, np.ndarray | None, int]:
    """(training stream, validation blocks (n, T+1) or None, sequence length used)."""
    tokens, offsets, _ = packed
    ids = dict(bos_id=lm.bos_id, eos_id=lm.eos_id, unit_offset=stream_offset(lm))
    train_idx, v_idx = split_valid(len(offsets) - 1, opts.valid_fraction)
    v_tokens, v_offsets = tokens, offsets
    if opts.valid_units is not None:
        train_idx = np.arange(len(offsets) - 1)
        v_tokens, v_offsets, v_meta = load_packed(opts.valid_units)
        check_packed(v_meta, lm, str(opts.valid_units))
        if int(v_meta["n_units"]) != lm.n_units:
            raise InputError(f"{opts.valid_units}: {v_meta['n_units']} units, but the "
                             f"training data {prefix} has {lm.n_units}; use the same tokenizer")
        v_idx = np.arange(len(v_offsets) - 1)
    if len(train_idx) == 0:
        raise InputError(f"{prefix}: no utterances to train on; tokenize some audio first")
    n_train = int((offsets[train_idx + 1] - offsets[train_idx]).sum() + 2 * len(train_idx))
    limit = getattr(lm.model.config, "max_position_embeddings", opts.seq_len)
    seq_len = min(opts.seq_len, limit, n_train - 1)
    if seq_len != opts.seq_len and rank == 0:
        log(f"seq_len {opts.seq_len} -> {seq_len} (model context / {n_train} data tokens)")
    stream = BlockStream(tokens, offsets, train_idx, seq_len + 1, seed=opts.seed, **ids)
    n_valid = int((v_offsets[v_idx + 1] - v_offsets[v_idx]).sum() + 2 * len(v_idx))
    if n_valid < 2:
        return stream, None, seq_len
    valid = BlockStream(v_tokens, v_offsets, v_idx, min(seq_len + 1, n_valid), shuffle=False,
                        **ids)
    return stream, valid.eval_blocks(opts.eval_batches * opts.batch_size), seq_len


def _units_frame_rate(opts: LMTrainOptions, prefix: Path, meta: dict, lm: UnitLM) -> float:
    """The frame rate of the training units (packed meta; 50 Hz when not recorded), checked
    against the tokenizer, the validation units and a unit LM the run continues from."""
    data = Framing.from_json(meta, f"{prefix}.meta.json")
    others = []
    if opts.tokenizer is not None:
        others.append((Framing.from_json(read_json(opts.tokenizer / "config.json"),
                                         str(opts.tokenizer)), f"tokenizer {opts.tokenizer}"))
    if opts.valid_units is not None:
        v_meta = read_json(Path(f"{packed_prefix(opts.valid_units)}.meta.json"))
        others.append((Framing.from_json(v_meta, str(opts.valid_units)),
                       f"validation units {opts.valid_units}"))
    if opts.init_from is not None and lm.frame_rate is not None:
        others.append((lm.framing, f"unit LM {opts.init_from}"))
    for framing, name in others:
        check_same_framing(data, f"training units {prefix}", framing, name)
    return data.frame_rate


@command("lm train", LMTrainOptions)
def train_lm(opts: LMTrainOptions) -> Path:
    """Train a unit LM on packed units; returns the final unit LM dir (<output>/final)."""
    rank, world, local_rank = _init_distributed()
    device = resolve_device(opts.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    amp = resolve_dtype(opts.precision, device)
    run, ckpt_dir = opts.output, opts.output / "checkpoints"
    prefix = packed_prefix(opts.units)
    packed = load_packed(prefix)
    n_units = int(packed[2]["n_units"])
    if opts.tokenizer is not None:
        tok_units = int(read_json(opts.tokenizer / "config.json")["n_units"])
        if tok_units != n_units:
            raise InputError(f"{opts.tokenizer}: tokenizer has {tok_units} units but {prefix} "
                             f"holds {n_units}-unit data; pass the tokenizer that made them")
    lm = (build_interleaved_lm(opts.init_from, packed[2], str(prefix), init=opts.init_embeddings,
                               seed=opts.seed, tokenizer=opts.tokenizer and str(opts.tokenizer))
          if opts.interleave else build_model(opts, n_units))
    check_packed(packed[2], lm, str(prefix))
    lm.frame_rate = _units_frame_rate(opts, prefix, packed[2], lm)
    stream, valid_blocks, seq_len = _data(opts, prefix, packed, lm, rank)
    if opts.mix:
        stream = _mixture(opts, prefix, stream, lm)
    model = lm.model.to(device)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = make_optimizer(model, opts.lr, opts.weight_decay, (0.9, opts.beta2), device)
    step_tokens = opts.batch_size * opts.grad_accum * seq_len
    budget = Budget(opts.max_steps, step_tokens, opts.max_tokens, opts.max_hours)
    clock = {"base": 0.0, "since": time.perf_counter()}

    def elapsed() -> float:  # wall-clock seconds of the run, over every resume
        return clock["base"] + time.perf_counter() - clock["since"]

    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, budget_schedule(budget, opts.warmup_steps, opts.min_lr_ratio, elapsed))
    # everything a resumed run needs besides weights, optimizer, scheduler and RNG
    mixed = isinstance(stream, MixtureStream)
    state: dict[str, Any] = {"step": 0, "tokens": 0, "time_s": 0.0, "wall_s": 0.0,
                             "last_loss": None, "window": [0.0, 0, 0],
                             "data": stream.initial_state() if mixed else DataState()}
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else ()
    ckpt, saved = resume_training(run, opts.resume, lambda path: load_checkpoint(path, model, tied),
                                  optimizer, scheduler)
    if ckpt is not None:
        data_cls = MixState if mixed else DataState
        if ("sources" in saved["state"]["data"]) != mixed:
            raise InputError(f"{run}: its checkpoints were written {'without' if mixed else 'with'}"
                             f" --mix; resume with the same data options or use a new --output")
        state = {"wall_s": saved["state"].get("time_s", 0.0), **saved["state"],
                 "data": data_cls.from_dict(saved["state"]["data"])}
        clock["base"], clock["since"] = float(state["wall_s"]), time.perf_counter()
    else:
        torch.manual_seed(opts.seed + rank)
    log_path = run / "log.jsonl"
    if rank == 0:
        rows = [r for r in iter_jsonl(log_path) if r["step"] <= state["step"]] \
            if ckpt is not None and log_path.exists() else []
        write_jsonl(log_path, rows)  # drops lines logged after the checkpoint
        write_json(run / "options.json", {**stored_fields(opts, run / "options.json"),
                                          "seq_len_used": seq_len,
                                          "world_size": world, "parameters": n_params})
        log(f"{'resuming from ' + ckpt.name if ckpt else 'training'}: {n_params / 1e6:.2f}M "
            f"params ({opts.size}), {device}, {amp or torch.float32}, {stream.total} tokens, "
            f"{world} process(es), budget {budget.describe()}")
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if opts.compile:
        train_model = torch.compile(train_model)

    valid_loss, t_window, last_saved = None, time.perf_counter(), state["step"]
    bar = progress(desc="lm train", total=budget.steps, unit="step") if rank == 0 else None
    if bar is not None:
        bar.update(state["step"])
    while (stopped_by := _stop(budget, state["step"], elapsed(), world, device)) is None:
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for micro in range(opts.grad_accum):
            x, state["data"] = stream.next_batch(state["data"], opts.batch_size, rank, world)
            x = torch.from_numpy(x).to(device)  # (B / world, T + 1)
            sync = world == 1 or micro == opts.grad_accum - 1
            with _autocast(device, amp), (contextlib.nullcontext() if sync
                                          else train_model.no_sync()):
                loss = lm_loss(train_model, x, lm.bos_id) / opts.grad_accum
                loss.backward()
            loss_sum += loss.detach()
        if opts.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip_grad)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if world > 1:
            dist.all_reduce(loss_sum, op=dist.ReduceOp.AVG)
        step = state["step"] = state["step"] + 1
        state["tokens"] += step_tokens
        state["time_s"] += time.perf_counter() - t0
        state["last_loss"] = float(loss_sum)
        w = state["window"]  # [loss sum, steps, tokens] since the last log line
        state["window"] = w = [w[0] + state["last_loss"], w[1] + 1, w[2] + step_tokens]
        evaluate_now = opts.eval_every > 0 and step % opts.eval_every == 0
        if evaluate_now and valid_blocks is not None:
            valid_loss = evaluate(model, valid_blocks, lm.bos_id, opts.batch_size, device, amp,
                                  rank, world)
        state["wall_s"] = elapsed()
        last = budget.exhausted(step, state["wall_s"]) is not None
        if step % opts.log_every == 0 or last or evaluate_now:
            now = time.perf_counter()
            row = {"step": step, "loss": w[0] / w[1], "lr": lr,
                   "tokens_per_s": round(w[2] / max(now - t_window, 1e-9), 1)}
            if mixed:
                row["mix"] = stream.shares(state["data"])
            if evaluate_now and valid_loss is not None:
                row["valid_loss"] = valid_loss
            if rank == 0:
                with open(log_path, "a") as f:
                    f.write(json_line(row))
                bar.set_postfix(loss=f"{row['loss']:.3f}", refresh=False)
            state["window"], t_window = [0.0, 0, 0], now
        if bar is not None:
            bar.update(1)
        if step % opts.save_every == 0:
            _save(ckpt_dir, lm, optimizer, scheduler, state, opts.keep_checkpoints, rank, world)
            last_saved = step
    if bar is not None:
        bar.close()
    if state["step"] > last_saved:  # the final checkpoint of a budget that ended mid-interval
        _save(ckpt_dir, lm, optimizer, scheduler, state, opts.keep_checkpoints, rank, world)
    if rank == 0:
        log(f"stopped by --{stopped_by.replace('_', '-')} after {state['step']} steps, "
            f"{state['tokens']:,} tokens, {state['wall_s'] / 3600:.3f} h")

    if valid_blocks is not None:
        valid_loss = evaluate(model, valid_blocks, lm.bos_id, opts.batch_size, device, amp,
                              rank, world)
    final = run / "final"
    if rank == 0:
        model.eval()
        lm.save_pretrained(final)
        write_json(run / "metrics.json", train_metrics(
            train_loss=state["last_loss"], valid_loss=valid_loss, steps=state["step"],
            tokens=state["tokens"], time_s=state["time_s"], parameters=n_params,
            stopped_by=stopped_by, wall_s=state["wall_s"],
            mix=stream.shares(state["data"]) if mixed else None,
            inputs={k: store_path(v, run / "metrics.json") for k, v in
                    (("units", prefix), ("valid_units", opts.valid_units),
                     ("tokenizer", opts.tokenizer))}))
        plot_losses(log_path, run / "loss.png")
        log(f"unit LM written to {final} (valid loss {valid_loss})")
    if world > 1:
        dist.barrier()
    return final


def _stop(budget: Budget, step: int, elapsed_s: float, world: int,
          device: torch.device) -> str | None:
    """Which budget ends the run now (None: go on). With a time budget, rank 0's clock
    decides for every process, so they all stop after the same step."""
    if world > 1 and budget.seconds is not None:
        t = torch.tensor([elapsed_s], dtype=torch.float64, device=device)
        dist.broadcast(t, src=0)
        elapsed_s = float(t)
    return budget.exhausted(step, elapsed_s)


def _mixture(opts: LMTrainOptions, prefix: Path, main: BlockStream, lm: UnitLM
             ) -> MixtureStream:
    """The positional units (``main``, after the validation hold-out) mixed with ``--mix``."""
    streams, weights, names = [main], [opts.units_weight], [prefix.name]
    ids = dict(bos_id=lm.bos_id, eos_id=lm.eos_id, unit_offset=stream_offset(lm))
    data = Framing.from_json(load_packed(prefix)[2], str(prefix))
    for i, spec in enumerate(opts.mix):
        path, weight = parse_mix(spec)
        tokens, offsets, meta = load_packed(path)
        check_packed(meta, lm, f"--mix {path}")
        if int(meta["n_units"]) != lm.n_units:
            raise InputError(f"--mix {path}: {meta['n_units']} units, but {prefix} has "
                             f"{lm.n_units}; mix units of one tokenizer")
        check_same_framing(data, f"training units {prefix}", Framing.from_json(meta, path),
                           f"--mix {path}")
        streams.append(BlockStream(tokens, offsets, np.arange(len(offsets) - 1),
                                   main.block_len, seed=opts.seed + 1 + i, **ids))
        weights.append(weight)
        names.append(packed_prefix(path).name)
    if len(set(names)) != len(names):
        names = [f"{i}:{n}" for i, n in enumerate(names)]
    return MixtureStream(streams, weights, names, seed=opts.seed)


def _save(ckpt_dir: Path, lm: UnitLM, optimizer: torch.optim.Optimizer, scheduler: Any,
          state: dict[str, Any], keep: int, rank: int, world: int) -> None:
    if rank == 0:
        trainer_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                         "rng": rng_state(), "state": {**state, "data": state["data"].to_dict()}}
        save_checkpoint(ckpt_dir, state["step"], lm, trainer_state, keep)
    if world > 1:
        dist.barrier()
