"""Shared test settings: no progress bars, no network, deterministic torch threads."""

from __future__ import annotations

import os

os.environ.setdefault("SPOKENLM_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

# Tiny test models run fastest (and most reproducibly) on one thread.
torch.set_num_threads(1)
