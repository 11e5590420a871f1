"""`tokenize` and `tokenizer train` never overwrite their input or a folder of other files."""

from __future__ import annotations

from pathlib import Path

import pytest

from spokenlm.common.errors import InputError
from spokenlm.testing.audio import write_test_manifest, write_wav_folder
from spokenlm.tokenize import tokenize_manifest, train_tokenizer


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_test_manifest(tmp_path / "m.jsonl", write_wav_folder(tmp_path / "wavs", n=3))


def test_tokenize_refuses_to_write_over_its_manifest(manifest: Path, tmp_path: Path) -> None:
    before = manifest.read_bytes()
    with pytest.raises(InputError, match=r"--output .*m.jsonl is the input"):
        tokenize_manifest(manifest=manifest, tokenizer=tmp_path / "tok", output=manifest)
    with pytest.raises(InputError, match="is the input"):  # the same file by another name
        tokenize_manifest(manifest=manifest, tokenizer=tmp_path / "tok",
                          output=tmp_path / "wavs" / ".." / "m.jsonl")
    assert manifest.read_bytes() == before


def test_tokenizer_train_never_deletes_a_folder_of_other_files(manifest: Path,
                                                               tmp_path: Path) -> None:
    wavs = sorted((tmp_path / "wavs").iterdir())
    with pytest.raises(InputError, match=r"wavs: exists and is not a spokenlm tokenizer "
                                         r"directory.*--overwrite"):
        train_tokenizer(manifest=manifest, output=tmp_path / "wavs", n_units=4, niter=2)
    assert sorted((tmp_path / "wavs").iterdir()) == wavs
    tok = train_tokenizer(manifest=manifest, output=tmp_path / "tok", n_units=4, niter=2,
                          device="cpu")
    train_tokenizer(manifest=manifest, output=tok, n_units=4, niter=2, device="cpu")  # retrain
    other = tmp_path / "notes"
    other.mkdir()
    (other / "readme.txt").write_text("mine")
    train_tokenizer(manifest=manifest, output=other, n_units=4, niter=2, device="cpu",
                    overwrite=True)
    assert not (other / "readme.txt").exists() and (other / "config.json").exists()
