"""Shared test settings: no progress bars, no network, deterministic torch threads."""

from __future__ import annotations

import os

os.environ.setdefault("SPOKENLM_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
