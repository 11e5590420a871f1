"""HuBERT / wav2vec 2.0 span masking of frames, deterministic by seed.

For each utterance of ``F`` frames, ``num = int(mask_prob * F / span + u)`` span starts
(``u ~ U[0, 1)``, random rounding, at least ``min_masks``) are drawn without replacement
from ``[0, F - span]`` and ``span`` frames are masked from each. Spans may overlap, so the
masked share is below ``mask_prob`` (about 0.49 for 0.65 / 10, as in HuBERT), and every
masked run is at least ``span`` frames long (fairseq ``compute_mask_indices``, "static").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def span_mask(n_frames: Sequence[int], mask_prob: float = 0.65, span: int = 10,
              min_masks: int = 2, seed: int | Sequence[int] = 0,
              max_frames: int | None = None) -> torch.Tensor:
    """Boolean mask (B, max_frames) with True on masked frames.

    Args:
        n_frames: real frame count of each utterance (B,); frames past it stay False.
        mask_prob: share of frames chosen as span starts times ``span`` (before overlap).
        span: frames per masked span (HuBERT: 10 = 200 ms).
        min_masks: spans per utterance at least (when it has room for them).
        seed: int or sequence of ints (e.g. ``(seed, step)``) for ``numpy.random.default_rng``.
        max_frames: width of the mask (default ``max(n_frames)``).
    """
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob={mask_prob}: must be in [0, 1]")
    if span < 1:
        raise ValueError(f"span={span}: must be >= 1 frame")
    rng = np.random.default_rng(seed)
    width = max(n_frames, default=0) if max_frames is None else max_frames
    mask = np.zeros((len(n_frames), width), dtype=bool)
    for b, n in enumerate(n_frames):
        u = rng.random()  # drawn for every row so rows do not shift each other's streams
        length = min(span, int(n))
        if mask_prob == 0 or length < 1:
            continue
        num = max(min_masks, int(mask_prob * n / span + u))
        n_starts = int(n) - length + 1
        num = min(num, n_starts)
        starts = rng.choice(n_starts, size=num, replace=False)  # (num,)
        idx = (starts[:, None] + np.arange(length)[None, :]).ravel()
        mask[b, idx] = True
    return torch.from_numpy(mask)


def mask_runs(mask: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D boolean mask (F,), left to right."""
    m = np.concatenate([[0], mask.to(torch.int8).cpu().numpy(), [0]])
    edges = np.flatnonzero(np.diff(m))
    return (edges[1::2] - edges[0::2]).tolist()
