"""lhotse import and export: supervisions become segment rows, cuts become rows, unreadable
sources are skipped with their reason, and an export reads back with lhotse and round-trips."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import lhotse
import numpy as np
import pytest
import soundfile as sf
from lhotse import (AudioSource, CutSet, Recording, RecordingSet, SupervisionSegment,
                    SupervisionSet)

from spokenlm.audio.manifest import read_manifest, skip_report_path, write_manifest
from spokenlm.cli.main import main
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl
from spokenlm.data.corpora.lhotse import from_lhotse, to_lhotse
from spokenlm.testing.audio import random_speech_like_wav

SR = 16_000


def _wav(path: Path, seconds: float, channels: int = 1, seed: int = 0) -> Path:
    wav = random_speech_like_wav(seconds, seed=seed)
    sf.write(path, np.stack([wav] * channels, axis=1) if channels > 1 else wav, SR)
    return path


@pytest.fixture
def corpus(tmp_path):
    """Two recordings (3 s with two supervisions, 1 s with one) as lhotse JSONL.gz."""
    audio = tmp_path / "audio"
    audio.mkdir()
    long_ = Recording.from_file(_wav(audio / "long.wav", 3.0), recording_id="rec-long")
    short = Recording.from_file(_wav(audio / "short.wav", 1.0, seed=1), recording_id="rec-short")
    sups = [SupervisionSegment("s1", "rec-long", start=0.25, duration=1.0, text="hello there",
                               speaker="spk1"),
            SupervisionSegment("s2", "rec-long", start=1.5, duration=1.5, text="second one",
                               speaker="spk2", custom={"phonemes": "s e k"}),
            SupervisionSegment("s3", "rec-short", start=0.0, duration=1.0, speaker="spk1")]
    recs = tmp_path / "recordings.jsonl.gz"
    RecordingSet.from_recordings([long_, short]).to_file(recs)
    sup_path = tmp_path / "supervisions.jsonl.gz"
    SupervisionSet.from_segments(sups).to_file(sup_path)
    return recs, sup_path


def test_supervisions_become_segment_rows(corpus, tmp_path):
    recs, sups = corpus
    out = from_lhotse(recordings=recs, supervisions=sups, output=tmp_path / "m.jsonl")
    rows = {r["id"]: r for r in read_manifest(out)}
    assert set(rows) == {"s1", "s2", "s3"}
    s1, s2, s3 = rows["s1"], rows["s2"], rows["s3"]
    assert (s1["start"], s1["duration"], s1["speaker"], s1["text"]) == (0.25, 1.0, "spk1",
                                                                        "hello there")
    assert s1["recording_id"] == "rec-long" and Path(s1["path"]).name == "long.wav"
    assert (s2["start"], s2["duration"], s2["phonemes"]) == (1.5, 1.5, "s e k")
    assert "start" not in s3 and s3["duration"] == 1.0 and "text" not in s3  # the whole file
    assert s1["sample_rate"] == SR and s1["num_channels"] == 1
    assert read_jsonl(skip_report_path(out)) == []


def test_recordings_alone_give_one_row_each(corpus, tmp_path):
    recs, _ = corpus
    rows = read_manifest(from_lhotse(recordings=recs, output=tmp_path / "m.jsonl"))
    assert {(r["id"], r["duration"]) for r in rows} == {("rec-long", 3.0), ("rec-short", 1.0)}
    assert all("start" not in r for r in rows)


def test_unreadable_sources_are_skipped_with_reasons(tmp_path):
    _wav(tmp_path / "ok.wav", 1.0)
    _wav(tmp_path / "stereo.wav", 1.0, channels=2)
    _wav(tmp_path / "left.wav", 1.0, seed=2)
    _wav(tmp_path / "right.wav", 1.0, seed=3)
    ok = Recording.from_file(tmp_path / "ok.wav", recording_id="ok")
    stereo = Recording.from_file(tmp_path / "stereo.wav", recording_id="stereo")

    def rec(rid, sources):
        return Recording(rid, sources, SR, SR, 1.0)

    recs = [ok, stereo,
            rec("url", [AudioSource("url", [0], "https://example.org/a.flac")]),
            rec("cmd", [AudioSource("command", [0], "sox x.sph -t wav - |")]),
            rec("two", [AudioSource("file", [0], str(tmp_path / "left.wav")),
                        AudioSource("file", [1], str(tmp_path / "right.wav"))]),
            rec("gone", [AudioSource("file", [0], str(tmp_path / "missing.wav"))]),
            ok.perturb_speed(1.1)]
    sups = [SupervisionSegment("a", "ok", 0, 1.0),
            SupervisionSegment("both", "stereo", 0, 1.0, channel=[0, 1]),
            SupervisionSegment("left-only", "stereo", 0, 1.0, channel=0),
            SupervisionSegment("u", "url", 0, 1.0), SupervisionSegment("c", "cmd", 0, 1.0),
            SupervisionSegment("t", "two", 0, 1.0, channel=[0, 1]),
            SupervisionSegment("g", "gone", 0, 1.0),
            SupervisionSegment("fast", ok.perturb_speed(1.1).id, 0, 0.9),
            SupervisionSegment("past-end", "ok", 0.5, 1.0),
            SupervisionSegment("orphan", "nowhere", 0, 1.0)]
    RecordingSet.from_recordings(recs).to_file(tmp_path / "r.jsonl")
    SupervisionSet.from_segments(sups).to_file(tmp_path / "s.jsonl")
    out = from_lhotse(recordings=tmp_path / "r.jsonl", supervisions=tmp_path / "s.jsonl",
                      output=tmp_path / "out" / "m.jsonl")
    kept = {r["id"]: r for r in read_manifest(out)}
    assert set(kept) == {"a", "both"}
    assert kept["both"]["num_channels"] == 2
    reasons = {s["id"]: s["reason"] for s in read_jsonl(skip_report_path(out))}
    assert set(reasons) == {"left-only", "u", "c", "t", "g", "fast", "past-end", "orphan"}
    assert "channel(s) [0] of a 2-channel file" in reasons["left-only"]
    assert "a URL, not a local file" in reasons["u"]
    assert "a shell command" in reasons["c"]
    assert "2 sources" in reasons["t"]
    assert "file not found" in reasons["g"]
    assert "transforms (Speed)" in reasons["fast"]
    assert "runs past the file's end" in reasons["past-end"]
    assert "not in" in reasons["orphan"]


def test_cutset_rows_and_relative_paths_from_root(tmp_path):
    audio = tmp_path / "corpus" / "wav"
    audio.mkdir(parents=True)
    _wav(audio / "a.wav", 2.0)
    rec = Recording.from_file(audio / "a.wav", recording_id="a")
    rec.sources[0].source = "wav/a.wav"  # relative to the corpus folder
    sups = SupervisionSet.from_segments([
        SupervisionSegment("a-0", "a", 0.2, 0.6, text="one", speaker="x"),
        SupervisionSegment("a-1", "a", 1.0, 0.8, text="two", speaker="x")])
    cuts = CutSet.from_manifests(RecordingSet.from_recordings([rec]), sups)
    cuts = cuts.trim_to_supervisions(keep_overlapping=False)
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    # a CutSet given positionally is read as --cuts
    out = from_lhotse(recordings=tmp_path / "cuts.jsonl.gz", root=tmp_path / "corpus",
                      output=tmp_path / "m.jsonl")
    rows = {r["id"]: r for r in read_manifest(out)}
    assert [(r["start"], r["duration"], r["text"], r["speaker"]) for r in rows.values()] == [
        (0.2, 0.6, "one", "x"), (1.0, 0.8, "two", "x")]
    assert Path(rows["a-0"]["path"]) == (audio / "a.wav").resolve()
    with pytest.raises(InputError, match="no usable rows.*file not found"):  # not in the cwd
        from_lhotse(cuts=tmp_path / "cuts.jsonl.gz", output=tmp_path / "m2.jsonl")


def test_export_reads_back_with_lhotse_and_round_trips(tmp_path):
    _wav(tmp_path / "x.wav", 2.0)
    _wav(tmp_path / "y.wav", 1.0, seed=1)
    _wav(tmp_path / "st.wav", 1.0, channels=2, seed=2)
    manifest = write_manifest([
        {"id": "x1", "path": tmp_path / "x.wav", "start": 0.0, "duration": 0.9,
         "sample_rate": SR, "num_channels": 1, "speaker": "a", "text": "first", "split": "train",
         "recording_id": "X"},
        {"id": "x2", "path": tmp_path / "x.wav", "start": 1.0, "duration": 1.0,
         "sample_rate": SR, "num_channels": 1, "speaker": "b", "text": "second",
         "recording_id": "X"},
        {"id": "y", "path": tmp_path / "y.wav", "duration": 1.0, "sample_rate": SR,
         "num_channels": 1, "phonemes": "p i"},
        {"id": "st", "path": tmp_path / "st.wav", "duration": 1.0, "sample_rate": SR,
         "num_channels": 2},
        {"id": "bad", "path": tmp_path / "nope.wav", "duration": 1.0, "sample_rate": SR,
         "num_channels": 1}], tmp_path / "m.jsonl")
    out = to_lhotse(manifest=manifest, output=tmp_path / "lh")
    recs = lhotse.load_manifest(out / "recordings.jsonl.gz")
    sups = lhotse.load_manifest(out / "supervisions.jsonl.gz")
    cuts = lhotse.load_manifest(out / "cuts.jsonl.gz")
    assert sorted(r.id for r in recs) == ["X", "st", "y"]
    assert [s.id for s in sups] == ["x1", "x2", "y", "st"]
    lhotse.validate_recordings_and_supervisions(recs, sups)
    cut = cuts["x2"]
    assert (cut.start, cut.duration, cut.supervisions[0].text) == (1.0, 1.0, "second")
    assert cut.load_audio().shape == (1, SR)  # lhotse loads the segment itself
    assert [s["id"] for s in read_jsonl(out / "skipped.jsonl")] == ["bad"]

    original = {r["id"]: r for r in read_manifest(manifest) if r["id"] != "bad"}
    keys = ("path", "start", "speaker", "text", "phonemes", "split", "num_channels")
    for args in ({"recordings": out / "recordings.jsonl.gz",
                  "supervisions": out / "supervisions.jsonl.gz"},
                 {"cuts": out / "cuts.jsonl.gz"}):
        back = {r["id"]: r for r in read_manifest(from_lhotse(**args,
                                                              output=tmp_path / "back.jsonl"))}
        assert set(back) == set(original)
        for uid, row in original.items():
            assert {k: row.get(k) for k in keys} == {k: back[uid].get(k) for k in keys}
            assert back[uid]["duration"] == pytest.approx(row["duration"])
        assert back["x1"]["recording_id"] == "X"
    # a rerun replaces its own export; a folder of other files is never replaced
    assert to_lhotse(manifest=manifest, output=out) == out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a spokenlm lhotse export"):
        to_lhotse(manifest=manifest, output=tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep me"


def test_refusals_are_one_clear_line(corpus, tmp_path):
    recs, sups = corpus
    with pytest.raises(InputError, match="holds lhotse supervisions.*--supervisions"):
        from_lhotse(recordings=sups, output=tmp_path / "m.jsonl")
    dup = tmp_path / "dup.jsonl"
    with gzip.open(sups, "rt") as f:
        lines = f.read().splitlines()
    dup.write_text("\n".join(lines + lines[:1]) + "\n")
    with pytest.raises(InputError, match="duplicate id 's1'"):
        from_lhotse(recordings=recs, supervisions=dup, output=tmp_path / "m.jsonl")
    (tmp_path / "r.json").write_text(json.dumps([]))
    with pytest.raises(InputError, match="JSONL"):
        from_lhotse(recordings=tmp_path / "r.json", output=tmp_path / "m.jsonl")


def test_cli(corpus, tmp_path, capsys):
    recs, sups = corpus
    out = tmp_path / "cli.jsonl"
    assert main(["data", "from-lhotse", str(recs), "--supervisions", str(sups),
                 "--output", str(out)]) == 0
    assert len(read_manifest(out)) == 3
    assert main(["data", "to-lhotse", str(out), "--output", str(tmp_path / "lh")]) == 0
    assert (tmp_path / "lh" / "cuts.jsonl.gz").is_file()
    assert main(["data", "from-lhotse", str(sups), "--output", str(out)]) == 1
    assert "pass it as --supervisions" in capsys.readouterr().err
