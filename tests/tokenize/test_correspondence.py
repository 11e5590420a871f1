"""The correspondence autoencoder: DTW alignment, exact streaming, invariance it learns, and
a tokenizer trained with same-content pairs (saved, loaded, streamed, bad pair manifests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from spokenlm.common.errors import ArtifactError, InputError
from spokenlm.testing.audio import random_speech_like_wav, write_test_manifest, write_wav_folder
from spokenlm.testing.tokenizers import streamed_and_whole
from spokenlm.tokenize import SpeechTokenizer, train_tokenizer
from spokenlm.tokenize.correspondence import (
    CorrespondenceOptions,
    CorrespondenceTransform,
    dtw_path,
    fit_correspondence,
)


def _dtw_cost(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook O(N M) recurrence, cell by cell."""
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    c = np.full((len(a) + 1, len(b) + 1), np.inf)
    c[0, 0] = 0.0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            c[i, j] = d[i - 1, j - 1] + min(c[i - 1, j], c[i, j - 1], c[i - 1, j - 1])
    return float(c[-1, -1])


def test_dtw_path_is_an_optimal_monotone_path() -> None:
    rng = np.random.default_rng(0)
    for _ in range(25):
        a = rng.normal(size=(int(rng.integers(1, 12)), 3))
        b = rng.normal(size=(int(rng.integers(1, 12)), 3))
        ia, ib = dtw_path(a, b)
        assert (ia[0], ib[0], ia[-1], ib[-1]) == (0, 0, len(a) - 1, len(b) - 1)
        steps = np.stack([np.diff(ia), np.diff(ib)], 1)
        assert set(map(tuple, steps)) <= {(0, 1), (1, 0), (1, 1)}
        cost = float(np.linalg.norm(a[ia] - b[ib], axis=1).sum())
        assert cost == pytest.approx(_dtw_cost(a, b), rel=1e-9)
    x = rng.normal(size=(9, 2))
    ia, ib = dtw_path(x, np.repeat(x, 2, axis=0))  # each frame said twice as slowly
    assert np.array_equal(ia, np.repeat(np.arange(9), 2)) and np.array_equal(ib, np.arange(18))


@pytest.mark.parametrize("context", [0, 1, 3])
def test_stream_equals_whole(context: int) -> None:
    torch.manual_seed(0)
    model = CorrespondenceTransform(5, 3, context, 8).eval()
    rng = np.random.default_rng(context)
    for n in (1, 2, 5, 40):
        x = rng.normal(size=(n, 5)).astype(np.float32)
        whole = model.apply(x)
        assert whole.shape == (n, 3)
        for _ in range(4):
            cuts = np.sort(rng.integers(0, n + 1, size=int(rng.integers(0, 5))))
            got = np.concatenate(list(model.stream(np.split(x, cuts))))
            np.testing.assert_allclose(got, whole, atol=1e-6)


def _two_voices(n_pairs: int, seed: int) -> tuple[list, list]:
    """Content: runs of 6 'phones' (random 4-dim vectors); each voice shows a phone through
    its own linear map (8 dims: a shared one, perturbed) plus a large voice offset, at its
    own speed."""
    rng = np.random.default_rng(0)  # the same phones and voices for every seed
    phones = rng.normal(size=(6, 4))
    shared = rng.normal(size=(4, 8))
    maps = [shared + 0.3 * rng.normal(size=(4, 8)) for _ in range(4)]
    offsets = [2 * rng.normal(size=8) for _ in range(4)]
    rng = np.random.default_rng(seed)  # the sentences and their speeds
    pairs, labels = [], []
    for _ in range(n_pairs):
        seq = rng.integers(0, 6, size=8)
        va, vb = rng.choice(4, size=2, replace=False)
        sides = []
        for v, rate in ((va, 3), (vb, int(rng.integers(2, 5)))):
            lab = np.repeat(seq, rate)
            sides.append((phones[lab] @ maps[v] + offsets[v]
                          + 0.05 * rng.normal(size=(len(lab), 8))).astype(np.float32))
            labels.append(lab)
        pairs.append(tuple(sides))
    return pairs, labels


def _phone_separation(frames: list[np.ndarray], labels: list[np.ndarray]) -> float:
    """Between-phone over total variance of z-scored frames (1: frames are their phone)."""
    x, y = np.concatenate(frames), np.concatenate(labels)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    between = sum((y == k).sum() * np.sum(x[y == k].mean(0) ** 2) for k in np.unique(y))
    return float(between / np.sum(x ** 2))


def test_fit_learns_what_the_voices_share() -> None:
    pairs, labels = _two_voices(120, seed=0)
    model = fit_correspondence(pairs, CorrespondenceOptions(dims=4, context=0, hidden=32,
                                                            epochs=30, lr=3e-3, seed=0))
    test_pairs, test_labels = _two_voices(40, seed=1)  # same voices and phones, new sentences
    raw = [f for ab in test_pairs for f in ab]
    before = _phone_separation(raw, test_labels)
    after = _phone_separation([model.apply(f) for f in raw], test_labels)
    assert before < 0.5 < after, (before, after)  # the voice offsets dominate the raw frames


def test_fit_is_seeded_and_leaves_the_global_rng_alone() -> None:
    pairs, _ = _two_voices(10, seed=2)
    opts = CorrespondenceOptions(dims=2, context=1, hidden=8, epochs=2, seed=3)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = fit_correspondence(pairs, opts).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    again = fit_correspondence(pairs, opts).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_options_are_checked() -> None:
    with pytest.raises(InputError, match="dims, hidden"):
        CorrespondenceOptions(dims=0).check()
    with pytest.raises(InputError, match="no pairs"):
        fit_correspondence([])


@pytest.fixture(scope="module")
def paired(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Four wavs, their manifest, and a pairs manifest: each wav again, 10% slower and
    quieter, as another 'voice'."""
    import soxr

    root = tmp_path_factory.mktemp("pairs")
    wavs = write_wav_folder(root / "wavs", n=4)
    manifest = write_test_manifest(root / "m.jsonl", wavs)
    ids = [json.loads(line)["id"] for line in manifest.read_text().splitlines()]
    rows = []
    for uid, path in zip(ids, wavs):
        wav, sr = sf.read(path, dtype="float32")
        slow = 0.7 * soxr.resample(wav, sr, int(sr * 1.1))
        out = root / "again" / f"{uid}_again.wav"
        out.parent.mkdir(exist_ok=True)
        sf.write(out, slow, sr)
        rows.append({"id": f"{uid}_again", "path": str(out), "same_as": uid})
    pairs = root / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tok = train_tokenizer(manifest=manifest, output=root / "tokenizer", encoder="mfcc",
                          n_units=8, niter=5, device="cpu", pairs=pairs, pair_dims=6,
                          pair_epochs=2)
    return manifest, pairs, tok


def test_tokenizer_with_pairs_saves_loads_and_streams(paired: tuple[Path, Path, Path],
                                                      tmp_path: Path) -> None:
    _, _, tok_dir = paired
    config = json.loads((tok_dir / "config.json").read_text())
    assert config["dim"] == 6 and config["encoder"]["name"] == "mfcc"
    assert config["transform"] == {"kind": "correspondence", "input_dim": 39, "dims": 6,
                                   "context": 2, "hidden": 256}
    stats = json.loads((tok_dir / "kmeans_stats.json").read_text())
    assert stats["n_pairs"] == stats["n_pair_rows"] == 4 and stats["n_files"] == 4
    tok = SpeechTokenizer.from_pretrained(tok_dir, device="cpu")
    wav = random_speech_like_wav(1.7, seed=9)
    assert tok.features(wav).shape == (tok.encoder.num_frames(len(wav)), 6)
    again = SpeechTokenizer.from_pretrained(tok.save_pretrained(tmp_path / "copy"), device="cpu")
    np.testing.assert_array_equal(tok.encode(wav).units, again.encode(wav).units)
    streamed, whole = streamed_and_whole(tok_dir)
    assert streamed == whole


def test_pair_max_hours_caps_the_pairs_read(paired: tuple[Path, Path, Path],
                                            tmp_path: Path) -> None:
    manifest, pairs, _ = paired
    seconds = sum(sf.info(json.loads(line)["path"]).duration for line in
                  pairs.read_text().splitlines())  # one side of each pair: about half
    tok = train_tokenizer(manifest=manifest, output=tmp_path / "t", n_units=4, niter=2,
                          device="cpu", pairs=pairs, pair_dims=4, pair_epochs=1,
                          pair_max_hours=seconds / 3600 / 2)  # about two pairs' worth
    stats = json.loads((tok / "kmeans_stats.json").read_text())
    assert 1 <= stats["n_pairs"] < 4 and stats["n_pair_rows"] == 4
    with pytest.raises(InputError, match="--pair-max-hours 0"):
        train_tokenizer(manifest=manifest, output=tmp_path / "u", pairs=pairs, pair_max_hours=0)


def test_tokenizer_with_a_broken_transform_is_refused(paired: tuple[Path, Path, Path],
                                                      tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "tok"
    shutil.copytree(paired[2], copy)
    (copy / "transform.safetensors").unlink()
    with pytest.raises(ArtifactError, match="transform.safetensors: missing"):
        SpeechTokenizer.from_pretrained(copy)


def test_pairs_manifest_must_name_manifest_rows(paired: tuple[Path, Path, Path],
                                                tmp_path: Path) -> None:
    manifest, pairs, _ = paired
    bad = tmp_path / "bad_pairs.jsonl"
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    rows[1]["same_as"] = "nobody"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"row 2 .*has same_as 'nobody', which is no id in"):
        train_tokenizer(manifest=manifest, output=tmp_path / "t", pairs=bad, n_units=4)
    del rows[0]["same_as"]
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"row 1 .*has no same_as in"):
        train_tokenizer(manifest=manifest, output=tmp_path / "t", pairs=bad, n_units=4)
    assert not (tmp_path / "t").exists()


def test_kmeans_export_refuses_a_tokenizer_with_a_transform(paired: tuple[Path, Path, Path],
                                                            tmp_path: Path) -> None:
    from spokenlm.interop.sklearn_kmeans import export_kmeans

    with pytest.raises(InputError, match="correspondence transform"):
        export_kmeans(tokenizer=paired[2], output=tmp_path / "km.bin")
    assert not (tmp_path / "km.bin").exists()
