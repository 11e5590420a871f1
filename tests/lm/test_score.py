from __future__ import annotations

from pathlib import Path

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


@pytest.mark.parametrize("add_bos,add_eos", [(True, False), (True, True), (False, True),
                                             (False, False)])
def test_shared_prefix_equals_full_scoring(lm, add_bos, add_eos) -> None:
    """Prompt once + KV cache per ending == every prompt + ending scored whole."""
    from spokenlm.lm.score import log_likelihood_shared

    rng = np.random.default_rng(1)
    prefixes = [rng.integers(0, 20, int(n)).tolist() for n in [30, 5, 0, 12, 1, 40, 7]]
    endings = [[rng.integers(0, 20, int(n)).tolist() for n in ns]
               for ns in [[3, 7], [1, 0, 9], [4, 4], [10], [2, 6, 1, 8], [], [5, 5, 5]]]
    shared = log_likelihood_shared(lm, prefixes, endings, batch_tokens=48, add_bos=add_bos,
                                   add_eos=add_eos)
    for res, p, es in zip(shared, prefixes, endings):
        assert len(res.endings) == len(es)
        for c, e in enumerate(es):
            want = lm.log_likelihood([p + e], add_bos=add_bos, add_eos=add_eos)[0]
            got = res.whole(c)
            assert got.n == want.n
            np.testing.assert_allclose(got.per_token, want.per_token, atol=1e-5)
            n_end = len(e) + add_eos
            assert res.endings[c].n == min(n_end, want.n)
            if n_end and want.n:
                np.testing.assert_allclose(res.endings[c].per_token,
                                           want.per_token[-min(n_end, want.n):], atol=1e-5)


def test_benchmark_items_score_the_same_with_a_shared_prefix(lm) -> None:
    from spokenlm.eval.benchmark import Benchmark, score_items

    rng = np.random.default_rng(2)
    units = {f"a{i}": rng.integers(0, 20, int(rng.integers(3, 30))).tolist() for i in range(12)}
    story = rng.integers(0, 20, 20).tolist()
    units["full0"], units["full1"] = story + [1, 2, 3], story + [4, 5]  # no prompt, same start
    items = [{"id": f"c{i}", "candidates": [f"a{i}", f"a{i + 1}", f"a{i + 2}"], "answer": 0,
              "prompt": f"a{i + 3}"} for i in range(0, 9, 3)]
    items += [{"id": "pair", "candidates": ["a0", "a1"], "answer": 1, "prompt": None},
              {"id": "story", "candidates": ["full0", "full1"], "answer": 0, "prompt": None}]
    bench = Benchmark(Path("."), "cloze", {}, items)
    shared = score_items(bench, units, lm, batch_tokens=64)
    full = score_items(bench, units, lm, batch_tokens=64, share_prefix=False)
    for a, b in zip(shared, full):
        np.testing.assert_allclose(a["ll_sum"], b["ll_sum"], atol=1e-4)
        np.testing.assert_allclose(a["ll_mean"], b["ll_mean"], atol=1e-5)
        assert np.argmax(a["ll_sum"]) == np.argmax(b["ll_sum"])


def test_prefix_batches_respect_budget() -> None:
    from spokenlm.lm.score import prefix_batches

    prefixes = [50, 5, 200, 10, 10, 30]
    endings = [[5, 9], [3], [40, 40, 40], [1, 1], [], [60]]
    batches = list(prefix_batches(prefixes, endings, batch_tokens=120))
    assert sorted(g for b in batches for g in b) == list(range(len(prefixes)))
    for b in batches:
        rows = sum(len(endings[g]) for g in b)
        width = max([0] + [e for g in b for e in endings[g]])
        assert len(b) == 1 or (len(b) * max(prefixes[g] for g in b) <= 120
                               and rows * width <= 120)
