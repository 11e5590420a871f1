"""Preference pairs for ``spokenlm lm dpo``: a prompt, a chosen and a rejected continuation.

A pairs file is JSONL (or a folder holding ``pairs.jsonl``), one pair a line, in any of three
forms (a file may mix them):

- units: ``{"id", "prompt_units": [...], "chosen_units": [...], "rejected_units": [...]}``
  (unit ids of the LM's tokenizer; an empty prompt is allowed);
- audio ids, as ``spokenlm data bench build --generate preference`` writes them:
  ``{"id", "prompt": audio id or null, "chosen": audio id, "rejected": audio id, ...}``
  naming rows of the ``manifest.jsonl`` beside the pairs file;
- audio paths, slamkit's preference format (SpokenSwag before feature extraction):
  ``{"prompt_path", "chosen_path", "rejected_path"}``, relative paths taken from the pairs
  file's folder.

Audio is tokenized with the given tokenizer into deduplicated units, as the likelihood
benchmarks tokenize theirs (:func:`spokenlm.tokenize.encode_rows.encode_audio`); a pair whose
audio cannot be read is skipped and reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..common.errors import InputError
from ..common.files import iter_jsonl
from ..common.paths import resolve_path

PAIRS_FILE = "pairs.jsonl"
ROLES = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class PreferencePair:
    """One preference pair as unit ids: ``chosen`` is preferred to ``rejected`` after
    ``prompt``."""

    id: str
    prompt: list[int]
    chosen: list[int]
    rejected: list[int]


@dataclass
class PreferenceData:
    pairs: list[PreferencePair]
    #: pair id -> why it was left out (unreadable audio)
    skipped: dict[str, str] = field(default_factory=dict)
    source: Path | None = None


def pairs_file(path: str | os.PathLike) -> Path:
    """The pairs JSONL that ``path`` names: the file itself, or ``<folder>/pairs.jsonl``."""
    path = Path(path)
    if path.is_dir():
        path = path / PAIRS_FILE
    if not path.is_file():
        raise InputError(f"{path}: preference pairs not found; pass a pairs JSONL or a folder "
                         f"holding {PAIRS_FILE} (`spokenlm data bench build --generate preference` "
                         "writes one)")
    return path


def _form(row: dict, where: str) -> str:
    for form, keys in (("units", [f"{r}_units" for r in ROLES]),
                       ("paths", [f"{r}_path" for r in ROLES[1:]]),
                       ("ids", list(ROLES[1:]))):
        if all(k in row for k in keys):
            return form
    raise InputError(f"{where}: a pair needs prompt_units/chosen_units/rejected_units, or "
                     "prompt/chosen/rejected audio ids (with manifest.jsonl beside the file), "
                     f"or prompt_path/chosen_path/rejected_path; this row has {sorted(row)}")


def _units(value: Any, n_units: int, where: str) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
            isinstance(u, int) and not isinstance(u, bool) for u in value):
        raise InputError(f"{where}: units must be a list of integers, got {str(value)[:60]}")
    bad = [u for u in value if not 0 <= u < n_units]
    if bad:
        raise InputError(f"{where}: unit {bad[0]} is outside [0, {n_units}); the pairs come "
                         "from a different tokenizer than the LM's: tokenize them with the "
                         "LM's tokenizer")
    return list(value)


def read_pairs(path: str | os.PathLike, n_units: int, tokenizer: Any = None) -> PreferenceData:
    """Read a pairs file (see the module doc) as unit pairs.

    Args:
        path: a pairs JSONL, or a folder holding ``pairs.jsonl`` (+ ``manifest.jsonl``).
        n_units: the LM's unit count (every unit id is checked against it).
        tokenizer: a ``SpeechTokenizer`` or its dir; needed only for audio pairs.
    """
    file = pairs_file(path)
    rows = []
    for lineno, row in enumerate(iter_jsonl(file), 1):
        where = f"{file}:{lineno}"
        if not isinstance(row, dict):
            raise InputError(f"{where}: not a JSON object; one pair per line")
        rows.append((where, str(row.get("id", f"pair{lineno}")), _form(row, where), row))
    if not rows:
        raise InputError(f"{file}: no preference pairs; build some with `spokenlm data bench build "
                         "--generate preference`")
    seen: set[str] = set()
    for where, pid, _, _ in rows:
        if pid in seen:
            raise InputError(f"{where}: duplicate pair id {pid!r}; ids must be unique")
        seen.add(pid)
    audio = _audio_rows(file, rows)
    units: dict[str, list[int]] = {}
    failed: dict[str, str] = {}
    if audio:
        units = _tokenize(file, audio, tokenizer, n_units, failed)
    data = PreferenceData([], {}, file)
    for where, pid, form, row in rows:
        if form == "units":
            parts = [_units(row[f"{r}_units"], n_units, f"{where} {r}_units") for r in ROLES]
        else:
            keys = [_audio_key(file, form, row, r) for r in ROLES]
            missing = [k for k in keys if k is not None and k not in units]
            if missing:
                data.skipped[pid] = failed.get(missing[0], f"audio {missing[0]} unreadable")
                continue
            parts = [[] if k is None else units[k] for k in keys]
        data.pairs.append(PreferencePair(pid, *parts))
    return data


def _audio_key(file: Path, form: str, row: dict, role: str) -> str | None:
    """The audio a pair's ``role`` names: a manifest id, or a resolved path; None: no audio."""
    value = row.get(role if form == "ids" else f"{role}_path")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f"{file}: pair {row.get('id')!r}: {role} must be an audio "
                         f"{'id' if form == 'ids' else 'path'} (a string), got {value!r}")
    return value if form == "ids" else str(resolve_path(value, file))


def _audio_rows(file: Path, rows: list[tuple[str, str, str, dict]]) -> dict[str, dict]:
    """Manifest-style rows (id, path, segment) of every audio the audio pairs name."""
    from ..audio.manifest import read_manifest

    out: dict[str, dict] = {}
    manifest: dict[str, dict] | None = None
    for where, _, form, row in rows:
        if form == "units":
            continue
        for role in ROLES:
            key = _audio_key(file, form, row, role)
            if key is None or key in out:
                continue
            if form == "paths":
                out[key] = {"id": key, "path": key}
                continue
            if manifest is None:
                m = file.parent / "manifest.jsonl"
                if not m.is_file():
                    raise InputError(f"{file}: pairs name audio ids but {m} is missing; put "
                                     "the audio manifest beside the pairs file, or give "
                                     "prompt_path/chosen_path/rejected_path instead")
                manifest = {r["id"]: r for r in read_manifest(m)}
            if key not in manifest:
                raise InputError(f"{where}: {role} audio {key!r} is not in "
                                 f"{file.parent / 'manifest.jsonl'}; rebuild the pairs")
            out[key] = manifest[key]
    return out


def _tokenize(file: Path, audio: dict[str, dict], tokenizer: Any, n_units: int,
              failed: dict[str, str]) -> dict[str, list[int]]:
    from ..tokenize.encode_rows import encode_audio
    from ..tokenize.tokenizer import SpeechTokenizer

    if tokenizer is None:
        raise InputError(f"{file}: the pairs are audio; pass --tokenizer (the tokenizer the "
                         "LM was trained on), or give units (prompt_units/chosen_units/"
                         "rejected_units)")
    if not isinstance(tokenizer, SpeechTokenizer):
        tokenizer = SpeechTokenizer.from_pretrained(tokenizer)
    if tokenizer.n_units != n_units:
        raise InputError(f"{file}: the tokenizer has {tokenizer.n_units} units but the LM "
                         f"{n_units}; pass the tokenizer the LM was trained on")
    return encode_audio(audio, tokenizer, desc="tokenize pairs", failed=failed)
