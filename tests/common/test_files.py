from __future__ import annotations

from pathlib import Path

import pytest

from spokenlm.common.errors import InputError
from spokenlm.common.files import atomic_path, read_json, read_jsonl, write_json, write_jsonl


def test_jsonl_round_trip(tmp_path: Path) -> None:
    rows = [{"id": "a", "units": [1, 2]}, {"id": "b", "path": Path("/x")}]
    write_jsonl(tmp_path / "r.jsonl", rows)
    assert read_jsonl(tmp_path / "r.jsonl") == [{"id": "a", "units": [1, 2]}, {"id": "b", "path": "/x"}]


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_bad_jsonl_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{oops\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2"):
        read_jsonl(tmp_path / "bad.jsonl")


def test_atomic_dir_replaces_whole_dir_or_keeps_the_old_one(tmp_path: Path) -> None:
    from spokenlm.common.files import atomic_dir
    from spokenlm.common.paths import ArtifactKind

    target, kind = tmp_path / "model", ArtifactKind("test model", ())  # any dir is one
    with atomic_dir(target, kind) as d:
        (d / "a.json").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target, kind) as d:
            (d / "b.json").write_text("partial")
            raise RuntimeError("killed mid-save")
    assert sorted(p.name for p in target.iterdir()) == ["a.json"]
    with atomic_dir(target, kind) as d:
        (d / "c.json").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["c.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
