"""Index JSONL files (``resynth.jsonl``, ``generations.jsonl``) written one finished row at a
time, so a kill, crash or timeout never loses finished work, and a rerun resumes.

Each row is appended and flushed to disk as soon as its files are written. A rerun with the
same settings (the same tokenizer / vocoder / LM files and options) keeps every row whose
files still exist and skips that work; :meth:`RowIndex.finish` then rewrites the index with
one row per input, in input order. Other settings start the index over.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..common.files import json_line, json_safe, read_json, write_json, write_jsonl
from ..common.progress import log


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
    Use as a context manager; call :meth:`finish` once every input was handled.
    """

    def __init__(self, path: str | os.PathLike, settings: dict[str, Any],
                 file_keys: tuple[str, ...] = ("path",)) -> None:
        self.path = Path(path)
        self.settings_path = self.path.with_name(f"{self.path.stem}.settings.json")
        self.file_keys = file_keys
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
                        row.get(k) is None or Path(row[k]).exists() for k in self.file_keys):
                    rows[row["id"]] = row
        return rows

    def done(self, uid: str, **expected: Any) -> dict | None:
        """The finished row of ``uid`` if its fields match ``expected`` (e.g. its file name
        and source), else None (the work is to be done)."""
        row = self.rows.get(uid)
        if row is None or any(row.get(k) != v for k, v in expected.items()):
            return None
        return row

    def add(self, row: dict) -> None:
        """Record a finished row: appended and flushed to disk before returning."""
        assert self._file is not None, "RowIndex used after finish()"
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

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RowIndex:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
