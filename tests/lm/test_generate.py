from __future__ import annotations

import pytest
import torch

from spokenlm.lm.sampling import filter_logits
from spokenlm.testing.lm import tiny_unit_lm

PROMPTS = [[1, 2, 3], [5], [7, 8, 9, 10, 11, 12, 13], []]


@pytest.fixture(scope="module")
def lm():
    return tiny_unit_lm(20, seed=2, tie_word_embeddings=False, initializer_range=0.3)


def _greedy_full_forward(lm, prompt: list[int], n: int) -> list[int]:
    """Greedy decoding by re-running the whole sequence each step (no KV cache)."""
    tokens, out = lm.to_tokens(prompt), []
    for _ in range(n):
        with torch.no_grad():
            logits = lm.model(input_ids=torch.tensor([tokens])).logits[0, -1]
        logits[lm.n_units:] = float("-inf")
        tokens.append(int(logits.argmax()))
        out.append(tokens[-1])
    return out


def test_greedy_batched_equals_single(lm) -> None:
    batched = lm.generate(PROMPTS, max_new_tokens=16, temperature=0, stop_at_eos=False)
    single = [lm.generate([p], max_new_tokens=16, temperature=0, stop_at_eos=False)[0]
              for p in PROMPTS]
    assert batched == single
    assert all(len(x) == 16 for x in batched)
    assert len({tuple(x) for x in batched}) > 1


def test_kv_cache_equals_full_forward(lm) -> None:
    got = lm.generate(PROMPTS, max_new_tokens=12, temperature=0, stop_at_eos=False)
    assert got == [_greedy_full_forward(lm, p, 12) for p in PROMPTS]


def test_sampling_is_deterministic_by_seed(lm) -> None:
    a = lm.generate(PROMPTS, max_new_tokens=20, seed=7, stop_at_eos=False)
    b = lm.generate(PROMPTS, max_new_tokens=20, seed=7, stop_at_eos=False)
    c = lm.generate(PROMPTS, max_new_tokens=20, seed=8, stop_at_eos=False)
    assert a == b and a != c


def test_never_emits_special_tokens_and_stops_at_eos() -> None:
    lm = tiny_unit_lm(20, seed=0)
    boost = torch.zeros(lm.vocab_size)
    boost[lm.n_units:] = 100.0  # BOS/EOS/PAD by far the likeliest tokens
    hook = lm.model.lm_head.register_forward_hook(lambda m, i, out: out + boost)
    try:
        out = lm.generate(PROMPTS, max_new_tokens=10, temperature=1.0, top_k=0,
                          stop_at_eos=False)
        assert all(len(x) == 10 and all(0 <= u < 20 for u in x) for x in out)
        assert lm.generate(PROMPTS, max_new_tokens=10, temperature=0) == [[]] * len(PROMPTS)
        boost[lm.eos_id] = 0.0
        out = lm.generate(PROMPTS, max_new_tokens=10, temperature=0)
        assert all(len(x) == 10 and all(0 <= u < 20 for u in x) for x in out)
    finally:
        hook.remove()


def test_filter_logits_top_k_top_p() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(filter_logits(logits, top_k=2))
    assert kept.tolist() == [[True, True, False, False]]
    kept = torch.isfinite(filter_logits(logits, top_p=0.7))
    assert kept.tolist() == [[True, True, False, False]]
    kept = torch.isfinite(filter_logits(logits, top_p=0.1))
    assert kept.tolist() == [[True, False, False, False]]
