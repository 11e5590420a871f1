"""The options every trainer shares, as one frozen dataclass.

Each command nests a :class:`TrainerOptions` in its own options with the defaults of its
recipe (``trainer: TrainerOptions = arg(TrainerOptions(lr=..., ...))``); the CLI flattens
it into the command's flags (``--lr``, ``--max-steps``, ``--distributed``) and library calls
take the same names as keywords (``train_lm(units=..., lr=1e-3)``). The defaults each recipe
picks, and why, are in ``docs/training.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from ..common.errors import InputError
from ..common.options import arg

Optimizer = Literal["adamw", "sgd"]
Schedule = Literal["cosine", "constant", "exponential"]
Precision = Literal["auto", "bf16", "fp32"]
Engine = Literal["ddp", "fsdp"]


@dataclass(frozen=True)
class TrainerOptions:
    """Optimizer, schedule, budget, precision, checkpoints, logging, device and engine."""

    optimizer: Optimizer = arg("adamw", help="adamw (decoupled weight decay on weight "
                               "matrices; norms and biases do not decay) or sgd (momentum "
                               "--beta1)")
    lr: float | None = arg(5e-4, help="peak learning rate")
    beta1: float = arg(0.9, help="AdamW beta1 (sgd: momentum)")
    beta2: float = arg(0.98, help="AdamW beta2")
    weight_decay: float = arg(0.01, help="weight decay of the weight matrices")
    lr_schedule: Schedule = arg("cosine", help="after the linear warmup: cosine to "
                             "--min-lr-ratio over the budget, constant, or exponential "
                             "(x --lr-decay every epoch of the data)")
    warmup_steps: int = arg(100, help="linear warmup steps (at most a fifth of the steps)")
    min_lr_ratio: float = arg(0.0, help="final learning rate of the cosine, as a fraction "
                              "of --lr")
    lr_decay: float = arg(0.999, help="--lr-schedule exponential: learning rate multiplied by "
                          "this every epoch")
    max_steps: int | None = arg(1000, help="optimizer steps")
    max_tokens: int | None = arg(None, help="token budget: stop after this many training "
                                 "tokens (the schedule is fitted to it; recipes that count "
                                 "tokens: lm train, lm pretrain-text, vocoder train (frames))")
    max_hours: float | None = arg(None, help="wall-clock budget in hours, counted across "
                                  "resumes: the cosine decays on the time used and the run "
                                  "stops cleanly with a final checkpoint when it is spent")
    ema: float = arg(0.0, help="decay of an exponential moving average of the weights, "
                     "updated every step (e.g. 0.99: about the last 100 steps); validation "
                     "and final/ use the average; 0: none")
    grad_accum: int = arg(1, help="micro-batches per optimizer step (each process)")
    clip_grad: float | None = arg(1.0, help="gradient norm clip (0 disables)")
    precision: Precision = arg("fp32", help="fp32, bf16 autocast, or auto (bf16 where "
                               "native, else fp32)")
    compile: bool = arg(False, help="torch.compile the training forward/backward (inductor; "
                        "on a CPU it needs a C++ compiler): a one-off compile, then faster "
                        "steps")
    save_every: int = arg(200, help="steps between checkpoints (and one at the end)")
    keep_checkpoints: int = arg(2, help="checkpoints kept on disk")
    resume: bool = arg(True, help="continue from checkpoints/latest when present")
    log_every: int = arg(10, help="steps between log.jsonl lines")
    eval_every: int = arg(200, help="steps between validation passes (0: only at the end)")
    device: str = arg("auto", help="auto, cpu, cuda, cuda:1, ... (under torchrun: the "
                      "process's local GPU)")
    seed: int = arg(0, help="seed of the init, the data order, masks and dropout")
    distributed: Engine = arg("ddp", help="engine under torchrun: ddp (a full replica per "
                              "process) or fsdp (FSDP2 fully_shard: parameters, gradients "
                              "and optimizer state sharded, checkpoints sharded with "
                              "torch.distributed.checkpoint); one process ignores it")

    def replace(self, **changes: Any) -> TrainerOptions:
        return dataclasses.replace(self, **changes)

    def check(self) -> None:
        """One-line errors for values no run can use."""
        for name in ("grad_accum", "save_every", "log_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise InputError("--max-steps must be >= 1")
        if self.lr is not None and not self.lr > 0:
            raise InputError(f"--lr {self.lr}: must be > 0")
        if self.warmup_steps < 0 or self.eval_every < 0:
            raise InputError("--warmup-steps and --eval-every must be >= 0")
        if not 0.0 <= self.ema < 1.0:
            raise InputError(f"--ema {self.ema}: give the average's decay in [0, 1) (e.g. "
                             f"0.99), or 0 for none")
