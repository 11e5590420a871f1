from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from spokenlm.audio.load import load_audio, save_wav
from spokenlm.common.errors import ArtifactError, InputError
from spokenlm.common.files import read_jsonl
from spokenlm.common.paths import resolve_path
from spokenlm.testing.audio import write_test_manifest, write_wav_folder
from spokenlm.tokenize import SpeechTokenizer, load_packed, pack_units, tokenize_manifest
from spokenlm.tokenize.run import parse_shard
from spokenlm.tokenize.train import train_tokenizer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(manifest: 5 good wavs + a corrupt, an empty and a silent file; mfcc tokenizer)."""
    root = tmp_path_factory.mktemp("run")
    good = write_wav_folder(root / "wavs", n=5, seed=1, seconds=(0.3, 0.8))
    (root / "wavs" / "corrupt.wav").write_bytes(b"RIFF\x00\x00not really a wav file" * 10)
    (root / "wavs" / "empty.wav").write_bytes(b"")
    save_wav(root / "wavs" / "silent.wav", np.zeros(8000, dtype=np.float32))
    paths = good[:2] + [root / "wavs" / "corrupt.wav"] + good[2:4] + [root / "wavs" / "empty.wav"] \
        + good[4:] + [root / "wavs" / "silent.wav"]
    manifest = write_test_manifest(root / "m.jsonl", paths, speaker=list("abababab"))
    good_manifest = write_test_manifest(root / "good.jsonl", good)
    tok = train_tokenizer(manifest=good_manifest, output=root / "tok", n_units=8, niter=5,
                          device="cpu")
    return manifest, tok


def _run(corpus: tuple[Path, Path], output: Path, **kw: object) -> Path:
    manifest, tok = corpus
    return tokenize_manifest(manifest=manifest, tokenizer=tok, output=output, part_size=2,
                             device="cpu", **kw)


def test_skips_bad_files_and_packs(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    out = _run(corpus, tmp_path / "units.jsonl")
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [f"utt{i:03d}" for i in range(5)]
    skipped = read_jsonl(tmp_path / "units.skipped.jsonl")
    assert [s["id"] for s in skipped] == ["corrupt", "empty", "silent"]
    assert "corrupt.wav" in skipped[0]["path"] and "empty" in skipped[1]["reason"]
    assert "silent" in skipped[2]["reason"]
    tok = SpeechTokenizer.from_pretrained(corpus[1], device="cpu")
    for row in rows:
        assert row["speaker"] in ("a", "b") and resolve_path(row["path"], out).exists()
        assert sum(row["durations"]) == row["n_frames"] and len(row["units"]) == len(row["durations"])
        assert all(0 <= u < 8 for u in row["units"])
    np.testing.assert_array_equal(tok.encode(load_audio(resolve_path(rows[0]["path"], out))).units,
                                  rows[0]["units"])

    tokens, offsets, meta = load_packed(tmp_path / "units")
    assert meta["dtype"] == "uint16" and meta["n_units"] == 8 and meta["dedup"] is True
    assert meta["ids"] == [r["id"] for r in rows] and meta["n_utterances"] == 5
    for i, row in enumerate(rows):
        assert tokens[offsets[i]:offsets[i + 1]].tolist() == row["units"]


def test_sharded_equals_unsharded(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    _run(corpus, tmp_path / "a" / "units.jsonl")
    first = _run(corpus, tmp_path / "b" / "units.jsonl", shard="0/2")
    assert first.name == "units.shard-0-of-2.jsonl"
    assert not (tmp_path / "b" / "units.jsonl").exists()
    merged = _run(corpus, tmp_path / "b" / "units.jsonl", shard="1/2")
    assert merged == tmp_path / "b" / "units.jsonl"
    for name in ("units.jsonl", "units.skipped.jsonl", "units.bin", "units.idx.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_torchrun_env_sets_the_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert parse_shard(None) == (1, 3)
    assert parse_shard("2/4") == (2, 4)
    with pytest.raises(InputError, match="I/N"):
        parse_shard("two")
    with pytest.raises(InputError, match="0 <= I < N"):
        parse_shard("4/4")


def test_resume_reuses_parts(corpus: tuple[Path, Path], tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = _run(corpus, tmp_path / "units.jsonl")
    expected = out.read_bytes()
    parts = tmp_path / "units.parts" / "shard-0-of-1"
    assert len(list(parts.glob("part-*.jsonl"))) == 4  # 8 rows, part_size 2
    for f in tmp_path.glob("units.*"):
        if f.is_file():
            f.unlink()

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("all parts were done; nothing should be re-encoded")

    monkeypatch.setattr(SpeechTokenizer, "encode_batch", fail)
    assert _run(corpus, tmp_path / "units.jsonl").read_bytes() == expected
    assert load_packed(tmp_path / "units.jsonl")[2]["n_utterances"] == 5
    monkeypatch.undo()

    (parts / "part-000001.jsonl").unlink()  # as if killed while writing part 1
    calls = []
    original = SpeechTokenizer.encode_batch
    monkeypatch.setattr(SpeechTokenizer, "encode_batch",
                        lambda self, wavs, *a: calls.append(len(wavs)) or original(self, wavs, *a))
    assert _run(corpus, tmp_path / "units.jsonl").read_bytes() == expected
    assert sum(calls) == 1  # part 1 = corrupt.wav (skipped again) + one good file


def test_parts_of_another_run_are_refused(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    _run(corpus, tmp_path / "units.jsonl")
    with pytest.raises(InputError, match="other settings"):
        _run(corpus, tmp_path / "units.jsonl", dedup=False)
    shutil.rmtree(tmp_path / "units.parts")
    raw = read_jsonl(_run(corpus, tmp_path / "units.jsonl", dedup=False, pack=False))
    assert "durations" not in raw[0] and len(raw[0]["units"]) == raw[0]["n_frames"]


def test_pack_units_wide_vocab_and_missing(tmp_path: Path) -> None:
    rows = [{"id": "x", "units": [70000, 3]}, {"id": "y", "units": []}]
    (tmp_path / "u.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    prefix = pack_units(tmp_path / "u.jsonl")
    tokens, offsets, meta = load_packed(prefix)
    assert meta["dtype"] == "uint32" and meta["n_units"] == 70001
    assert offsets.tolist() == [0, 2, 2] and tokens.tolist() == [70000, 3]
    with pytest.raises(InputError, match="outside"):
        pack_units(tmp_path / "u.jsonl", n_units=100)
    with pytest.raises(ArtifactError, match="packed units missing"):
        load_packed(tmp_path / "nothing")


def test_cli_options_parse() -> None:
    import argparse

    from spokenlm.common.options import add_options, options_from_namespace
    from spokenlm.tokenize import TokenizeOptions, tokenize_manifest

    parser = argparse.ArgumentParser()
    add_options(parser, tokenize_manifest.options)
    opts = options_from_namespace(TokenizeOptions, parser.parse_args(
        ["m.jsonl", "--tokenizer", "tok", "--output", "u.jsonl", "--no-dedup", "--shard", "1/2"]))
    assert (opts.dedup, opts.shard, opts.pack, opts.precision) == (False, "1/2", True, "fp32")
    assert tokenize_manifest.command == "tokenize run"
