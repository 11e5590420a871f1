from __future__ import annotations

import pytest
import torch

from spokenlm.lm.sampling import filter_logits, repetition_penalty
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


# ---- repetition penalty ------------------------------------------------------------------

def _boosted(lm, boost: dict[int, float]):
    """A forward hook adding ``boost`` (token id -> logit) to the head: its greedy choices."""
    add = torch.zeros(lm.vocab_size)
    for token, value in boost.items():
        add[token] = value
    return lm.model.lm_head.register_forward_hook(lambda m, i, out: out + add)


def _greedy_penalised(lm, prompt: list[int], n: int, penalty: float) -> list[int]:
    """Greedy decoding by a full forward per step, with the CTRL penalty written out on every
    token of the sequence so far (a reference independent of the KV-cache loop)."""
    tokens, out = lm.to_tokens(prompt), []
    for _ in range(n):
        with torch.no_grad():
            logits = lm.model(input_ids=torch.tensor([tokens])).logits[0, -1].clone()
        for t in set(tokens):
            logits[t] = logits[t] * penalty if logits[t] < 0 else logits[t] / penalty
        logits[lm.n_units:] = float("-inf")
        tokens.append(int(logits.argmax()))
        out.append(tokens[-1])
    return out


def test_repetition_penalty_moves_greedy_off_a_repeated_unit() -> None:
    lm = tiny_unit_lm(20, seed=1)
    prompts = [[1, 2], [9], [5, 6, 7, 8]]
    hook = _boosted(lm, {3: 6.0, 4: 4.0, 11: 3.0})  # greedy: unit 3 forever
    try:
        plain = lm.generate(prompts, max_new_tokens=8, temperature=0, stop_at_eos=False)
        assert plain == [[3] * 8] * len(prompts)
        got = lm.generate(prompts, max_new_tokens=8, temperature=0, stop_at_eos=False,
                          repetition_penalty=2.0)
        assert got == [_greedy_penalised(lm, p, 8, 2.0) for p in prompts]
        assert all(len(set(g)) > 1 and g[:2] == [3, 4] for g in got)
        prompt_has_3 = lm.generate([[3]], max_new_tokens=1, temperature=0,
                                   repetition_penalty=2.0)
        assert prompt_has_3 == [[4]]  # the prompt's units count as already said
        sampled = lm.generate(prompts, max_new_tokens=8, temperature=1.0, top_k=3, seed=4,
                              stop_at_eos=False, repetition_penalty=2.0)
        assert all(len(set(s)) > 1 for s in sampled)
    finally:
        hook.remove()


def test_repetition_penalty_one_is_todays_decoding(lm) -> None:
    got = lm.generate(PROMPTS, max_new_tokens=12, temperature=0, stop_at_eos=False,
                      repetition_penalty=1.0)
    assert got == [_greedy_full_forward(lm, p, 12) for p in PROMPTS]
    assert got == [_greedy_penalised(lm, p, 12, 1.0) for p in PROMPTS]
    sampled = dict(max_new_tokens=20, seed=7, stop_at_eos=False)
    assert lm.generate(PROMPTS, **sampled) == lm.generate(PROMPTS, repetition_penalty=1.0,
                                                          **sampled)
    logits = torch.randn(2, 6)
    assert repetition_penalty(logits, torch.ones(2, 6, dtype=torch.bool), 1.0) is logits


def test_repetition_penalty_formula() -> None:
    logits = torch.tensor([[2.0, -2.0, 0.5, -0.5]])
    seen = torch.tensor([[True, True, False, False]])
    assert repetition_penalty(logits, seen, 2.0).tolist() == [[1.0, -4.0, 0.5, -0.5]]
    with pytest.raises(ValueError, match="> 0"):
        tiny_unit_lm(20).generate([[1]], max_new_tokens=1, repetition_penalty=0.0)


def test_generate_command_takes_repetition_penalty(tmp_path) -> None:
    from spokenlm.cli.main import build_parser
    from spokenlm.common.errors import InputError
    from spokenlm.pipeline.generate import GenerateOptions, generate as generate_command

    assert GenerateOptions.__dataclass_fields__["sampling"].default.repetition_penalty == 1.0
    ns = build_parser().parse_args(["generate", "x.wav", "--tokenizer", "t", "--lm", "l",
                                    "--repetition-penalty", "1.1"])
    assert ns.repetition_penalty == 1.1
    with pytest.raises(InputError, match="--repetition-penalty"):
        generate_command(prompt=tmp_path / "x.wav", tokenizer=tmp_path / "t",
                         lm=tmp_path / "l", output=tmp_path / "out", repetition_penalty=-1.0)
