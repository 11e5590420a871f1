"""One process or many, with no code change: the process group, the engines and the data split.

Under ``torchrun`` (``WORLD_SIZE`` > 1) :func:`init` joins the process group (nccl on GPUs,
gloo on CPUs) and gives each process its local GPU. :class:`Engine` is the model as the loop
trains it: plain in one process; under DDP a full replica per process with gradients
all-reduced; under FSDP2 (``torch.distributed.fsdp.fully_shard``) each listed block and the
root sharded across processes, so parameters, gradients and optimizer state take 1/N of the
memory each. Either way the recipe's loss runs *inside* the wrapped forward, so every
parameter the loss reaches (heads, duration predictors, a discriminator's features) is
synchronised, whichever of the model's methods computes it.

The data split: each optimizer step consumes one global batch, cut into ``world x
grad_accum`` equal shards; process ``r`` takes shards ``r * accum ... r * accum + accum - 1``,
one per micro-step (:func:`shard_slice`). No sample is seen by two processes, and a run on
N processes takes the same shards as one process with N times the gradient accumulation.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..common.device import resolve_device, resolve_dtype
from ..common.errors import InputError
from ..common.progress import log
from .options import TrainerOptions


@dataclass(frozen=True)
class Env:
    """Where this process trains: its rank among ``world``, its device and autocast dtype."""

    rank: int
    world: int
    local_rank: int
    device: torch.device
    amp: torch.dtype | None

    @property
    def main(self) -> bool:
        """Rank 0: the process that logs and writes (sharded saves are collective)."""
        return self.rank == 0

    def log(self, msg: str) -> None:
        if self.main:
            log(msg)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def first(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on rank 0 first (it may write files: targets, caches), then on the other
        processes (which find them written)."""
        if self.main:
            out = fn()
            self.barrier()
            return out
        self.barrier()
        return fn()

    def broadcast(self, value: float) -> float:
        """Rank 0's ``value`` on every process."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(t, src=0)
        return float(t)

    def mean_metrics(self, values: dict[str, float]) -> dict[str, float]:
        """The mean over processes of each metric, NaN-aware (NaN when no process has one);
        every process must pass the same keys."""
        if self.world == 1:
            return dict(values)
        keys = sorted(values)
        x = torch.tensor([[0.0 if values[k] != values[k] else values[k],
                           float(values[k] == values[k])] for k in keys],
                         dtype=torch.float64, device=self.device).reshape(-1, 2)
        dist.all_reduce(x)
        return {k: float(x[i, 0] / x[i, 1]) if x[i, 1] > 0 else float("nan")
                for i, k in enumerate(keys)}

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` of every process, by rank (pickled; small objects such as RNG states)."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


def init(opts: TrainerOptions) -> Env:
    """Check ``opts``, join the process group under torchrun (once), pick this process's
    device and the autocast dtype of ``opts.precision``."""
    opts.check()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0")) if world > 1 else 0
    device = resolve_device(opts.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return Env(rank, world, local_rank, device, resolve_dtype(opts.precision, device))


def shard_slice(n: int, shard: int, shards: int, what: str = "--batch-size") -> slice:
    """Rows of shard ``shard`` of ``shards`` equal contiguous shards of ``n`` rows."""
    if n % shards:
        raise InputError(f"{what} {n} does not split into {shards} equal shards (processes x "
                         f"--grad-accum); pick a multiple of {shards}")
    size = n // shards
    return slice(shard * size, (shard + 1) * size)


def take(items: Sequence[Any], shard: int, shards: int, what: str = "--batch-size") -> list:
    """Shard ``shard`` of ``items`` (see :func:`shard_slice`)."""
    return list(items[shard_slice(len(items), shard, shards, what)])


class LossForward(nn.Module):
    """The recipe's loss as a module's forward: ``forward(*args) = loss_fn(model, *args)``,
    so DDP's and FSDP's hooks see every parameter the loss uses."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., dict[str, Any]]) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, *args: Any) -> dict[str, Any]:
        return self.loss_fn(self.model, *args)


class Engine:
    """``model`` trained under ``env`` by ``opts.distributed``; call :attr:`forward`."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., dict[str, Any]], env: Env,
                 opts: TrainerOptions, *, shard_units: Sequence[nn.Module] = (),
                 unused_parameters: bool = False) -> None:
        self.env, self.model = env, model.to(env.device)
        self.sharded = env.world > 1 and opts.distributed == "fsdp"
        self.replicated = env.world > 1 and not self.sharded
        forward: nn.Module = LossForward(self.model, loss_fn)
        if self.sharded:
            from torch.distributed.fsdp import fully_shard

            for unit in shard_units:
                fully_shard(unit)
            fully_shard(self.model)
        elif self.replicated:
            forward = wrap_ddp(forward, env, unused_parameters)
        self._wrapped = forward
        self.forward: Callable[..., dict[str, Any]] = (torch.compile(forward) if opts.compile
                                                       else forward)

    @contextlib.contextmanager
    def sync(self, on: bool) -> Iterator[None]:
        """Gradient synchronisation on (the last micro-step) or off (the ones before)."""
        if self.replicated and not on:
            with self._wrapped.no_sync():  # type: ignore[operator]
                yield
            return
        if self.sharded:
            self.model.set_requires_gradient_sync(on)  # type: ignore[operator]
        yield

    def clip(self, max_norm: float) -> None:
        if max_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)

    def full_state_dict(self) -> dict[str, torch.Tensor] | None:
        """The whole model's state dict on rank 0's CPU (None elsewhere); collective under
        FSDP, where no process holds all of it."""
        if not self.sharded:
            return self.model.state_dict() if self.env.main else None
        from torch.distributed.checkpoint.state_dict import (StateDictOptions,
                                                             get_model_state_dict)

        full = get_model_state_dict(self.model, options=StateDictOptions(
            full_state_dict=True, cpu_offload=True))
        return full if self.env.main else None

    def parameters(self) -> int:
        """Parameter count of the whole model (sharded or not)."""
        return sum(p.numel() for p in self.model.parameters())


def wrap_ddp(module: nn.Module, env: Env, unused_parameters: bool = False) -> nn.Module:
    """``module`` under DDP on ``env``'s device (as is in one process)."""
    if env.world == 1:
        return module
    return nn.parallel.DistributedDataParallel(
        module.to(env.device), device_ids=[env.device.index] if env.device.type == "cuda"
        else None, find_unused_parameters=unused_parameters)
