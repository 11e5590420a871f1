"""Outputs stay in their folder: safe unique file names, outputs that never overwrite inputs,
saved dirs that replace only their own kind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spokenlm.common.errors import InputError
from spokenlm.common.files import atomic_dir
from spokenlm.common.paths import (MAX_NAME, ArtifactKind, check_output, check_replaceable,
                                   unique_names)

NASTY = ["../../x", "/abs/x", "a/b", "a\\b", "", ".", "..", ".hidden", "-rf", "x" * 300,
         "nul\0id", "tab\tand\nnewline", "ünïcode", "con", "a b", "a_b", "A", "a"]
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def test_unique_names_are_single_safe_distinct_components(tmp_path: Path) -> None:
    names = unique_names(NASTY)
    assert list(names) == NASTY
    for uid, name in names.items():
        assert NAME.fullmatch(name), (uid, name)
        assert len(name) <= MAX_NAME
        assert (tmp_path / f"{name}.wav").parent == tmp_path
    assert len({n.casefold() for n in names.values()}) == len(NASTY)  # also case-insensitive
    assert names["a_b"] == "a_b" and names["A"] == "A"  # safe ids are kept (first of a clash)
    assert names["a"] != "a" and names["a/b"].startswith("a_b-")  # readable, then a hash
    assert names["x" * 300].startswith("x" * 50)


def test_unique_names_are_deterministic_and_stable_under_a_longer_list() -> None:
    assert unique_names(NASTY) == unique_names(NASTY)
    short = unique_names(NASTY[:8])
    assert all(unique_names(NASTY)[k] == v for k, v in short.items())
    # an id that looks like another id's hashed name still gets a name of its own
    hashed = unique_names(["a/b"])["a/b"]
    both = unique_names(["a/b", hashed])
    assert len({both["a/b"], both[hashed]}) == 2


def test_check_output_refuses_an_output_that_is_or_contains_an_input(tmp_path: Path) -> None:
    manifest = tmp_path / "data" / "m.jsonl"
    manifest.parent.mkdir()
    manifest.write_text("{}\n")
    with pytest.raises(InputError, match="is the input"):
        check_output(manifest, [manifest])
    with pytest.raises(InputError, match="contains the input"):
        check_output(tmp_path / "data", [manifest])
    link = tmp_path / "link.jsonl"
    link.symlink_to(manifest)
    with pytest.raises(InputError, match="is the input"):  # symlinks resolved
        check_output(link, [manifest])
    with pytest.raises(InputError, match="inside the input folder"):
        check_output(tmp_path / "data" / "out", [tmp_path / "data"], scanned=[tmp_path / "data"])
    check_output(tmp_path / "data" / "units.jsonl", [manifest, None])  # a sibling is fine
    check_output(tmp_path / "data" / "metrics.json", [tmp_path / "data"])  # not scanned


def test_saved_dirs_replace_only_empty_dirs_or_their_own_kind(tmp_path: Path) -> None:
    kind = ArtifactKind("widget", ("widget.json",))
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / "a.wav").write_bytes(b"RIFF")
    with pytest.raises(InputError, match="not a spokenlm widget directory.*--overwrite"):
        with atomic_dir(recordings, kind) as d:
            (d / "widget.json").write_text("{}")
    assert (recordings / "a.wav").exists() and not (recordings / "widget.json").exists()
    with pytest.raises(InputError, match="is not empty"):  # no kind: only empty dirs
        check_replaceable(recordings, None)

    empty = tmp_path / "empty"
    empty.mkdir()
    for _ in range(2):  # an empty dir, then a widget dir: both replaced
        with atomic_dir(empty, kind) as d:
            (d / "widget.json").write_text("{}")
    assert [p.name for p in empty.iterdir()] == ["widget.json"]

    with atomic_dir(recordings, kind, overwrite=True) as d:
        (d / "widget.json").write_text("{}")
    assert [p.name for p in recordings.iterdir()] == ["widget.json"]


def test_artifact_kind_by_config_type(tmp_path: Path) -> None:
    kind = ArtifactKind("CTC model", ("config.json",), config_type="spokenlm-ctc")
    (tmp_path / "config.json").write_text('{"type": "spokenlm-slam"}')
    assert not kind.matches(tmp_path)
    (tmp_path / "config.json").write_text('{"type": "spokenlm-ctc"}')
    assert kind.matches(tmp_path)
    (tmp_path / "config.json").write_text("not json")
    assert not kind.matches(tmp_path)
