"""Kaldi data dirs: segments become rows with start/duration, text and speakers attach,
relative wav.scp paths resolve from the recipe dir, commands and archives are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spokenlm.audio import load as audio_load
from spokenlm.audio.manifest import read_manifest, skip_report_path
from spokenlm.cli.main import main
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl
from spokenlm.data.corpora.kaldi import default_root, from_kaldi
from spokenlm.testing.audio import random_speech_like_wav

SR = 16_000


def _wav(path: Path, seconds: float, channels: int = 1, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = random_speech_like_wav(seconds, seed=seed)
    sf.write(path, np.stack([wav] * channels, axis=1) if channels > 1 else wav, SR)
    return path


def _write(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def recipe(tmp_path):
    """A recipe dir ``s5`` with ``wav/`` and ``data/train`` (relative and absolute paths)."""
    s5 = tmp_path / "s5"
    _wav(s5 / "wav" / "rec1.wav", 3.0)
    other = _wav(tmp_path / "elsewhere" / "rec2.wav", 2.0, seed=1)
    data = _write(
        s5 / "data" / "train",
        **{"wav.scp": f"rec1 wav/rec1.wav\nrec2\t{other}\n",
           "segments": "u1 rec1 0.00 1.20\nu2 rec1 1.50 3.30\nu3 rec2 0.50 -1\n"
                       "u4 rec1 2.00 4.00\nu5 nosuch 0 1\nu6 rec1 zero 1\n",
           "text": "u1 HELLO WORLD\nu2 SECOND  PART\nu3\n",
           "utt2spk": "u1 spkA\nu2 spkA\nu3 spkB\nu4 spkA\n"})
    return data


def test_segments_text_and_speakers(recipe, tmp_path):
    out = from_kaldi(data_dir=recipe, output=tmp_path / "m.jsonl")
    rows = {r["id"]: r for r in read_manifest(out)}
    assert set(rows) == {"u1", "u2", "u3"}
    u1, u2, u3 = rows["u1"], rows["u2"], rows["u3"]
    assert (u1["start"], u1["duration"], u1["text"], u1["speaker"]) == (0.0, 1.2,
                                                                        "HELLO WORLD", "spkA")
    assert Path(u1["path"]) == (recipe.parent.parent / "wav" / "rec1.wav").resolve()
    assert u1["recording_id"] == "rec1"
    assert (u2["start"], u2["duration"]) == (1.5, pytest.approx(1.5))  # overshoot cut at 3 s
    assert u2["text"] == "SECOND  PART"
    assert (u3["start"], u3["duration"], u3["speaker"]) == (0.5, 1.5, "spkB")  # -1: to the end
    assert "text" not in u3
    reasons = {s["id"]: s["reason"] for s in read_jsonl(skip_report_path(out))}
    assert set(reasons) == {"u4", "u5", "u6"}
    load_row = getattr(audio_load, "load_row", None)
    if load_row is not None:  # the segment reader: each row loads its own samples
        full, _ = sf.read(recipe.parent.parent / "wav" / "rec1.wav", dtype="float32")
        np.testing.assert_allclose(load_row(u2), full[24_000:48_000], atol=1e-6)
    assert "runs past the file's end" in reasons["u4"]
    assert "not in" in reasons["u5"] and "expected" in reasons["u6"]


def test_no_segments_spk2utt_and_root(tmp_path):
    _wav(tmp_path / "corpus" / "a.wav", 1.0)
    _wav(tmp_path / "corpus" / "b.wav", 1.5, seed=1)
    _wav(tmp_path / "corpus" / "st.wav", 1.0, channels=2)
    data = _write(tmp_path / "kaldi" / "dev",
                  **{"wav.scp": "a corpus/a.wav\nb corpus/b.wav\nst corpus/st.wav\n",
                     "spk2utt": "s1 a b\n", "text": "a ONE\nb TWO\n"})
    assert default_root(data) == tmp_path  # no folder named data: the grandparent
    rows = read_manifest(from_kaldi(data_dir=data, output=tmp_path / "m.jsonl"))
    assert [(r["id"], r["duration"], r["speaker"], r["text"]) for r in rows] == [
        ("a", 1.0, "s1", "ONE"), ("b", 1.5, "s1", "TWO")]
    assert all("start" not in r and "recording_id" not in r for r in rows)
    [stereo] = read_jsonl(skip_report_path(tmp_path / "m.jsonl"))
    assert stereo["id"] == "st" and "2 channels" in stereo["reason"]
    with pytest.raises(InputError, match="no usable rows.*file not found"):
        from_kaldi(data_dir=data, root=tmp_path / "kaldi", output=tmp_path / "m2.jsonl")


@pytest.mark.parametrize("entry, what", [
    ("flac -c -d -s /corpus/a.flac |", "a piped command"),
    ("/exp/wav.ark:1234", "an offset into a Kaldi archive"),
    ("-", "standard input")])
def test_commands_and_archives_are_refused(tmp_path, entry, what):
    _wav(tmp_path / "a.wav", 1.0)
    data = _write(tmp_path / "data" / "x",
                  **{"wav.scp": f"ok {tmp_path / 'a.wav'}\nbad {entry}\n"})
    with pytest.raises(InputError) as err:
        from_kaldi(data_dir=data, output=tmp_path / "m.jsonl")
    msg = str(err.value)
    assert "\n" not in msg and "wav.scp:2" in msg and what in msg and "wav-copy" in msg
    assert "1 of 2 entries" in msg
    assert not (tmp_path / "m.jsonl").exists()


def test_bad_tables_are_refused(tmp_path):
    _wav(tmp_path / "a.wav", 1.0)
    data = _write(tmp_path / "data" / "x", **{"wav.scp": f"a {tmp_path / 'a.wav'}\n"
                                                          f"a {tmp_path / 'a.wav'}\n"})
    with pytest.raises(InputError, match="wav.scp: line 2: duplicate id 'a'"):
        from_kaldi(data_dir=data, output=tmp_path / "m.jsonl")
    (data / "wav.scp").write_text(f"a {tmp_path / 'a.wav'}\n")
    (data / "text").write_bytes(b"a caf\xe9\n")
    with pytest.raises(InputError, match="text:1: not UTF-8.*iconv"):
        from_kaldi(data_dir=data, output=tmp_path / "m.jsonl")
    with pytest.raises(InputError, match="no wav.scp"):
        from_kaldi(data_dir=tmp_path, output=tmp_path / "m.jsonl")


def test_cli(recipe, tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    assert main(["data", "from-kaldi", str(recipe), "--output", str(out)]) == 0
    assert len(read_manifest(out)) == 3
    (recipe / "wav.scp").write_text("rec1 sox x.wav -t wav - |\n")
    assert main(["data", "from-kaldi", str(recipe), "--output", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "piped command" in err[0]
