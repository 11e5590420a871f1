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


def _strict_loads(text: str):
    """json.loads that fails on NaN / Infinity / -Infinity."""
    import json

    def reject(constant: str):
        raise AssertionError(f"{constant} in written JSON")

    return json.loads(text, parse_constant=reject)


def test_no_nan_or_infinity_is_written(tmp_path: Path) -> None:
    import numpy as np
    import torch

    metrics = {"wer": float("nan"), "ppl": float("inf"), "neg": -np.inf,
               "f32": np.float32("nan"), "ok": np.float32(0.5), "n": np.int64(3),
               "given": float("nan"), "given_reason": "no utterance could be transcribed",
               "nested": {"per_item": [1.0, float("nan"), {"x": np.float64("-inf")}],
                          "array": np.array([np.nan, 2.0]), "tensor": torch.tensor([np.inf])}}
    write_json(tmp_path / "m.json", metrics)
    back = _strict_loads((tmp_path / "m.json").read_text())
    assert back["wer"] is None and back["ppl"] is None and back["neg"] is None
    assert back["f32"] is None and back["ok"] == 0.5 and back["n"] == 3
    assert back["wer_reason"] == "not a finite number (nan)"
    assert back["ppl_reason"] == "not a finite number (inf)"
    assert back["given_reason"] == "no utterance could be transcribed"  # kept, not replaced
    assert back["nested"] == {"per_item": [1.0, None, {"x": None, "x_reason":
                                                       "not a finite number (-inf)"}],
                              "array": [None, 2.0], "tensor": [None]}
    write_jsonl(tmp_path / "m.jsonl", [metrics, {"loss": np.float32("inf")}])
    rows = [_strict_loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert rows[0] == back and rows[1]["loss"] is None


def test_json_line_for_appended_logs() -> None:
    from spokenlm.common.files import json_line

    line = json_line({"step": 1, "loss": float("nan")})
    assert line.endswith("\n") and _strict_loads(line)["loss"] is None


def test_binary_jsonl_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bin.jsonl").write_bytes(b'{"a": 1}\n\x80\xff\x00garbage\n')
    with pytest.raises(InputError, match=r"bin.jsonl:2: not UTF-8 text"):
        read_jsonl(tmp_path / "bin.jsonl")
    (tmp_path / "bin.json").write_bytes(b"\x80\xff")
    with pytest.raises(InputError, match=r"bin.json: not UTF-8 text"):
        read_json(tmp_path / "bin.json")


def test_a_byte_order_mark_is_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "bom.jsonl").write_bytes(b'\xef\xbb\xbf{"a": 1}\n')
    assert read_jsonl(tmp_path / "bom.jsonl") == [{"a": 1}]
