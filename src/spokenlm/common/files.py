"""Atomic file writes and JSON/JSONL helpers.

Every artifact spokenlm writes goes through :func:`atomic_path`, so a kill mid-write never
leaves a half-written file under the final name: stages can always trust what exists.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import ArtifactError, InputError
from .paths import ArtifactKind, check_replaceable

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files; give the usual umask-based mode
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, kind: ArtifactKind | None = None, *,
               overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``path`` (a model or
    tokenizer dir). A kill leaves the old ``path`` intact (or the new one), never a mix.

    An existing ``path`` is replaced only when it is empty or a saved dir of the same
    ``kind`` (or ``overwrite`` is set): anything else raises :class:`InputError` before a
    file is written, so saving never deletes a folder of other files.
    """
    path = Path(path)
    check_replaceable(path, kind, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(src: Path, dst: Path) -> None:
    """Rename directory ``src`` to ``dst``, replacing an existing ``dst`` (the old one is kept
    until the new one is in place)."""
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically; non-finite floats become ``null`` (see
    :func:`json_safe`), so the file is strict JSON any reader parses."""
    text = json.dumps(json_safe(obj), indent=2, sort_keys=False, default=_default,
                      allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); pass the "
                         f"JSON file meant here, not a binary one") from e
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e}); regenerate the file") from e


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    """Write rows as JSON lines, atomically (non-finite floats as ``null``)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for row in rows:
            f.write(json_line(row))
    return Path(path)


def json_line(row: Any) -> str:
    """One JSONL line (with its newline) of ``row``, non-finite floats as ``null``; for logs
    appended a row at a time."""
    return json.dumps(json_safe(row), default=_default, allow_nan=False) + "\n"


def json_safe(obj: Any) -> Any:
    """``obj`` with every NaN/Infinity float (Python, numpy or torch, at any depth) as None.

    A dict value that was not finite gets a ``<key>_reason`` next to it (unless the dict
    has one already), so a reader of ``{"wer": null, "wer_reason": ...}`` knows why.
    Numpy/torch values become Python ones and paths strings; other types are left for
    :func:`json.dumps` (which rejects them).
    """
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        out: dict = {}
        for key, value in obj.items():
            out[key] = json_safe(value)
            if out[key] is None and _not_finite(value):
                reason = f"{key}_reason"
                if isinstance(key, str) and reason not in obj:
                    out[reason] = f"not a finite number ({float(value)})"
        return out
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return json_safe(obj.tolist())
    return obj


def _not_finite(value: Any) -> bool:
    try:
        return not math.isfinite(value)
    except (TypeError, ValueError):
        return False


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield rows of a JSONL file; a bad line (not UTF-8, not JSON) raises an error naming
    file and line number."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
            except UnicodeDecodeError as e:
                raise InputError(f"{path}:{lineno}: not UTF-8 text ({e.reason} at byte "
                                 f"{e.start} of the line); pass the JSONL file meant here, "
                                 f"not a binary one") from e
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{lineno}: not valid JSON ({e})") from e


def read_artifact_json(path: str | os.PathLike, missing: str) -> Any:
    """The JSON file ``path`` of a saved artifact (a model's ``config.json``): an
    :class:`ArtifactError` saying ``missing`` when there is no such file, and with
    :func:`read_json`'s message when it cannot be read."""
    if not Path(path).exists():
        raise ArtifactError(missing)
    try:
        return read_json(path)
    except InputError as e:
        raise ArtifactError(str(e)) from e


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    return list(iter_jsonl(path))


def _default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
