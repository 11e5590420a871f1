"""RowIndex: rows on disk as soon as they are added, strict JSON, torn lines dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spokenlm.pipeline.index import RowIndex, read_index


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


def test_rows_store_paths_relative_to_the_index_and_survive_a_move(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "corpus").mkdir(parents=True)
    source = run / "corpus" / "a.wav"
    source.write_bytes(b"x")
    out = run / "resynth"
    out.mkdir()
    (out / "a.wav").write_bytes(b"y")
    shared = tmp_path / "shared.wav"  # beside the run: stored absolute
    with RowIndex(out / "resynth.jsonl", {}) as index:
        index.add({"id": "a", "path": str(out / "a.wav"), "source": str(source)})
        index.add({"id": "b", "path": None, "source": str(shared)})
        index.finish(["a", "b"])
    on_disk = [json.loads(line) for line in (out / "resynth.jsonl").read_text().splitlines()]
    assert on_disk[0] == {"id": "a", "path": "a.wav", "source": "../corpus/a.wav"}
    assert on_disk[1]["source"] == str(shared)
    moved = tmp_path / "else" / "run"
    moved.parent.mkdir()
    run.rename(moved)
    rows = read_index(moved / "resynth" / "resynth.jsonl")
    assert rows[0]["path"] == str(moved / "resynth" / "a.wav")
    assert rows[0]["source"] == str(moved / "corpus" / "a.wav")
    again = RowIndex(moved / "resynth" / "resynth.jsonl", {})  # its files exist: kept
    assert again.done("a", path=str(moved / "resynth" / "a.wav"),
                      source=str(moved / "corpus" / "a.wav")) is not None
    assert again.done("a", source=str(source)) is None  # another source: redone
