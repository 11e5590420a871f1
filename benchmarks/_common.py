"""Shared helpers of the stage benchmarks: flags, threads, device facts, timing, the JSON line.

Every ``bench_*.py`` script prints exactly one JSON line on stdout (progress goes to stderr)::

    {"bench": ..., "spokenlm": {...}, "baseline": {...}, "ratio": ..., "outputs_agree": ...,
     "agreement": ..., "bar": ..., "meets_bar": ..., "device": {...}, "size": ...}

Timings never go into the test suite; these scripts are run by hand or by ``run_all.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import torch


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The flags every stage takes: ``--full``, ``--device``, ``--threads``, ``--seed``."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true",
                   help="the issue's sizes (slow on a CPU); default: a reduced size (~1 min)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (auto: cuda if any)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch / faiss / BLAS (0: library default = all cores)")
    p.add_argument("--seed", type=int, default=0)
    return p


def setup(args: argparse.Namespace) -> torch.device:
    """Apply ``--threads`` everywhere (torch, faiss, OpenMP/BLAS pools); resolve ``--device``.

    Also sends everything libraries print to stdout to stderr, so that stdout carries only
    the JSON line :func:`emit` writes."""
    sys.stdout = sys.stderr
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        try:
            import faiss

            faiss.omp_set_num_threads(args.threads)
        except ImportError:
            pass
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads)
        except ImportError:
            pass
    from spokenlm.common.device import resolve_device

    return resolve_device(args.device)


def log(msg: str) -> None:
    """Progress to stderr (stdout carries only the JSON line)."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def timer(device: torch.device, out: dict[str, float], key: str = "s"):
    """Wall seconds of the ``with`` body (CUDA synchronised) into ``out[key]``."""
    sync(device)
    t0 = time.perf_counter()
    yield
    sync(device)
    out[key] = time.perf_counter() - t0


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    """(result, wall seconds) of ``fn()``, CUDA synchronised."""
    sync(device)
    t0 = time.perf_counter()
    result = fn()
    sync(device)
    return result, time.perf_counter() - t0


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: torch.device) -> dict[str, Any]:
    """What ran the benchmark: device, its name, threads, whether bf16 is native."""
    from spokenlm.common.device import bf16_supported

    info: dict[str, Any] = {"type": device.type, "torch": torch.__version__,
                            "threads": torch.get_num_threads(), "cpu": cpu_name(),
                            "cpu_count": os.cpu_count(), "bf16_native": bf16_supported(device)}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
    return info


@torch.no_grad()
def peak_matmul_flops(device: torch.device, n: int = 2048, dtype: torch.dtype = torch.float32,
                      min_seconds: float = 1.0) -> float:
    """Measured FLOP/s of an ``n x n`` matmul in ``dtype`` (best of repeated runs)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm up
    sync(device)
    best, spent = float("inf"), 0.0
    while spent < min_seconds:
        t0 = time.perf_counter()
        a @ b
        sync(device)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return 2 * n ** 3 / best


def emit(bench: str, *, spokenlm: dict[str, Any], baseline: dict[str, Any] | None,
         ratio: float | dict[str, float] | None, outputs_agree: bool | None, agreement: Any,
         bar: str, meets_bar: bool | None, device: torch.device, size: dict[str, Any],
         **extra: Any) -> dict[str, Any]:
    """Print the one JSON line of a stage and return it."""
    row = {"bench": bench, "spokenlm": spokenlm, "baseline": baseline, "ratio": ratio,
           "outputs_agree": outputs_agree, "agreement": agreement, "bar": bar,
           "meets_bar": meets_bar, "device": device_info(device), "size": size, **extra}
    print(json.dumps(_round(row)), file=sys.__stdout__, flush=True)
    return row


def _round(x: Any) -> Any:
    if isinstance(x, float):
        return float(f"{x:.4g}")
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v) for v in x]
    return x
