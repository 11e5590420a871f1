"""Shared test settings: no progress bars, no network, deterministic torch threads."""

from __future__ import annotations

import os

os.environ.setdefault("SPOKENLM_PROGRESS", "0")
# no test reaches for the hub, whatever the shell exported: downloads stay off (spokenlm
# downloads only with SPOKENLM_DOWNLOAD=1) and the hub clients are told they are offline
os.environ.pop("SPOKENLM_DOWNLOAD", None)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402

# Tiny test models run fastest (and most reproducibly) on one thread.
torch.set_num_threads(1)
