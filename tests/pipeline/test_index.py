"""RowIndex: rows on disk as soon as they are added, strict JSON, torn lines dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spokenlm.pipeline.index import RowIndex


def _strict(line: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=refuse)


def test_rows_are_strict_json_and_resume_drops_a_torn_line(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"x")
    index = tmp_path / "resynth.jsonl"
    with RowIndex(index, {"vocoder": "v", "gain": float("nan")}) as rows:
        rows.add({"id": "a", "path": str(wav), "score": float("nan")})
        lines = index.read_text().splitlines()  # on disk before the run ends
    assert [_strict(line)["score"] for line in lines] == [None]
    with open(index, "a") as f:
        f.write('{"id": "b", "path": ')  # what a kill mid-write leaves
    again = RowIndex(index, {"vocoder": "v", "gain": float("nan")})
    assert set(again.rows) == {"a"} and again.done("a") is not None
    assert again.finish(["a"]) == [_strict(index.read_text())]
    assert RowIndex(index, {"vocoder": "w"}).rows == {}  # other settings: start over


@pytest.mark.parametrize("missing", [True, False])
def test_a_row_whose_file_is_gone_is_redone(tmp_path: Path, missing: bool) -> None:
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"x")
    index = tmp_path / "i.jsonl"
    with RowIndex(index, {}) as rows:
        rows.add({"id": "a", "path": str(wav)})
    if missing:
        wav.unlink()
    assert (RowIndex(index, {}).done("a") is None) is missing
