"""``spokenlm lm train``: train a unit LM (LLaMA over units) on packed units.

Resumable: a run killed at any point and restarted with the same options continues from
``checkpoints/latest`` (or, when that one is damaged, the newest intact one before it) with
the same data order, optimizer, scheduler and RNG state, so it ends where an uninterrupted
run would. Trained by the one training loop (:mod:`spokenlm.training.loop`). Runs under
``torchrun`` (gloo on CPU, nccl on GPU) with ``--distributed ddp`` (a replica per process)
or ``--distributed fsdp`` (FSDP2: each decoder layer and the root sharded, checkpoints
written by every process with ``torch.distributed.checkpoint``): every process takes its
slice of each global batch, only rank 0 logs and writes ``final/``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..audio.framing import Framing, check_same_framing
from ..common.checkpoints import load_checkpoint
from ..common.errors import InputError
from ..common.files import read_json, write_json
from ..common.hub import local_or_hub
from ..common.options import arg, command
from ..common.packed import packed_files
from ..common.paths import store_path
from ..common.progress import log
from ..training import Env, Recipe, TrainerOptions, fit, init
from .config import LMConfig
from .data import BlockStream, DataState, load_packed, packed_prefix, split_valid
from .interleaved_model import build_interleaved_lm, check_packed, stream_offset
from .mixture import MixState, MixtureStream, parse_mix
from .model import META_FILE, UnitLM
from .released import released_family
from .report import plot_losses, train_metrics

Size = Literal["tiny", "small", "base", "350m", "1b"]

#: LLaMA / GPT-style LM pretraining: AdamW betas (0.9, 0.95), decay 0.1, clip 1.0, cosine to
#: 10 % of the peak, bf16 where native
LM_TRAINER = TrainerOptions(beta2=0.95, weight_decay=0.1, min_lr_ratio=0.1, max_steps=2000,
                            precision="auto")


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
    batch_size: int = arg(16, help="sequences per micro-batch, summed over all processes "
                          "(an optimizer step takes --batch-size x --grad-accum)")
    mix: list[str] = arg([], help="more packed unit sets mixed into training, each "
                         "PATH:WEIGHT (e.g. data/synth/units.jsonl:0.3); the positional "
                         "units get --units-weight")
    units_weight: float = arg(1.0, help="sampling weight of the positional units in a --mix")
    eval_batches: int = arg(20, help="validation batches per evaluation")
    input_noise: float = arg(0.0, help="share of input units replaced by random units at each "
                             "step, targets unchanged (a regulariser against memorising unit "
                             "strings; 0: none)")
    trainer: TrainerOptions = arg(LM_TRAINER, help="training loop options (--distributed "
                                  "fsdp shards the LM over the processes)")


def build_model(opts: LMTrainOptions, n_units: int) -> UnitLM:
    """The model a run starts from: ``init_from`` (a unit LM dir, or a HF text LM dir for a
    TWIST warm start, see :mod:`spokenlm.lm.twist`) or a fresh preset."""
    tokenizer = None if opts.tokenizer is None else str(opts.tokenizer)
    if opts.init_from is not None:
        init_from = local_or_hub(opts.init_from, "--init-from model")
        if not (init_from / META_FILE).exists() and released_family(init_from) is None:
            from .twist import warm_start

            return warm_start(init_from, n_units, init=opts.init_embeddings,
                              keep_text_vocab=opts.keep_text_vocab, seed=opts.trainer.seed,
                              tokenizer=tokenizer)
        lm = UnitLM.from_pretrained(init_from)
        lm.check_tokenizer(n_units)
        lm.tokenizer = tokenizer or lm.tokenizer
        return lm
    return UnitLM.build(n_units, model_config(opts), seed=opts.trainer.seed,
                        tokenizer=tokenizer)


def model_config(opts: LMTrainOptions) -> LMConfig:
    return LMConfig.named(opts.size, n_layers=opts.n_layers, hidden=opts.hidden,
                          heads=opts.heads, kv_heads=opts.kv_heads,
                          intermediate=opts.intermediate, max_positions=opts.max_positions,
                          rope_theta=opts.rope_theta, dropout=opts.dropout,
                          tie_word_embeddings=opts.tie_embeddings)


def lm_loss(model: torch.nn.Module, x: torch.Tensor, bos_id: int,
            inputs: torch.Tensor | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy of blocks x (B, T+1); BOS targets are not scored.
    ``inputs`` (B, T) replaces ``x[:, :-1]`` as the model's input (e.g. noised units)."""
    inputs = x[:, :-1] if inputs is None else inputs
    logits = model(input_ids=inputs, use_cache=False).logits  # (B, T, V)
    target = x[:, 1:].masked_fill(x[:, 1:] == bos_id, -100)  # (B, T)
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), ignore_index=-100)


def noised_units(x: torch.Tensor, share: float, lo: int, hi: int,
                 generator: torch.Generator) -> torch.Tensor:
    """Token ids x (B, T) with each id in the unit range [lo, hi) replaced, with probability
    ``share``, by a unit drawn uniformly from that range (BOS / EOS / text tokens kept)."""
    is_unit = (x >= lo) & (x < hi)
    hit = torch.rand(x.shape, generator=generator).to(x.device) < share
    random_units = torch.randint(lo, hi, x.shape, generator=generator).to(x.device)
    return torch.where(is_unit & hit, random_units, x)


@torch.no_grad()
def evaluate(model: torch.nn.Module, blocks: np.ndarray, bos_id: int, batch_size: int,
             device: torch.device, amp: torch.dtype | None, rank: int = 0,
             world: int = 1) -> float:
    """Mean token loss over ``blocks`` (n, T+1), shared across ranks. Every rank runs the
    same number of forwards (a sharded model needs all of them), a rank whose share has run
    out on a block it does not count."""
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)  # (loss sum, targets)
    mine = blocks[rank::world]
    for i in range(0, -(-len(blocks) // world), batch_size):
        x = torch.from_numpy(mine[i: i + batch_size] if i < len(mine) else blocks[:1]
                             ).to(device)
        n = (x[:, 1:] != bos_id).sum() * (i < len(mine))
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
    stream = BlockStream(tokens, offsets, train_idx, seq_len + 1, seed=opts.trainer.seed,
                         **ids)
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
        v_meta = read_json(packed_files(packed_prefix(opts.valid_units))[".meta.json"])
        others.append((Framing.from_json(v_meta, str(opts.valid_units)),
                       f"validation units {opts.valid_units}"))
    if opts.init_from is not None and lm.frame_rate is not None:
        others.append((lm.framing, f"unit LM {opts.init_from}"))
    for framing, name in others:
        check_same_framing(data, f"training units {prefix}", framing, name)
    return data.frame_rate


class UnitLMRecipe(Recipe):
    """A recipe that trains ``self.lm``: its checkpoints are unit LM dirs."""

    lm: UnitLM

    def write_files(self, path: Path) -> None:
        self.lm.write_files(path)

    def read_checkpoint(self, path: Path) -> dict[str, Any]:
        tied = ({"lm_head.weight"} if getattr(self.lm.model.config, "tie_word_embeddings",
                                              False) else ())
        return load_checkpoint(path, self.lm.model, tied)


class LMRecipe(UnitLMRecipe):
    """Next-token prediction on blocks of packed units (or a ``--mix`` of several)."""

    name = "lm train"
    shardable = True
    collective_eval = True

    def __init__(self, lm: UnitLM, stream: BlockStream | MixtureStream,
                 valid_blocks: np.ndarray | None, seq_len: int, opts: LMTrainOptions,
                 env: Env) -> None:
        self.lm, self.model, self.stream, self.valid_blocks = lm, lm.model, stream, valid_blocks
        self.opts, self.env, self.seq_len = opts, env, seq_len
        self.mixed = isinstance(stream, MixtureStream)
        self.position: DataState | MixState = (stream.initial_state() if self.mixed
                                               else DataState())
        self.step_tokens = opts.batch_size * opts.trainer.grad_accum * seq_len

    def batches(self, step: int, shards: range, n_shards: int) -> list[torch.Tensor]:
        total, start = self.opts.batch_size * self.opts.trainer.grad_accum, self.position
        out = []
        for s in shards:  # (B / world, T + 1) each
            x, self.position = self.stream.next_batch(start, total, s, n_shards)  # type: ignore
            out.append(torch.from_numpy(x).to(self.env.device))
        return out

    def loss(self, model: nn.Module, batch: torch.Tensor, step: int) -> dict[str, Any]:
        inputs = None
        if self.opts.input_noise > 0:  # the same noise after a resume: seeded by step + data
            g = torch.Generator().manual_seed(
                self.opts.trainer.seed * 1_000_003 + step * 7919 + int(batch[:, 0].sum()))
            lo = self.lm.unit_offset
            inputs = noised_units(batch[:, :-1], self.opts.input_noise, lo,
                                  lo + self.lm.n_units, g)
        return {"loss": lm_loss(model, batch, self.lm.bos_id, inputs)}

    def evaluate(self, model: nn.Module, step: int | None) -> dict[str, float]:
        if self.valid_blocks is None:
            return {}
        return {"valid_loss": evaluate(model, self.valid_blocks, self.lm.bos_id,
                                       self.opts.batch_size, self.env.device, self.env.amp,
                                       self.env.rank, self.env.world)}

    def shard_units(self) -> Sequence[nn.Module]:
        """The decoder layers (the classes HF keeps whole across devices)."""
        names = set(getattr(self.model, "_no_split_modules", None) or ())
        return [m for m in self.model.modules() if type(m).__name__ in names]

    def state_dict(self) -> dict[str, Any]:
        return {"data": self.position.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        data = state["data"]
        if ("sources" in data) != self.mixed:
            raise InputError(f"{self.opts.output}: its checkpoints were written "
                             f"{'without' if self.mixed else 'with'} --mix; resume with the "
                             f"same data options or use a new --output")
        self.position = (MixState if self.mixed else DataState).from_dict(data)

    def log_extras(self, elapsed_s: float = 0.0) -> dict[str, Any]:
        return {"mix": self.stream.shares(self.position)} if self.mixed else {}  # type: ignore

    def run_info(self) -> dict[str, Any]:
        return {"seq_len_used": self.seq_len}

    def describe(self) -> str:
        return f"{self.opts.size}, {self.stream.total} tokens"


@command("lm train", LMTrainOptions)
def train_lm(opts: LMTrainOptions) -> Path:
    """Train a unit LM on packed units; returns the final unit LM dir (<output>/final)."""
    if not 0.0 <= opts.input_noise < 1.0:
        raise InputError(f"--input-noise {opts.input_noise}: give the share of input units "
                         f"to replace, in [0, 1) (e.g. 0.1)")
    t, env = opts.trainer, init(opts.trainer)
    run = opts.output
    prefix = packed_prefix(opts.units)
    packed = load_packed(prefix)
    n_units = int(packed[2]["n_units"])
    if opts.tokenizer is not None:
        tok_units = int(read_json(opts.tokenizer / "config.json")["n_units"])
        if tok_units != n_units:
            raise InputError(f"{opts.tokenizer}: tokenizer has {tok_units} units but {prefix} "
                             f"holds {n_units}-unit data; pass the tokenizer that made them")
    lm = (build_interleaved_lm(opts.init_from, packed[2], str(prefix), init=opts.init_embeddings,
                               seed=t.seed, tokenizer=opts.tokenizer and str(opts.tokenizer))
          if opts.interleave else build_model(opts, n_units))
    check_packed(packed[2], lm, str(prefix))
    lm.frame_rate = _units_frame_rate(opts, prefix, packed[2], lm)
    stream, valid_blocks, seq_len = _data(opts, prefix, packed, lm, env.rank)
    if opts.mix:
        stream = _mixture(opts, prefix, stream, lm)
    recipe = LMRecipe(lm, stream, valid_blocks, seq_len, opts, env)
    result = fit(recipe, t, env, run, record=opts)
    final = run / "final"
    if env.main:
        full = result.full_state
        if full is not None and getattr(lm.model.config, "tie_word_embeddings", False):
            full.pop("lm_head.weight", None)  # tied: written once, as a plain save does
        with lm.exporting(full):
            lm.save_pretrained(final)
        write_json(run / "metrics.json", train_metrics(
            train_loss=result.last.get("loss"), valid_loss=result.valid.get("valid_loss"),
            steps=result.steps, tokens=result.tokens, time_s=result.time_s,
            parameters=result.parameters, stopped_by=result.stopped_by, wall_s=result.wall_s,
            mix=recipe.log_extras().get("mix"),
            inputs={k: store_path(v, run / "metrics.json") for k, v in
                    (("units", prefix), ("valid_units", opts.valid_units),
                     ("tokenizer", opts.tokenizer))}))
        plot_losses(run / "log.jsonl", run / "loss.png")
        log(f"unit LM written to {final} (valid loss {result.valid.get('valid_loss')})")
    env.barrier()
    return final


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
                                   main.block_len, seed=opts.trainer.seed + 1 + i, **ids))
        weights.append(weight)
        names.append(packed_prefix(path).name)
    if len(set(names)) != len(names):
        names = [f"{i}:{n}" for i, n in enumerate(names)]
    return MixtureStream(streams, weights, names, seed=opts.trainer.seed)
