"""Run report pieces of LM training: the loss curve plot and ``metrics.json``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..common.files import atomic_path, iter_jsonl


def plot_losses(log_path: Path, out: Path) -> Path | None:
    """Train (and valid, when evaluated) loss against step from ``log.jsonl`` into a PNG."""
    if not log_path.exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(iter_jsonl(log_path))
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    valid = [(r["step"], r["valid_loss"]) for r in rows if r.get("valid_loss") is not None]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if train:
        ax.plot(*zip(*train), label="train")
    if valid:
        ax.plot(*zip(*valid), marker="o", label="valid")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / token)")
    ax.set_title("unit LM training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out


def perplexity(loss: float | None) -> float | None:
    return None if loss is None else float(math.exp(min(loss, 50.0)))


def train_metrics(*, train_loss: float | None, valid_loss: float | None, steps: int,
                  tokens: int, time_s: float, parameters: int, inputs: dict[str, Any],
                  stopped_by: str | None = None, wall_s: float | None = None,
                  mix: dict[str, float] | None = None) -> dict[str, Any]:
    """``metrics.json`` of an LM run; ``stopped_by`` names the budget that ended it
    (max_steps, max_tokens, max_hours) and ``mix`` the share of rows drawn per source."""
    out = {"metric": "lm_train", "train_loss": train_loss, "valid_loss": valid_loss,
           "valid_perplexity": perplexity(valid_loss), "steps": steps, "tokens": tokens,
           "time_s": round(time_s, 3),
           "tokens_per_s": round(tokens / time_s, 1) if time_s > 0 else None,
           "parameters": parameters, "inputs": inputs}
    if stopped_by is not None:
        out["stopped_by"] = stopped_by
    if wall_s is not None:
        out["wall_s"] = round(wall_s, 3)
    if mix is not None:
        out["mix"] = mix
    return out
