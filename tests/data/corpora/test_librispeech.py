"""LibriSpeech import (``data librispeech``) and ``data manifest`` on a LibriSpeech root."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from spokenlm.audio.manifest import make_manifest, read_manifest, skip_report_path
from spokenlm.cli.main import main
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl
from spokenlm.data.corpora.librispeech import librispeech, multi_split_root
from spokenlm.testing.audio import random_speech_like_wav

#: split -> speaker -> chapter -> utterance numbers (a tiny LibriSpeech)
LAYOUT = {"test-clean": {"1089": {"134686": [0, 1]}},
          "dev-clean": {"84": {"121123": [0, 1]}, "174": {"50561": [3]}}}


def _text(uid: str) -> str:
    return f"WORDS OF {uid.replace('-', ' ')}"


@pytest.fixture
def libri(tmp_path: Path) -> Path:
    """``tmp/data/LibriSpeech/<split>/<spk>/<chapter>/`` with flacs and ``.trans.txt``."""
    base = tmp_path / "data" / "LibriSpeech"
    seed = 0
    for split, speakers in LAYOUT.items():
        for spk, chapters in speakers.items():
            for chapter, utts in chapters.items():
                folder = base / split / spk / chapter
                folder.mkdir(parents=True)
                lines = []
                for u in utts:
                    uid = f"{spk}-{chapter}-{u:04d}"
                    seed += 1
                    sf.write(folder / f"{uid}.flac", random_speech_like_wav(0.3, seed=seed),
                             16_000, subtype="PCM_16")
                    lines.append(f"{uid} {_text(uid)}")
                (folder / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    (base / "SPEAKERS.TXT").write_text(";ID |SEX| SUBSET |MINUTES| NAME\n84 | F | dev-clean |"
                                       " 8.02 | Christie Nowak\n")
    return tmp_path / "data"


def _expected(splits: list[str]) -> list[tuple[str, str, str, str, str]]:
    return [(f"{spk}-{ch}-{u:04d}", spk, ch, _text(f"{spk}-{ch}-{u:04d}"), split)
            for split in splits for spk, chapters in sorted(LAYOUT[split].items())
            for ch, utts in chapters.items() for u in utts]


def _fields(rows: list[dict]) -> list[tuple]:
    return [(r["id"], r["speaker"], r["chapter"], r["text"], r["split"]) for r in rows]


def test_two_splits_give_speakers_chapters_texts_and_splits(libri: Path, tmp_path: Path) -> None:
    out = librispeech(root=libri, output=tmp_path / "m.jsonl")
    rows = read_manifest(out)
    assert _fields(rows) == _expected(["dev-clean", "test-clean"])  # canonical split order
    for r in rows:
        assert r["sample_rate"] == 16_000 and r["num_channels"] == 1
        assert r["duration"] == pytest.approx(0.3, abs=1e-3)
        assert Path(r["path"]).is_file() and "start" not in r
    assert read_jsonl(skip_report_path(out)) == []


@pytest.mark.parametrize("where, splits", [("LibriSpeech", ["dev-clean", "test-clean"]),
                                           ("LibriSpeech/test-clean", ["test-clean"])])
def test_pointed_at_librispeech_or_one_split(libri: Path, tmp_path: Path, where: str,
                                             splits: list[str]) -> None:
    rows = read_manifest(librispeech(root=libri / where, output=tmp_path / "m.jsonl"))
    assert _fields(rows) == _expected(splits)


def test_splits_option_selects_and_rejects(libri: Path, tmp_path: Path) -> None:
    rows = read_manifest(librispeech(root=libri, output=tmp_path / "m.jsonl",
                                     splits=["test-clean"]))
    assert {r["split"] for r in rows} == {"test-clean"}
    with pytest.raises(InputError, match=r"no split \['train-clean-100'\].*dev-clean"):
        librispeech(root=libri, output=tmp_path / "m2.jsonl", splits=["train-clean-100"])
    with pytest.raises(InputError, match="no LibriSpeech split folders"):
        librispeech(root=libri / "LibriSpeech" / "dev-clean" / "84", output=tmp_path / "x.jsonl")


def test_bad_files_and_lines_are_reported(libri: Path, tmp_path: Path) -> None:
    chapter = libri / "LibriSpeech" / "dev-clean" / "84" / "121123"
    (chapter / "84-121123-0001.flac").write_bytes(b"fLaC but not really" * 20)
    with open(chapter / "84-121123.trans.txt", "a") as f:
        f.write("84-121123-0009 THIS ONE HAS NO AUDIO\n84-121123-0010\n")
    sf.write(chapter / "84-121123-0007.flac", random_speech_like_wav(0.3), 16_000)  # no text
    out = librispeech(root=libri, output=tmp_path / "m.jsonl")
    rows = {r["id"]: r for r in read_manifest(out)}
    assert "84-121123-0001" not in rows and "text" not in rows["84-121123-0007"]
    assert rows["84-121123-0007"]["speaker"] == "84"
    reasons = {Path(s["path"]).name: s["reason"] for s in read_jsonl(skip_report_path(out))}
    assert "not readable as audio" in reasons["84-121123-0001.flac"]
    assert "no audio file" in reasons["84-121123-0009.flac"]
    assert "no text after id" in reasons["84-121123.trans.txt:4"]


def test_data_manifest_on_a_librispeech_root(libri: Path, tmp_path: Path, capsys) -> None:
    """The reported bug: every row got its split name as speaker, silently."""
    assert multi_split_root(libri) == (libri / "LibriSpeech", ["dev-clean", "test-clean"])
    assert multi_split_root(libri / "LibriSpeech" / "dev-clean") is None
    rows = read_manifest(make_manifest(root=libri, output=tmp_path / "m.jsonl"))
    assert sorted(_fields(rows)) == sorted(_expected(["dev-clean", "test-clean"]))
    assert "a LibriSpeech root with splits" in capsys.readouterr().out
    # one split folder keeps the classic layout: speaker = first folder, no split column
    rows = read_manifest(make_manifest(root=libri / "LibriSpeech" / "dev-clean",
                                       output=tmp_path / "one.jsonl"))
    assert {r["speaker"] for r in rows} == {"84", "174"} and all("split" not in r for r in rows)


def test_split_folders_with_other_names_are_found_by_their_transcripts(libri: Path,
                                                                       tmp_path: Path) -> None:
    base = libri / "LibriSpeech"
    (base / "dev-clean").rename(base / "my-dev")
    rows = read_manifest(make_manifest(root=base, output=tmp_path / "m.jsonl"))
    assert {(r["speaker"], r["split"]) for r in rows} == {
        ("84", "my-dev"), ("174", "my-dev"), ("1089", "test-clean")}


def test_cli(libri: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.jsonl"
    assert main(["data", "librispeech", str(libri), "--output", str(out),
                 "--splits", "dev-clean", "--validate"]) == 0
    assert _fields(read_manifest(out)) == _expected(["dev-clean"])
