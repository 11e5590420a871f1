"""Outputs stay in their folder: safe unique file names, outputs that never overwrite inputs,
saved dirs that replace only their own kind; paths in artifacts stored relative to their
file within the run, absolute outside it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from spokenlm.common.errors import InputError
from spokenlm.common.files import atomic_dir
from spokenlm.common.paths import (MAX_NAME, ArtifactKind, check_output, check_replaceable,
                                   resolve_path, resolve_row, run_root, store_path, store_row,
                                   stored_fields, unique_names)

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


# ---- paths stored in artifacts: relative to the file within its run, else absolute --------

def test_store_path_is_relative_inside_the_run_and_absolute_outside(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "runs" / "r1"
    index = run / "resynth" / "resynth.jsonl"
    assert store_path(run / "resynth" / "a.wav", index) == "a.wav"
    assert store_path(run / "corpus" / "wavs" / "b.wav", index) == "../corpus/wavs/b.wav"
    assert store_path(run, index) == ".."
    shared = tmp_path / "runs" / "shared_tokenizer"  # a sibling of the run: stays absolute
    assert store_path(shared, index) == str(shared)
    # a saved dir in <run>/<training run>/final: the run is two folders up
    sidecar = run / "lm" / "final" / "spokenlm_lm.json"
    assert store_path(run / "tokenizer", sidecar, levels=2) == "../../tokenizer"
    assert store_path(run / "tokenizer", sidecar) == str(run / "tokenizer")  # levels=1: lm/
    assert store_path(run / "corpus" / "x.wav", run / "corpus" / "m.jsonl", levels=0) == "x.wav"
    assert store_path(run / "y.wav", run / "corpus" / "m.jsonl", levels=0) == str(run / "y.wav")
    assert store_path(None, index) is None
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path / "runs")  # a relative path means what it means to the writer
    assert store_path("r1/corpus/b.wav", "r1/resynth/resynth.jsonl") == "../corpus/b.wav"


def test_the_run_is_never_the_filesystem_root_or_the_home_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    holder = tmp_path / "out" / "metrics.json"  # --output in the home folder
    assert run_root(holder) == tmp_path / "out"
    assert store_path(tmp_path / "data" / "a.wav", holder) == str(tmp_path / "data" / "a.wav")
    assert store_path(tmp_path / "out" / "a.wav", holder) == "a.wav"
    assert run_root("/metrics.json") == Path("/")


def test_store_path_resolves_linked_folders_but_keeps_a_linked_file(tmp_path: Path) -> None:
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    (elsewhere / "wavs").mkdir(parents=True)
    (run / "resynth").mkdir(parents=True)
    (elsewhere / "wavs" / "a.wav").write_bytes(b"RIFF")
    (run / "corpus").symlink_to(elsewhere / "wavs")  # audio linked in from outside the run
    index = run / "resynth" / "resynth.jsonl"
    assert store_path(run / "corpus" / "a.wav", index) == str(elsewhere / "wavs" / "a.wav")
    (run / "link.wav").symlink_to(elsewhere / "wavs" / "a.wav")
    assert store_path(run / "link.wav", index) == "../link.wav"
    # the holder reached through a linked folder: relative to where it really is
    (tmp_path / "alias").symlink_to(run)
    assert store_path(run / "link.wav", tmp_path / "alias" / "resynth" / "x.jsonl") == \
        "../link.wav"


def test_resolve_path_reads_against_the_file_wherever_the_run_moved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    (run / "corpus").mkdir(parents=True)
    (run / "corpus" / "a.wav").write_bytes(b"RIFF")
    index = run / "resynth" / "resynth.jsonl"
    stored = store_path(run / "corpus" / "a.wav", index)
    moved = tmp_path / "else" / "where"
    moved.parent.mkdir()
    run.rename(moved)
    monkeypatch.chdir(tmp_path / "else")  # any working directory
    assert resolve_path(stored, moved / "resynth" / "resynth.jsonl") == moved / "corpus" / "a.wav"
    assert resolve_path("../corpus/./a.wav", "where/resynth/r.jsonl") == \
        moved / "corpus" / "a.wav"  # a holder named from the working directory; normalised
    assert resolve_path(str(tmp_path / "abs.wav"), index) == tmp_path / "abs.wav"
    assert resolve_path(None, index) is None


def test_resolve_path_still_reads_paths_relative_to_the_working_directory_of_old_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before paths were stored relative to their file, ``resynth --output run/resynth``
    from ``tmp_path`` wrote ``run/resynth/a.wav``: that still reads from ``tmp_path``."""
    (tmp_path / "run" / "resynth").mkdir(parents=True)
    (tmp_path / "run" / "resynth" / "a.wav").write_bytes(b"RIFF")
    index = tmp_path / "run" / "resynth" / "resynth.jsonl"
    monkeypatch.chdir(tmp_path)
    assert resolve_path("run/resynth/a.wav", index) == tmp_path / "run" / "resynth" / "a.wav"
    (tmp_path / "run" / "resynth" / "run" / "resynth").mkdir(parents=True)
    local = tmp_path / "run" / "resynth" / "run" / "resynth" / "a.wav"
    local.write_bytes(b"RIFF")
    assert resolve_path("run/resynth/a.wav", index) == local  # the holder-relative one wins
    monkeypatch.chdir(tmp_path / "run")  # elsewhere: the holder-relative path, found or not
    assert resolve_path("gone.wav", index) == tmp_path / "run" / "resynth" / "gone.wav"


def test_rows_and_option_records_store_only_their_paths(tmp_path: Path) -> None:
    @dataclass
    class Opts:
        input: Path
        tokenizer: Path | None
        files: list[Path]
        name: str = "corpus/a.wav"  # a string option is not a path

    holder = tmp_path / "run" / "eval" / "m.json"
    opts = Opts(tmp_path / "run" / "resynth", None, [tmp_path / "run" / "x", tmp_path / "y"])
    assert stored_fields(opts, holder) == {"input": "../resynth", "tokenizer": None,
                                           "files": ["../x", str(tmp_path / "y")],
                                           "name": "corpus/a.wav"}
    assert "tokenizer" not in stored_fields(opts, holder, drop_none=True)
    row = {"id": "a", "path": str(tmp_path / "run" / "eval" / "a.wav"), "text": "x/y"}
    stored = store_row(row, holder, ("path", "source"))
    assert stored == {"id": "a", "path": "a.wav", "text": "x/y"}
    assert resolve_row(stored, holder, ("path",)) == row
