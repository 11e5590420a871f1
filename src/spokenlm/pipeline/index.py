"""Index JSONL files (``resynth.jsonl``, ``generations.jsonl``) written one finished row at a
time, so a kill, crash or timeout never loses finished work, and a rerun resumes.

Each row is appended and flushed to disk as soon as its files are written. A rerun with the
same settings (the same tokenizer / vocoder / LM files and options) keeps every row whose
files still exist and skips that work; :meth:`RowIndex.finish` then rewrites the index with
one row per input, in input order. Other settings start the index over.

Paths in rows (:data:`PATH_KEYS`) are stored relative to the index file when they lie in
its run, absolute otherwise (:func:`~spokenlm.common.paths.store_path`); read them with
:func:`read_index`, which resolves them against the index, so a run directory can be moved
or evaluated from any working directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..common.files import json_line, json_safe, read_json, read_jsonl, write_json, write_jsonl
from ..common.paths import resolve_path, resolve_row, store_row
from ..common.progress import log

#: Row fields that hold paths: the output wav(s) and the input audio they were made from.
PATH_KEYS = ("path", "continuation_path", "source")


def read_index(path: str | os.PathLike, keys: tuple[str, ...] = PATH_KEYS) -> list[dict]:
    """Rows of an index JSONL with the paths of ``keys`` resolved against the file (older
    indexes with paths relative to the working directory they were made in still read)."""
    return [resolve_row(row, path, keys) for row in read_jsonl(path)]


def artifact_stamp(path: str | os.PathLike | None) -> str | None:
    """A short fingerprint of a saved dir (or file): its resolved path and the names, sizes
    and modification times of its files. Retraining in place changes it."""
    if path is None:
        return None
    path = Path(path).resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha1(str(path).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(path) if f != path else f.name}\0{st.st_size}\0"
                 f"{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class RowIndex:
    """The index ``path`` of one run: finished rows keyed by ``id``.

    Settings are kept beside it (``<stem>.settings.json``). ``file_keys`` name the row fields
    holding the files a row stands for; a previous row counts as done only while they exist.
    ``path_keys`` fields are paths, kept in :attr:`rows` as stored (relative to the index
    within its run) and compared so by :meth:`done`.
    Use as a context manager; call :meth:`finish` once every input was handled.
    """

    def __init__(self, path: str | os.PathLike, settings: dict[str, Any],
                 file_keys: tuple[str, ...] = ("path",),
                 path_keys: tuple[str, ...] = PATH_KEYS) -> None:
        self.path = Path(path)
        self.settings_path = self.path.with_name(f"{self.path.stem}.settings.json")
        self.file_keys = file_keys
        self.path_keys = tuple(dict.fromkeys((*path_keys, *file_keys)))
        settings = json.loads(json.dumps(json_safe(settings), default=str))  # as it reads back
        previous = read_json(self.settings_path) if self.settings_path.exists() else None
        self.rows: dict[str, dict] = self._read_done() if previous == settings else {}
        if previous is not None and previous != settings:
            log(f"{self.path}: made with other settings ({self.settings_path}); starting over")
        elif self.rows:
            log(f"{self.path}: resuming, {len(self.rows)} rows already done")
        write_jsonl(self.path, self.rows.values())  # drops a row cut short by a kill
        write_json(self.settings_path, settings)
        self._file: IO[str] | None = open(self.path, "a")

    def _read_done(self) -> dict[str, dict]:
        """Rows of the existing index whose files all exist (a torn last line is dropped)."""
        rows: dict[str, dict] = {}
        if not self.path.exists():
            return rows
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the line a kill cut short; its work is redone
                if isinstance(row, dict) and "id" in row and all(
                        row.get(k) is None or resolve_path(row[k], self.path).exists()
                        for k in self.file_keys):
                    rows[row["id"]] = row
        return rows

    def done(self, uid: str, **expected: Any) -> dict | None:
        """The finished row of ``uid`` (as stored) if its fields match ``expected`` (e.g. its
        file name and source, paths as the caller names them), else None (work to do)."""
        row = self.rows.get(uid)
        expected = self._stored(expected)
        if row is None or any(row.get(k) != v for k, v in expected.items()):
            return None
        return row

    def add(self, row: dict) -> None:
        """Record a finished row (paths as the caller names them): appended and flushed to
        disk before returning."""
        assert self._file is not None, "RowIndex used after finish()"
        row = self._stored(row)
        self._file.write(json_line(row))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows[row["id"]] = row

    def finish(self, ids: Iterable[str]) -> list[dict]:
        """Rewrite the index with the rows of ``ids`` (this run's inputs) in that order."""
        self.close()
        rows = [self.rows[i] for i in ids if i in self.rows]
        write_jsonl(self.path, rows)
        return rows

    def _stored(self, row: dict) -> dict:
        return store_row(row, self.path, self.path_keys)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RowIndex:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
