"""ABX at scale: the batched implementation against libri-light's algorithm.

``spokenlm.testing.abx_reference`` re-implements zerospeech-libriabx2's ABX loop for loop
(its sampling, DTW, ties, null frames and averages); on small random item sets with
subsampling forced (tiny ``max_size_group`` / ``max_x_across``) the two must give the same
numbers to float rounding in every condition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.eval import abx_score
from spokenlm.eval.abx import Token, abx_error, evaluate_abx
from spokenlm.eval.dtw import dtw_batch
from spokenlm.testing.abx_reference import dtw as reference_dtw
from spokenlm.testing.abx_reference import reference_abx

CONDITIONS = [("within", "within", "within"), ("across", "across", "within"),
              ("within_any", "within", "any"), ("across_any", "across", "any")]


def _corpus(seed: int, n_files: int = 36, n_speakers: int = 6, n_phones: int = 4,
            dim: int = 5, null: bool = False, units: bool = False, max_frames: int = 5):
    """Random "utterances" of phones (1-``max_frames`` frames) by several speakers: per token its
    frames and (context, label, speaker), plus item lines that get no frames (ids)."""
    rng = np.random.default_rng(seed)
    protos = rng.standard_normal((n_phones, dim))
    shift = 0.8 * rng.standard_normal((n_speakers, dim))
    frames, keys, order = [], [], []
    for f in range(n_files):
        spk = f"s{f % n_speakers}"
        phones = rng.integers(0, n_phones, int(rng.integers(4, 9)))
        for k, p in enumerate(phones):
            prev = f"p{phones[k - 1]}" if k else "SIL"
            nxt = f"p{phones[k + 1]}" if k + 1 < len(phones) else "SIL"
            key = (f"{prev}+{nxt}", f"p{p}", spk)
            order.append(key)
            if rng.random() < 0.05:  # an item whose span holds no frame: numbered, not kept
                continue
            x = protos[p] + shift[f % n_speakers] + 1.5 * rng.standard_normal(
                (int(rng.integers(1, max_frames + 1)), dim))
            if null and rng.random() < 0.1:
                x[0] = 0.0
            frames.append(x.argmax(1) if units else x.astype(np.float32))
            keys.append(key)
    return frames, keys, order


def _ours(frames, keys, order, **kw) -> dict:
    onehot = np.ndim(frames[0]) == 1
    return abx_error([torch.from_numpy(np.asarray(f)) for f in frames],
                     [Token(k[1], k[0], k[2]) for k in keys],
                     distance="onehot" if onehot else "angular",
                     id_order=[Token(k[1], k[0], k[2]) for k in order],
                     context_modes=("within", "any"), **kw)


@pytest.mark.parametrize("case", [dict(seed=0), dict(seed=1, null=True),
                                  dict(seed=2, units=True, dim=3, max_frames=12)],
                         ids=["features", "null-frames", "units-ties"])
def test_matches_reference_in_every_condition(case: dict) -> None:
    frames, keys, order = _corpus(**case)
    sampling = dict(max_size_group=3, max_x_across=2, seed=7)
    ours = _ours(frames, keys, order, **sampling)
    for name, speaker, context in CONDITIONS:
        want = reference_abx(frames, keys, speaker_mode=speaker, context_mode=context,
                             id_order=order, **sampling)
        assert ours[name] == pytest.approx(want, abs=1e-6), name
        assert ours[f"n_{name}_groups"] > 0


def test_sampling_is_what_is_compared() -> None:
    """Another seed draws other subsamples: the agreement above is not vacuous."""
    frames, keys, order = _corpus(3)
    a = _ours(frames, keys, order, max_size_group=2, max_x_across=1, seed=1)
    b = _ours(frames, keys, order, max_size_group=2, max_x_across=1, seed=2)
    assert any(a[n] != b[n] for n, _, _ in CONDITIONS)
    want = reference_abx(frames, keys, speaker_mode="across", context_mode="any",
                         id_order=order, max_size_group=2, max_x_across=1, seed=2)
    assert b["across_any"] == pytest.approx(want, abs=1e-6)


def test_every_block_layout_gives_the_same_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Context blocks, (context, speaker) run blocks and per-group blocks are three ways to
    the same distances."""
    frames, keys, order = _corpus(4, n_files=30)
    base = _ours(frames, keys, order)
    monkeypatch.setattr(abx_score, "CONTEXT_CELLS", 0)  # run blocks
    runs = _ours(frames, keys, order)
    monkeypatch.setattr(abx_score, "RUN_CELLS", 0)  # one block per group
    groups = _ours(frames, keys, order)
    for name, _, _ in CONDITIONS:
        assert base[name] == runs[name] == groups[name]


def test_dtw_matches_reference_with_ties() -> None:
    rng = np.random.default_rng(0)
    ds = [rng.integers(0, 2, (int(rng.integers(1, 8)), int(rng.integers(1, 8))))
          .astype(np.float32) for _ in range(200)]
    pad = np.zeros((len(ds), 7, 7), np.float32)
    for b, d in enumerate(ds):
        pad[b, :d.shape[0], :d.shape[1]] = d
    got = dtw_batch(torch.from_numpy(pad), torch.tensor([d.shape[0] for d in ds]),
                    torch.tensor([d.shape[1] for d in ds]))
    assert got.tolist() == [reference_dtw(d) for d in ds]  # path lengths decided on ties


def test_eval_abx_any_context_from_an_item_file(tmp_path: Path, tokenizer_dir: Path) -> None:
    import soundfile as sf

    from spokenlm.testing.audio import random_speech_like_wav

    lines = ["#file onset offset #phone prev-phone next-phone speaker"]
    for f in range(4):
        sf.write(tmp_path / f"u{f}.wav", random_speech_like_wav(1.2, seed=f), 16000)
        for k in range(8):
            lines.append(f"u{f} {0.1 * k + 0.05:.2f} {0.1 * k + 0.15:.2f} {'AB'[k % 2]} "
                         f"SIL SIL spk{f % 2}")
    (tmp_path / "x.item").write_text("\n".join(lines) + "\n")
    m = evaluate_abx(tokenizer=tokenizer_dir, item_file=tmp_path / "x.item",
                     audio_dir=tmp_path, context_modes=["within", "any"],
                     output=tmp_path / "abx.json")
    for rep in ("features", "units"):
        for name in ("within", "across", "within_any", "across_any"):
            assert 0.0 <= m[rep][name] <= 1.0
        assert m[rep]["within"] == m[rep]["within_any"]  # one context: the same triplets


def test_dtw_orientation_follows_the_reference() -> None:
    """With unit ids the path length, hence d(a, x), depends on which sequence is the DTW's
    first: libri-light aligns the earlier token of A (in sample order) first. Here
    d(A1, A2) = 2/7 = d(A1, B), a tie, while d(A2, A1) = 1/3 would make it an error."""
    reps = [torch.tensor(u) for u in ([2, 2, 1, 2, 0, 2], [2, 2, 0, 2, 0], [2, 2, 0, 1, 2])]
    tokens = [Token("a", "c", "s"), Token("a", "c", "s"), Token("b", "c", "s")]
    got = abx_error(reps, tokens, distance="onehot", speaker_modes=("within",))
    want = reference_abx([r.numpy() for r in reps], [(t.context, t.label, t.speaker)
                                                      for t in tokens])
    assert got["within"] == want == pytest.approx(0.25)  # x = A1: a tie; x = A2: right
