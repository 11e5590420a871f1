from __future__ import annotations

import numpy as np
import pytest
import torch

from spokenlm.lm.score import length_batches
from spokenlm.testing.lm import tiny_unit_lm


@pytest.fixture(scope="module")
def lm():
    return tiny_unit_lm(20, seed=1, tie_word_embeddings=False, initializer_range=0.2)


def _seqs() -> list[list[int]]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 20, int(n)).tolist() for n in [7, 1, 0, 30, 12, 12, 3, 25, 2]]


@pytest.mark.parametrize("add_bos,add_eos", [(True, False), (True, True), (False, True)])
def test_batched_equals_unbatched(lm, add_bos, add_eos) -> None:
    seqs = _seqs()
    batched = lm.log_likelihood(seqs, batch_tokens=64, add_bos=add_bos, add_eos=add_eos)
    for seq, got in zip(seqs, batched):
        want = lm.log_likelihood([seq], add_bos=add_bos, add_eos=add_eos)[0]
        assert got.n == want.n == len(seq) + add_eos - (not add_bos) or got.n == 0
        assert got.per_token.shape == (got.n,)
        np.testing.assert_allclose(got.per_token, want.per_token, atol=1e-4)
        assert got.sum == pytest.approx(want.sum, abs=1e-4)


def test_matches_manual_log_softmax(lm) -> None:
    seq = [3, 1, 4, 1, 5, 9]
    ids = torch.tensor([[lm.bos_id, *seq, lm.eos_id]])
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(input_ids=ids).logits[0, :-1], -1)
    want = logp.gather(-1, ids[0, 1:, None]).squeeze(-1).numpy()
    got = lm.log_likelihood([seq], add_eos=True)[0]
    np.testing.assert_allclose(got.per_token, want, atol=1e-5)
    assert got.mean == pytest.approx(want.mean(), abs=1e-5)


def test_empty_sequence_scores_zero(lm) -> None:
    out = lm.log_likelihood([[]])[0]
    assert (out.sum, out.n, out.per_token.shape) == (0.0, 0, (0,))


def test_length_batches_respect_budget() -> None:
    lengths = [5, 50, 10, 10, 200, 1, 30]
    batches = list(length_batches(lengths, batch_tokens=60))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 60
