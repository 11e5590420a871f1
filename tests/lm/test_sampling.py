"""``SamplingOptions``: every setting of a draw in one frozen dataclass, its defaults written
once (the CLI's come from it), invalid values refused naming the flag, and passed whole it
draws what the loose keyword arguments draw."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from spokenlm.common.errors import InputError
from spokenlm.lm import SamplingOptions
from spokenlm.lm.interleaved_score import sample_restricted
from spokenlm.lm.sampling import filter_logits
from spokenlm.testing.lm import tiny_unit_lm

PROMPTS = [[1, 2, 3], [5], [7, 8, 9, 10, 11, 12, 13], []]
FIELDS = [f.name for f in dataclasses.fields(SamplingOptions)]


@pytest.fixture(scope="module")
def lm():
    return tiny_unit_lm(20, seed=2, tie_word_embeddings=False, initializer_range=0.3)


def test_fields_defaults_and_docstrings() -> None:
    assert FIELDS == ["max_new_tokens", "temperature", "top_k", "top_p",
                      "repetition_penalty", "stop_at_eos", "seed"]
    assert dataclasses.asdict(SamplingOptions()) == {
        "max_new_tokens": 150, "temperature": 0.8, "top_k": 25, "top_p": 1.0,
        "repetition_penalty": 1.0, "stop_at_eos": True, "seed": 0}
    import inspect

    source = inspect.getsource(SamplingOptions)
    for name in FIELDS:  # each field is followed by its own docstring
        line = next(ln for ln in source.splitlines() if ln.strip().startswith(f"{name}:"))
        after = source[source.index(line):].split("\n")
        assert any(ln.strip().startswith('"""') for ln in after[1:6]), name


def test_frozen() -> None:
    opts = SamplingOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.temperature = 0.0  # type: ignore[misc]
    assert opts.replace(temperature=0.0).temperature == 0.0 and opts.temperature == 0.8
    assert hash(opts) == hash(SamplingOptions())


def test_cli_defaults_are_the_dataclass_defaults() -> None:
    from spokenlm.cli.main import build_parser
    from spokenlm.eval.cross_modal import CrossModalOptions
    from spokenlm.pipeline.generate import GenerateOptions

    ns = build_parser().parse_args(["generate", "x.wav", "--tokenizer", "t", "--lm", "l"])
    assert {k: getattr(ns, k) for k in FIELDS} == dataclasses.asdict(SamplingOptions())
    assert GenerateOptions(prompt="x", tokenizer="t", lm="l").sampling == SamplingOptions()
    ns = build_parser().parse_args(["generate", "x.wav", "--tokenizer", "t", "--lm", "l",
                                    "--temperature", "0", "--top-k", "3", "--top-p", "0.5",
                                    "--max-new-tokens", "7", "--no-stop-at-eos", "--seed", "4",
                                    "--repetition-penalty", "1.1"])
    from spokenlm.common.options import options_from_namespace

    got = options_from_namespace(GenerateOptions, ns).sampling
    assert got == SamplingOptions(max_new_tokens=7, temperature=0.0, top_k=3, top_p=0.5,
                                  repetition_penalty=1.1, stop_at_eos=False, seed=4)
    # eval cross-modal keeps its own flags (tokens of either modality, 60 new ones); the
    # rest of its defaults are SamplingOptions'
    cm = CrossModalOptions(benchmark="b", tokenizer="t", lm="l")
    assert cm.sampling == SamplingOptions(max_new_tokens=60)
    ns = build_parser().parse_args(["eval", "cross-modal", "b", "--tokenizer", "t",
                                    "--lm", "l"])
    assert (ns.temperature, ns.top_k, ns.seed, ns.max_new_tokens) == (0.8, 25, 0, 60)


@pytest.mark.parametrize("bad, flag", [
    (dict(temperature=-0.1), "--temperature"),
    (dict(top_p=0.0), "--top-p"),
    (dict(top_p=1.5), "--top-p"),
    (dict(top_p=float("nan")), "--top-p"),
    (dict(top_k=-1), "--top-k"),
    (dict(max_new_tokens=-1), "--max-new-tokens"),
    (dict(repetition_penalty=0.0), "--repetition-penalty"),
])
def test_invalid_values_name_the_flag(bad: dict, flag: str, tmp_path) -> None:
    with pytest.raises(InputError, match=f"^{flag} "):
        SamplingOptions(**bad)
    with pytest.raises(InputError, match=flag):
        SamplingOptions().replace(**bad)
    with pytest.raises(InputError, match=flag):  # loose keywords, as older callers pass
        tiny_unit_lm(20).generate([[1]], **bad)
    from spokenlm.pipeline.generate import generate as generate_command

    with pytest.raises(InputError, match=flag):  # before any file is read
        generate_command(prompt=tmp_path / "x.wav", tokenizer=tmp_path / "t",
                         lm=tmp_path / "l", output=tmp_path / "out", **bad)


def test_cli_refuses_a_bad_value_in_one_line(capsys) -> None:
    from spokenlm.cli.main import main

    assert main(["generate", "x.wav", "--tokenizer", "t", "--lm", "l",
                 "--temperature", "-1"]) == 1
    err = capsys.readouterr().err
    assert "--temperature -1.0: must be >= 0" in err and len(err.strip().splitlines()) == 1
    from spokenlm.eval.cross_modal import evaluate_cross_modal

    with pytest.raises(InputError, match="--top-k"):
        evaluate_cross_modal(benchmark="missing", tokenizer="t", lm="l", top_k=-2)


def test_unknown_or_positional_loose_settings_are_refused(lm) -> None:
    with pytest.raises(TypeError, match="unknown sampling settings"):
        lm.generate(PROMPTS, temprature=0.5)
    with pytest.raises(TypeError, match="SamplingOptions"):
        lm.generate(PROMPTS, 150)


def test_seeded_options_are_reproducible_and_equal_the_loose_arguments(lm) -> None:
    opts = SamplingOptions(max_new_tokens=20, seed=7, stop_at_eos=False)
    a, b = lm.generate(PROMPTS, opts), lm.generate(PROMPTS, opts)
    assert a == b and all(len(x) == 20 for x in a)
    assert a == lm.generate(PROMPTS, max_new_tokens=20, seed=7, stop_at_eos=False)
    assert lm.generate(PROMPTS, opts.replace(seed=8)) != a
    assert lm.generate(PROMPTS, opts, seed=8) == lm.generate(PROMPTS, opts.replace(seed=8))
    mixed = SamplingOptions(max_new_tokens=24, temperature=1.3, top_k=6, top_p=0.9,
                            repetition_penalty=1.2, seed=5)
    loose = dataclasses.asdict(mixed)
    assert lm.generate(PROMPTS, mixed) == lm.generate(PROMPTS, **loose)
    assert lm.generate(PROMPTS, mixed, batch_size=1) == lm.generate(PROMPTS, batch_size=1,
                                                                    **loose)
    greedy = SamplingOptions(max_new_tokens=12, temperature=0, stop_at_eos=False)
    assert lm.generate(PROMPTS, greedy) == lm.generate(PROMPTS, greedy.replace(seed=99))


def _reference_sample(lm, prompt: list[int], opts: SamplingOptions) -> list[int]:
    """One prompt, whole sequence re-run each step (no KV cache), draws as the sampler's."""
    generator = torch.Generator().manual_seed(opts.seed)
    tokens, out = lm.to_tokens(prompt), []
    for _ in range(opts.max_new_tokens):
        with torch.no_grad():
            logits = lm.model(input_ids=torch.tensor([tokens])).logits[:, -1].float()
        logits[:, lm.n_units:] = float("-inf")  # units only (no EOS: stop_at_eos off)
        logits = filter_logits(logits / opts.temperature, opts.top_k, opts.top_p)
        token = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
        tokens.append(token)
        out.append(token)
    return out


def test_sampled_continuation_matches_a_reference_loop(lm) -> None:
    opts = SamplingOptions(max_new_tokens=16, temperature=1.0, top_k=8, top_p=0.95, seed=3,
                           stop_at_eos=False)
    for prompt in PROMPTS[:3]:
        assert lm.generate([prompt], opts) == [_reference_sample(lm, prompt, opts)]


def test_restricted_sampling_takes_the_options_whole() -> None:
    model = tiny_unit_lm(12).model.eval()
    opts = SamplingOptions(max_new_tokens=20, temperature=2.0, top_k=0)

    def draw(*args, **kwargs) -> list[int]:
        return sample_restricted(model, [12, 3], [2, 5], 13, *args,
                                 generator=torch.Generator().manual_seed(0), **kwargs)

    whole = draw(opts)
    assert whole and set(whole) <= {2, 5}
    assert whole == draw(max_new_tokens=20, temperature=2.0, top_k=0)
    no_eos = draw(opts.replace(stop_at_eos=False, max_new_tokens=30))
    assert len(no_eos) == 30 and set(no_eos) <= {2, 5}
    seeded = sample_restricted(model, [12, 3], [2, 5, 7], 13, opts.replace(seed=4))
    assert seeded == sample_restricted(model, [12, 3], [2, 5, 7], 13, opts.replace(seed=4))
