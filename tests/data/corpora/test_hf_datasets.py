"""Hugging Face datasets saved to disk: audio bytes are written out (WAV/FLAC as they are,
other formats as FLAC), audio paths are referenced, splits become manifests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pytest
import soundfile as sf
from datasets import Audio, Dataset, DatasetDict

from spokenlm.audio.load import load_audio
from spokenlm.audio.manifest import read_manifest, skip_report_path
from spokenlm.cli.main import main
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl
from spokenlm.data.corpora.hf_datasets import from_hf
from spokenlm.testing.audio import random_speech_like_wav

SR = 16_000


def _encoded(seconds: float, fmt: str, seed: int = 0, **kw) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, random_speech_like_wav(seconds, seed=seed), SR, format=fmt, **kw)
    return buf.getvalue()


def _dataset(audio: list, **columns: list) -> Dataset:
    """A Dataset with an Audio column built from ``{"bytes", "path"}`` dicts (the arrow
    layout ``datasets`` stores; no torchcodec needed to build it)."""
    return Dataset.from_dict({"audio": audio, **columns}).cast_column("audio", Audio())


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


@pytest.fixture
def saved(tmp_path):
    wav = _encoded(1.0, "WAV", subtype="PCM_16")
    train = _dataset([{"bytes": _encoded(1.5, "FLAC", seed=1), "path": "a.flac"},
                      {"bytes": wav, "path": "b.wav"},
                      {"bytes": _encoded(0.8, "OGG", seed=2, subtype="VORBIS"), "path": "c.ogg"},
                      {"bytes": b"not audio at all" * 10, "path": "d.wav"}],
                     id=["u1", "u2", "u2", "u4"], text=["hello", " two ", None, "x"],
                     speaker_id=[7, 7, 8, 9])
    test = _dataset([{"bytes": _encoded(0.5, "FLAC", seed=3), "path": None}],
                    id=["t1"], text=["test row"], speaker_id=[1])
    folder = tmp_path / "hf"
    DatasetDict({"train": train, "test": test}).save_to_disk(folder)
    return folder, wav


def test_splits_bytes_written_out(saved, tmp_path):
    folder, wav = saved
    before = _snapshot(folder)
    out = from_hf(dataset=folder, output=tmp_path / "out")
    assert _snapshot(folder) == before  # the input is never written to
    train = read_manifest(out / "train.jsonl")
    assert [r["id"] for r in train] == ["u1", "u2-1", "u2-2"]  # the repeated id gets its row
    u1, u2, u3 = train
    assert (u1["duration"], u1["text"], u1["speaker"], u1["split"]) == (1.5, "hello", "7",
                                                                       "train")
    assert u2["text"] == "two" and "text" not in u3
    assert Path(u1["path"]).suffix == ".flac" and Path(u1["path"]).parent == out / "audio" / "train"
    assert Path(u2["path"]).read_bytes() == wav  # WAV bytes are kept as they are
    assert Path(u3["path"]).suffix == ".flac" and sf.info(u3["path"]).format == "FLAC"
    assert u3["duration"] == pytest.approx(0.8, abs=0.01)
    assert load_audio(u3["path"]).shape[0] == pytest.approx(0.8 * SR, abs=200)
    [bad] = read_jsonl(skip_report_path(out / "train.jsonl"))
    assert bad["id"] == "u4" and "not readable as audio" in bad["reason"]
    [t1] = read_manifest(out / "test.jsonl")
    assert (t1["id"], t1["split"], t1["duration"]) == ("t1", "test", 0.5)
    summary = json.loads((out / "import.json").read_text())
    assert summary["splits"]["train"] == {"manifest": "train.jsonl", "rows": 3, "skipped": 1,
                                          "columns": {"audio": "audio", "text": "text",
                                                      "speaker": "speaker_id", "id": "id"}}
    # one split; a rerun replaces its own import
    again = from_hf(dataset=folder, output=out, split="test")
    assert sorted(p.name for p in again.glob("*.jsonl")) == ["test.jsonl", "test.skipped.jsonl"]


def _set_audio(folder: Path, audio: list[dict]) -> None:
    """Rewrite the audio column of a saved Dataset's arrow file, e.g. with paths and no
    bytes, as datasets saved local audio files before save_to_disk embedded them."""
    arrow = next(folder.glob("data-*.arrow"))
    table = pa.ipc.open_stream(pa.BufferReader(arrow.read_bytes())).read_all()
    index = table.schema.get_field_index("audio")
    field = table.schema.field(index)
    table = table.set_column(index, field, pa.array(audio, type=field.type))
    with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def test_paths_are_referenced_not_copied(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = []
    for i in range(2):
        files.append(corpus / f"f{i}.wav")
        sf.write(files[-1], random_speech_like_wav(0.6 + i * 0.2, seed=i), SR)
    files.append(corpus / "missing.wav")
    folder = tmp_path / "hf"
    _dataset([{"bytes": b"placeholder", "path": str(p)} for p in files],
             sentence=["a", "b", "c"]).save_to_disk(folder)
    _set_audio(folder, [{"bytes": None, "path": str(p)} for p in files])
    # a single Dataset: --split names its manifest and labels its rows
    out = from_hf(dataset=folder, output=tmp_path / "out", split="dev", text_column="sentence")
    rows = read_manifest(out / "dev.jsonl")
    assert [(r["id"], Path(r["path"]), r["text"]) for r in rows] == [
        ("dev-0", files[0].resolve(), "a"), ("dev-1", files[1].resolve(), "b")]
    assert not (out / "audio").exists()
    [missing] = read_jsonl(out / "dev.skipped.jsonl")
    assert "file not found" in missing["reason"]

    # bytes identical to the file at their absolute path: referenced too
    same = tmp_path / "same"
    _dataset([{"bytes": files[0].read_bytes(), "path": str(files[0])}]).save_to_disk(same)
    _set_audio(same, [{"bytes": files[0].read_bytes(), "path": str(files[0])}])
    [row] = read_manifest(from_hf(dataset=same, output=tmp_path / "out2") / "manifest.jsonl")
    assert Path(row["path"]) == files[0].resolve() and row["id"] == "row-0"


def test_refusals(saved, tmp_path):
    folder, _ = saved
    with pytest.raises(InputError, match="no split 'dev'.*\\['test', 'train'\\]"):
        from_hf(dataset=folder, output=tmp_path / "o", split="dev")
    with pytest.raises(InputError, match="no column 'transcript'.*--text-column"):
        from_hf(dataset=folder, output=tmp_path / "o", text_column="transcript")
    with pytest.raises(InputError, match="column 'text' is .*not audio"):
        from_hf(dataset=folder, output=tmp_path / "o", audio_column="text")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.wav").write_bytes(b"")
    with pytest.raises(InputError, match="not a dataset saved with save_to_disk"):
        from_hf(dataset=tmp_path / "plain", output=tmp_path / "o2")
    with pytest.raises(InputError, match="lies inside the input folder"):
        from_hf(dataset=folder, output=folder / "out")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a spokenlm Hugging Face import"):
        from_hf(dataset=folder, output=tmp_path / "keep")
    assert not (tmp_path / "o").exists()


def test_cli(saved, tmp_path):
    folder, _ = saved
    out = tmp_path / "cli"
    assert main(["data", "from-hf", str(folder), "--output", str(out), "--split", "test"]) == 0
    assert [r["id"] for r in read_manifest(out / "test.jsonl")] == ["t1"]
    assert main(["data", "from-hf", str(folder), "--output", str(out), "--split", "x"]) == 1
