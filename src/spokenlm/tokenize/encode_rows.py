"""Deduplicated units of many audio rows at once (benchmarks, preference pairs): one
tokenizer, unreadable files skipped and reported. ``spokenlm.eval.benchmark`` re-exports it."""

from __future__ import annotations

from ..audio.load import AudioError, load_row
from ..common.progress import log, progress
from .tokenizer import SpeechTokenizer


def encode_audio(rows: dict[str, dict], tokenizer: SpeechTokenizer, desc: str = "tokenize",
                 failed: dict[str, str] | None = None) -> dict[str, list[int]]:
    """Deduplicated units for each audio id; unreadable files are reported, left out, and
    their errors put in ``failed`` (audio id -> message)."""
    units: dict[str, list[int]] = {}
    for aid, row in progress(rows.items(), desc=desc, total=len(rows), unit="file"):
        try:
            wav = load_row(row)
        except AudioError as e:
            log(f"skipping {e}")
            if failed is not None:
                failed[aid] = str(e)
            continue
        units[aid] = tokenizer.encode(wav, dedup=True).units.tolist()
    return units
