"""``spokenlm resynth`` is safe by default: every wav stays in --output under a distinct name,
the input is never overwritten, and a killed run keeps (and resumes from) its finished rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl, write_jsonl
from spokenlm.pipeline import resynth as resynth_module
from spokenlm.pipeline.index import read_index
from spokenlm.pipeline.resynth import resynth
from spokenlm.testing.vocoder import save_tiny_vocoder

NASTY_IDS = ["../../escaped", "/abs/escaped", "a/b", "a_b", ".", "..", ".hidden", "x" * 300,
             "nul\0id", "ctl\x01\n", "Case", "case"]


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_unsafe_ids_stay_inside_output_with_distinct_files(
        tmp_path: Path, wavs: list[Path], tokenizer_dir: Path, vocoder_dir: Path) -> None:
    manifest = write_jsonl(tmp_path / "in" / "m.jsonl",
                           [{"id": uid, "path": str(wavs[0])} for uid in NASTY_IDS])
    out = tmp_path / "deep" / "er" / "out"
    before = _files_under(tmp_path)
    resynth(input=manifest, tokenizer=tokenizer_dir, vocoder=vocoder_dir, output=out)
    new = _files_under(tmp_path) - before
    assert all(p.parent == out for p in new), sorted(new)  # nothing escaped, no subfolders
    rows = read_index(out / "resynth.jsonl")
    assert [r["id"] for r in rows] == NASTY_IDS  # the index keeps the original ids
    paths = [Path(r["path"]) for r in rows]
    assert len({str(p).casefold() for p in paths}) == len(rows)
    assert all(p.parent == out and p.exists() and not p.name.startswith(".") for p in paths)
    assert Path(rows[3]["path"]).name == "a_b.wav"  # a safe id keeps its name


def test_same_stem_in_two_subfolders_gives_two_outputs(
        tmp_path: Path, wavs: list[Path], tokenizer_dir: Path, vocoder_dir: Path) -> None:
    src = tmp_path / "src"
    for sub, wav in (("a", wavs[0]), ("b", wavs[1])):
        (src / sub).mkdir(parents=True)
        shutil.copy(wav, src / sub / "x.wav")
    out = resynth(input=src, tokenizer=tokenizer_dir, vocoder=vocoder_dir,
                  output=tmp_path / "out")
    rows = read_index(out / "resynth.jsonl")
    assert [r["id"] for r in rows] == ["a/x", "b/x"]
    assert len({r["path"] for r in rows}) == 2 and all(Path(r["path"]).exists() for r in rows)
    assert rows[0]["duration_in"] != rows[1]["duration_in"]  # two inputs, not one twice


@pytest.mark.parametrize("where", ["input", "parent", "inside"])
def test_output_on_or_around_the_input_is_refused(
        where: str, tmp_path: Path, wavs: list[Path], tokenizer_dir: Path,
        vocoder_dir: Path) -> None:
    folder = wavs[0].parent
    output = {"input": folder, "parent": tmp_path, "inside": folder / "resynth"}[where]
    before = {p: p.read_bytes() for p in wavs}
    with pytest.raises(InputError, match=r"--output .*(is the input|contains the input|"
                                         r"inside the input folder)"):
        resynth(input=folder, tokenizer=tokenizer_dir, vocoder=vocoder_dir, output=output)
    assert {p: p.read_bytes() for p in wavs} == before
    assert not (folder / "resynth.jsonl").exists() and not (folder / "resynth").exists()


KILLER = """
import os, signal, sys
from spokenlm.pipeline import resynth as R

real, calls = R.load_vocoder, [0]

def load_vocoder(path):
    vocoder = real(path)
    synthesize = vocoder.synthesize

    def dying(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(sys.argv[4]):
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: like an OOM kill
        return synthesize(*args, **kwargs)

    vocoder.synthesize = dying
    return vocoder

R.load_vocoder = load_vocoder
R.resynth(input=sys.argv[1], tokenizer=sys.argv[2], vocoder=sys.argv[3], output=sys.argv[5])
"""


def test_a_killed_run_keeps_finished_rows_and_resumes(
        tmp_path: Path, wavs: list[Path], tokenizer_dir: Path, vocoder_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    out, kill_at = tmp_path / "out", 4
    env = {**os.environ, "SPOKENLM_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(wavs[0].parent), str(tokenizer_dir),
                           str(vocoder_dir), str(kill_at), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    finished = read_index(out / "resynth.jsonl")
    assert [r["id"] for r in finished] == [p.stem for p in wavs[:kill_at - 1]]
    assert all(Path(r["path"]).exists() for r in finished)
    stamps = {r["path"]: os.stat(r["path"]).st_mtime_ns for r in finished}

    calls = []
    real = resynth_module.load_vocoder

    def counting(path):
        vocoder = real(path)
        synthesize = vocoder.synthesize
        vocoder.synthesize = lambda *a, **k: calls.append(1) or synthesize(*a, **k)
        return vocoder

    monkeypatch.setattr(resynth_module, "load_vocoder", counting)
    resynth(input=wavs[0].parent, tokenizer=tokenizer_dir, vocoder=vocoder_dir, output=out)
    assert len(calls) == len(wavs) - len(finished)  # finished rows were not redone
    rows = read_index(out / "resynth.jsonl")
    assert [r["id"] for r in rows] == [p.stem for p in wavs]  # complete, in input order
    assert rows[:len(finished)] == finished
    assert {p: os.stat(p).st_mtime_ns for p in stamps} == stamps
    assert json.loads((out / "resynth.settings.json").read_text())["keep_durations"] is True

    calls.clear()  # another vocoder: nothing is reused
    other = save_tiny_vocoder(tmp_path / "other_vocoder", n_units=8, seed=1)
    resynth(input=wavs[0].parent, tokenizer=tokenizer_dir, vocoder=other, output=out)
    assert len(calls) == len(wavs)
    assert [r["id"] for r in read_jsonl(out / "resynth.jsonl")] == [p.stem for p in wavs]
