"""make_manifest keeps good files, reports bad ones; read/write_manifest round trip."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spokenlm.audio.load import load_audio
from spokenlm.audio.manifest import (make_manifest, read_manifest, skip_report_path,
                                     write_manifest)
from spokenlm.common.errors import InputError


def _tone(seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


@pytest.fixture
def messy(tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    sf.write(root / "good.wav", _tone(0.5, 16_000), 16_000)
    tone = _tone(0.4, 44_100)
    sf.write(root / "stereo.flac", np.stack([tone, tone], axis=1), 44_100)
    (root / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(2000))
    (root / "empty.wav").write_bytes(b"")
    sf.write(root / "silent.wav", np.zeros(16_000, np.float32), 16_000)
    sf.write(root / "short.wav", _tone(0.02, 16_000), 16_000)
    (root / "notes.md").write_text("not audio, not listed")
    return root


def test_manifest_keeps_good_and_reports_bad(messy, tmp_path):
    out = make_manifest(root=messy, output=tmp_path / "m.jsonl")
    rows = read_manifest(out)
    assert [r["id"] for r in rows] == ["good", "stereo"]
    stereo = rows[1]
    assert stereo["sample_rate"] == 44_100 and stereo["num_channels"] == 2
    assert stereo["duration"] == pytest.approx(0.4, abs=1e-3)
    assert "speaker" not in stereo  # files directly under root have no speaker folder

    report = skip_report_path(out)
    assert report.name == "m.skipped.jsonl"
    skipped = {r["path"].rsplit("/", 1)[1]: r["reason"]
               for r in map(json.loads, report.read_text().splitlines())}
    assert set(skipped) == {"corrupt.wav", "empty.wav", "silent.wav", "short.wav"}
    assert "empty file" in skipped["empty.wav"]
    assert "silent" in skipped["silent.wav"]
    assert "too short" in skipped["short.wav"]
    assert "not readable" in skipped["corrupt.wav"]


def test_relative_paths_resolve_against_manifest(messy, tmp_path):
    out = make_manifest(root=messy, output=tmp_path / "m.jsonl")
    stored = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    assert stored == ["audio/good.wav", "audio/stereo.flac"]
    rows = read_manifest(out)
    assert rows[0]["path"] == str((messy / "good.wav").resolve())


def test_relative_root_and_output(messy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = make_manifest(root="audio", output="manifests/m.jsonl")
    good = str((messy / "good.wav").resolve())
    assert json.loads(out.read_text().splitlines()[0])["path"] == good  # outside manifests/
    assert read_manifest(out)[0]["path"] == good


def test_librispeech_layout(tmp_path):
    root = tmp_path / "LibriSpeech" / "dev"
    chapter = root / "19" / "198"
    chapter.mkdir(parents=True)
    for i in range(2):
        sf.write(chapter / f"19-198-000{i}.flac", _tone(0.3, 16_000), 16_000)
    (chapter / "19-198.trans.txt").write_text("19-198-0000 HELLO WORLD\n19-198-0001 GOOD BYE\n")
    other = root / "27" / "1"
    other.mkdir(parents=True)
    sf.write(other / "x.wav", _tone(0.3, 16_000), 16_000)
    (other / "x.lab").write_text("a  sibling\ntranscript\n")
    rows = read_manifest(make_manifest(root=root, output=tmp_path / "ls.jsonl"))
    by_id = {r["id"]: r for r in rows}
    assert by_id["19-198-0000"]["text"] == "HELLO WORLD"
    assert by_id["19-198-0001"]["speaker"] == "19"
    assert by_id["x"] == {**by_id["x"], "speaker": "27", "text": "a sibling transcript"}


def test_duplicate_stems_use_relative_path_ids(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        sf.write(tmp_path / d / "utt.wav", _tone(0.3, 16_000), 16_000)
    rows = read_manifest(make_manifest(root=tmp_path, output=tmp_path / "m.jsonl"))
    assert sorted(r["id"] for r in rows) == ["a_utt", "b_utt"]


def test_clashing_ids_are_an_error(tmp_path):
    sf.write(tmp_path / "x.wav", _tone(0.3, 16_000), 16_000)
    sf.write(tmp_path / "x.flac", _tone(0.3, 16_000), 16_000)
    with pytest.raises(InputError, match="rename one"):
        make_manifest(root=tmp_path, output=tmp_path / "m.jsonl")


def test_all_rejected_or_missing_root(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"")
    with pytest.raises(InputError, match="all 1 audio files were rejected"):
        make_manifest(root=tmp_path, output=tmp_path / "m.jsonl")
    assert skip_report_path(tmp_path / "m.jsonl").exists()
    with pytest.raises(InputError, match="not a folder"):
        make_manifest(root=tmp_path / "nope")


def test_read_manifest_errors_name_the_manifest(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "duration": 1.0}\n')
    with pytest.raises(InputError, match=r"bad.jsonl: row 1 lacks \['path'\]"):
        read_manifest(path)
    path.write_text('{"id": "a", "path": "x.wav"}\n{"id": "a", "path": "y.wav"}\n')
    with pytest.raises(InputError, match="bad.jsonl: row 2: duplicate id"):
        read_manifest(path)


def test_write_manifest_requires_keys_and_unique_ids(tmp_path):
    row = {"id": "a", "path": str(tmp_path / "a.wav"), "duration": 1.0, "sample_rate": 16000,
           "num_channels": 1}
    out = write_manifest([row], tmp_path / "sub" / ".." / "m.jsonl")
    assert json.loads(out.read_text())["path"] == "a.wav"
    with pytest.raises(InputError, match="duplicate utterance id"):
        write_manifest([row, row], tmp_path / "m.jsonl")
    with pytest.raises(InputError, match="lacks"):
        write_manifest([{"id": "a", "path": "a.wav"}], tmp_path / "m.jsonl")


def _report(manifest) -> dict[str, str]:
    """Skip report as {file name: reason}; also checks it is strict UTF-8."""
    text = skip_report_path(manifest).read_bytes().decode("utf-8")
    return {os.path.basename(r["path"]): r["reason"] for r in map(json.loads, text.splitlines())}


def test_non_files_named_like_audio_are_reported(tmp_path):
    root = tmp_path / "audio"
    (root / "x.wav").mkdir(parents=True)  # a folder named like audio; its contents still count
    sf.write(root / "x.wav" / "inner.wav", _tone(0.3, 16_000), 16_000)
    sf.write(root / "x.flac", _tone(0.3, 16_000), 16_000)  # no id clash with the folder
    (root / "gone.wav").symlink_to("nowhere.wav")
    os.mkfifo(root / "pipe.wav")
    out = make_manifest(root=root, output=tmp_path / "m.jsonl")
    assert sorted(r["id"] for r in read_manifest(out)) == ["inner", "x"]
    skipped = _report(out)
    assert set(skipped) == {"x.wav", "gone.wav", "pipe.wav"}
    assert "dangling symlink -> nowhere.wav" in skipped["gone.wav"]
    assert "a directory, not a file" in skipped["x.wav"]
    assert "not a regular file" in skipped["pipe.wav"]


def test_hostile_headers_and_long_files_are_reported(tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    sf.write(root / "ok.wav", _tone(0.5, 16_000), 16_000)
    sf.write(root / "long.wav", _tone(3.0, 16_000), 16_000)
    payload = (np.random.default_rng(0).standard_normal(32 * 1024) * 3000).astype("<i2")
    fmt = struct.pack("<HHIIHH", 1, 1, 1, 2, 2, 16)  # PCM, mono, 1 Hz, 16-bit
    data = payload.tobytes()
    (root / "1hz.wav").write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
                                   + b"fmt " + struct.pack("<I", 16) + fmt
                                   + b"data" + struct.pack("<I", len(data)) + data)
    out = make_manifest(root=root, output=tmp_path / "m.jsonl", max_duration=2.0)
    assert [r["id"] for r in read_manifest(out)] == ["ok"]
    skipped = _report(out)
    assert "header claims a sample rate of 1 Hz" in skipped["1hz.wav"]
    assert "header says 3.0 s long, over the 2 s limit" in skipped["long.wav"]


def test_non_utf8_names_are_kept_and_round_trip(tmp_path):
    root = tmp_path / "audio"
    speaker = os.fsencode(root) + b"/spk-\xff"
    os.makedirs(speaker)
    raw = speaker + b"/caf\xe9-\xfe.wav"
    sf.write(raw, _tone(0.4, 16_000), 16_000)
    Path(os.fsdecode(speaker + b"/bad-\xfe.wav")).write_bytes(b"")
    out = make_manifest(root=root, output=tmp_path / "m.jsonl")
    out.read_bytes().decode("utf-8")
    (row,) = read_manifest(out)
    assert os.fsencode(row["path"]) == raw  # the exact bytes of the file name come back
    assert row["id"] == "caf\\xe9-\\xfe" and row["speaker"] == "spk-\\xff"
    row["id"].encode("utf-8")
    assert load_audio(row["path"]).shape == (int(0.4 * 16_000),)
    skipped = _report(out)  # path as stored (round-trips), reason printable
    assert "spk-\\xff/bad-\\xfe.wav: empty file" in skipped[os.fsdecode(b"bad-\xfe.wav")]


def test_segment_columns_are_checked_on_write_and_read(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, _tone(1.0, 16_000), 16_000)
    base = {"path": str(wav), "sample_rate": 16_000, "num_channels": 1}
    good = [{"id": "a_0", **base, "start": 0.0, "duration": 0.5},
            {"id": "a_1", **base, "start": 0.5, "duration": 0.5}]
    rows = read_manifest(write_manifest(good, tmp_path / "m.jsonl"))
    assert [(r["start"], r["duration"]) for r in rows] == [(0.0, 0.5), (0.5, 0.5)]
    with pytest.raises(InputError, match=r"row 0 \(id 'x'\): start='1'; start is in seconds"):
        write_manifest([{"id": "x", **base, "start": "1", "duration": 0.5}], tmp_path / "w.jsonl")
    (tmp_path / "r.jsonl").write_text(json.dumps({"id": "y", **base, "start": 0.1,
                                                  "duration": -2}) + "\n")
    with pytest.raises(InputError, match=r"r.jsonl: row 1 \(id 'y'\): duration=-2"):
        read_manifest(tmp_path / "r.jsonl")
