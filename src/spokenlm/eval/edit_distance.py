"""Edit distance and error rates: WER, CER, PER (re-exported from
:mod:`spokenlm.common.edit_distance`, where they live so that asr and eval both use them
without importing each other)."""

from __future__ import annotations

from ..common.edit_distance import cer, edit_distance, error_rate, wer

__all__ = ["cer", "edit_distance", "error_rate", "wer"]
