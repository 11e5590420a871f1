"""Libri-Light import: long files cut into rows with start/duration, by their JSON
voice_activity or by Silero VAD, tokenized segment by segment."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spokenlm.audio.load import audio_info, segment_frames
from spokenlm.audio.manifest import read_manifest, skip_report_path
from spokenlm.cli.main import main
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl
from spokenlm.data.corpora.librilight import librilight
from spokenlm.data.tts import SPEAKERS, synthesize
from spokenlm.testing.audio import random_speech_like_wav, write_test_manifest, write_wav_folder
from spokenlm.tokenize import tokenize_manifest
from spokenlm.tokenize.train import train_tokenizer

SR = 16_000
#: where the speech of the file with JSON metadata is (s), and its length
BURSTS = [(0.5, 3.0), (3.4, 6.0), (10.0, 13.0), (13.2, 14.0)]
LENGTH = 16.0


def _file_with_bursts(path: Path, bursts: list[tuple[float, float]], length: float,
                      seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    wav = (0.002 * rng.standard_normal(int(length * SR))).astype(np.float32)
    for k, (s, e) in enumerate(bursts):
        wav[int(s * SR):int(e * SR)] = random_speech_like_wav(e - s, seed=seed * 10 + k)[
            : int(e * SR) - int(s * SR)]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav, SR, subtype="PCM_16")


@pytest.fixture
def light(tmp_path: Path) -> Path:
    """``ll/small/<speaker>/<book>/``: a file with Libri-Light JSON metadata, and one whose
    JSON has no voice_activity (spoken by espeak-ng, so Silero has speech to find)."""
    book = tmp_path / "ll" / "small" / "100" / "sea_fairies_0812_librivox_64kb_mp3"
    _file_with_bursts(book / "01_baum_sea_fairies_64kb.flac", BURSTS, LENGTH)
    meta = {"speaker": "100", "snr": 12.5, "voice_activity": [list(b) for b in BURSTS],
            "book_meta": {"id": "812", "title": "The Sea Fairies", "genre": ["*Fiction"],
                          "Dramatic Readings": False, "meta_genre": "Literature"}}
    (book / "01_baum_sea_fairies_64kb.json").write_text(json.dumps(meta))
    other = tmp_path / "ll" / "small" / "200" / "odes_1102_librivox_64kb_mp3"
    other.mkdir(parents=True)
    speech = synthesize("seven big ships sailed to the island at dawn and then came back",
                        SPEAKERS[2])
    quiet = np.zeros(int(1.0 * SR), np.float32)
    sf.write(other / "odes_02.flac", np.concatenate([quiet, speech, quiet, quiet, speech, quiet]),
             SR, subtype="PCM_16")
    (other / "odes_02.json").write_text(json.dumps({"speaker": "200", "book_meta": {"id": "1102"}}))
    return tmp_path / "ll"


def test_rows_follow_voice_activity_and_vad(light: Path, tmp_path: Path) -> None:
    out = librilight(root=light, output=tmp_path / "m.jsonl")
    rows = read_manifest(out)
    by_file = {}
    for r in rows:
        by_file.setdefault(r["recording"], []).append(r)
    first = by_file["01_baum_sea_fairies_64kb"]
    # [0.5, 6.0] (a 0.4 s pause inside), then [10.0, 14.0]: the 4 s silence ends a segment
    assert [(r["start"], r["duration"]) for r in first] == [(0.5, 5.5), (10.0, 4.0)]
    assert [r["id"] for r in first] == ["01_baum_sea_fairies_64kb_0000",
                                        "01_baum_sea_fairies_64kb_0001"]
    assert all(r["speaker"] == "100" and r["book"] == "812" and r["split"] == "small"
               and r["snr"] == 12.5 and r["sample_rate"] == SR for r in first)
    vad = by_file["odes_02"]
    speech = synthesize("seven big ships sailed to the island at dawn and then came back",
                        SPEAKERS[2])
    n = len(speech) / SR
    # two utterances 2 s apart: one segment around both (the pause is under --max-gap)
    assert len(vad) == 1 and vad[0]["speaker"] == "200" and vad[0]["book"] == "1102"
    assert 0.6 <= vad[0]["start"] <= 1.3
    assert 3 + 2 * n - 1.3 <= vad[0]["start"] + vad[0]["duration"] <= 3 + 2 * n + 0.1
    assert read_jsonl(skip_report_path(out)) == []


def test_segment_options_and_vad_choice(light: Path, tmp_path: Path) -> None:
    rows = read_manifest(librilight(root=light / "small", output=tmp_path / "a.jsonl",
                                    max_gap=0.1, min_segment=1.0, vad="json"))
    assert [(r["start"], r["duration"]) for r in rows] == [
        (0.5, 2.5), (3.4, 2.6), (10.0, 3.0)]  # 0.8 s [13.2, 14.0] is under --min-segment
    skipped = read_jsonl(skip_report_path(tmp_path / "a.jsonl"))
    assert len(skipped) == 1 and "no voice_activity" in skipped[0]["reason"]
    rows = read_manifest(librilight(root=light, output=tmp_path / "b.jsonl", vad="silero",
                                    max_segment=3.0))
    assert all(r["duration"] <= 3.0 + 1e-6 for r in rows) and len(rows) >= 5


def test_bad_metadata_is_reported(light: Path, tmp_path: Path) -> None:
    book = light / "small" / "100" / "sea_fairies_0812_librivox_64kb_mp3"
    (book / "01_baum_sea_fairies_64kb.json").write_text('{"voice_activity": [[3, 1]]}')
    _file_with_bursts(book / "02_baum.flac", BURSTS, LENGTH)
    (book / "02_baum.json").write_text("{not json")
    (book / "03_baum.flac").write_bytes(b"not audio" * 100)
    out = librilight(root=light, output=tmp_path / "m.jsonl")  # odes_02 is kept (VAD)
    reasons = {Path(s["path"]).name: s["reason"] for s in read_jsonl(skip_report_path(out))}
    assert "0 <= start <= end" in reasons["01_baum_sea_fairies_64kb.flac"]
    assert "not valid JSON" in reasons["02_baum.flac"]
    assert "not readable as audio" in reasons["03_baum.flac"]
    with pytest.raises(InputError, match="no Libri-Light split folders"):
        librilight(root=book, output=tmp_path / "x.jsonl")


def _tokenizer(tmp_path: Path) -> Path:
    wavs = write_wav_folder(tmp_path / "train", n=4, seed=3, seconds=(0.5, 1.0))
    return train_tokenizer(manifest=write_test_manifest(tmp_path / "train.jsonl", wavs),
                           output=tmp_path / "tok", n_units=8, niter=5, device="cpu")


def _cut_out(rows: list[dict], folder: Path) -> list[Path]:
    """Each row's segment written to its own file, sample for sample."""
    folder.mkdir()
    paths = []
    for r in rows:
        first, n = segment_frames(audio_info(r["path"]), r["path"], r["start"], r["duration"])
        data, sr = sf.read(r["path"], start=first, frames=n, dtype="int16")
        paths.append(folder / f"{r['id']}.wav")
        sf.write(paths[-1], data, sr, subtype="PCM_16")
    return paths


def test_segment_rows_tokenize_like_their_cut_out_files(light: Path, tmp_path: Path) -> None:
    manifest = librilight(root=light, output=tmp_path / "m.jsonl")
    rows = read_manifest(manifest)
    tok = _tokenizer(tmp_path)
    units = read_jsonl(tokenize_manifest(manifest=manifest, tokenizer=tok, device="cpu",
                                         output=tmp_path / "units.jsonl"))
    cut = write_test_manifest(tmp_path / "cut.jsonl", _cut_out(rows, tmp_path / "cut"))
    ref = read_jsonl(tokenize_manifest(manifest=cut, tokenizer=tok, device="cpu",
                                       output=tmp_path / "cut_units.jsonl"))
    assert [u["id"] for u in units] == [r["id"] for r in rows] == [u["id"] for u in ref]
    for u, r, row in zip(units, ref, rows):
        assert u["units"] == r["units"] and u["durations"] == r["durations"]
        assert u["n_frames"] == r["n_frames"] > 0
        assert (u["start"], u["duration"]) == (row["start"], row["duration"])  # carried on


def test_cli(light: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.jsonl"
    assert main(["data", "librilight", str(light), "--output", str(out), "--vad", "json",
                 "--min-segment", "1"]) == 0
    assert len(read_manifest(out)) == 2


# -- the demonstration: a 30-minute file, VAD, tokenized without loading it whole --

def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _write_long_file(path: Path, minutes: float) -> float:
    """Speech (espeak-ng sentences) and pauses of 0.3-5 s, written block by block; returns
    the seconds of speech written."""
    sentences = ["the old man walked slowly along the quiet river in the evening",
                 "she found seven green apples under the tall tree near the house",
                 "a small boat crossed the lake before the storm began to rise",
                 "they talked about the long winter and the price of bread",
                 "my brother kept the letters in a wooden box for many years"]
    speech = [synthesize(s, SPEAKERS[i % 4], pad=0.0) for i, s in enumerate(sentences)]
    rng = np.random.default_rng(0)
    total, spoken = int(minutes * 60 * SR), 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16", format="FLAC") as f:
        written = 0
        while written < total:
            pause = (0.002 * rng.standard_normal(int(rng.uniform(0.3, 5.0) * SR))
                     ).astype(np.float32)
            w = speech[rng.integers(len(speech))]
            block = np.concatenate([pause, w])[: total - written]
            f.write(block)
            written += len(block)
            spoken += max(0, len(block) - len(pause))
    return spoken / SR


@pytest.mark.slow
def test_thirty_minute_file_segmented_by_vad_and_tokenized_in_bounded_memory(
        tmp_path: Path) -> None:
    minutes = 30.0
    long_file = tmp_path / "ll" / "small" / "42" / "long_book" / "chapter_01.flac"
    speech_s = _write_long_file(long_file, minutes)
    tok = _tokenizer(tmp_path)
    # warm up (one-off costs: the ONNX session, allocator pools, the tokenizer) on 40 s
    _write_long_file(tmp_path / "warm" / "small" / "1" / "b" / "w.flac", 40 / 60)
    warm = librilight(root=tmp_path / "warm", output=tmp_path / "warm.jsonl")
    tokenize_manifest(manifest=warm, tokenizer=tok, device="cpu",
                      output=tmp_path / "warm_units.jsonl")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM)
    except OSError:
        pytest.skip("cannot reset the peak RSS (/proc/self/clear_refs) on this system")
    base = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    manifest = librilight(root=tmp_path / "ll", output=tmp_path / "m.jsonl")
    t_vad = time.perf_counter() - t0
    units = read_jsonl(tokenize_manifest(manifest=manifest, tokenizer=tok, device="cpu",
                                         output=tmp_path / "units.jsonl"))
    t_all = time.perf_counter() - t0
    growth_mb = (_rss_kib("VmHWM") - base) / 1024
    decoded_mb = minutes * 60 * SR * 4 / 2**20  # the file as float32
    rows = read_manifest(manifest)
    print(f"\n30-min file: {len(rows)} rows, {sum(r['duration'] for r in rows) / 60:.1f} min "
          f"in segments ({speech_s / 60:.1f} min of speech written); VAD+manifest "
          f"{t_vad:.1f} s, +tokenize {t_all:.1f} s; peak RSS growth {growth_mb:.1f} MB "
          f"(decoded file {decoded_mb:.0f} MB)")
    assert len(units) == len(rows) > 50
    assert all(2.0 <= r["duration"] <= 20.0 + 1e-6 for r in rows)
    assert sum(r["duration"] for r in rows) >= 0.9 * speech_s
    starts = [r["start"] for r in rows]
    assert starts == sorted(starts) and rows[-1]["start"] > minutes * 60 - 60
    assert growth_mb < decoded_mb / 3
