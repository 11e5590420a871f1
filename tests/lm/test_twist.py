from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from spokenlm.common.errors import InputError
from spokenlm.lm import UnitLM
from spokenlm.lm.data import BlockStream, load_packed
from spokenlm.lm.train import train_lm
from spokenlm.lm.twist import blocks_state, is_text_lm_dir, is_unit_lm_dir, warm_start
from spokenlm.testing.lm import repetitive_corpus, save_tiny_unit_lm, write_packed_units

K, V = 12, 40  # units, text vocabulary
TINY = dict(seq_len=16, batch_size=4, lr=3e-3, warmup_steps=1, log_every=1, eval_every=0,
            eval_batches=1, save_every=2)


def _text_config(family: str):
    """A tiny random text LM config of ``family`` (vocab V)."""
    import transformers as tf

    if family == "opt":  # word_embed_proj_dim != hidden: project_in / project_out
        return tf.OPTConfig(vocab_size=V, hidden_size=32, word_embed_proj_dim=16, ffn_dim=64,
                            num_hidden_layers=2, num_attention_heads=4,
                            max_position_embeddings=64)
    if family == "gpt2":
        return tf.GPT2Config(vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                             bos_token_id=V - 1, eos_token_id=V - 1)
    if family == "llama":  # untied head
        return tf.LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, max_position_embeddings=64,
                              tie_word_embeddings=False)
    if family == "qwen2":  # tied head
        return tf.Qwen2Config(vocab_size=V, hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, max_position_embeddings=64,
                              tie_word_embeddings=True)
    raise ValueError(family)


def save_text_lm(path: Path, family: str, seed: int = 0) -> Path:
    """Write a tiny random HF causal LM dir (as a user's downloaded checkpoint would be)."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_text_config(family))
    model.save_pretrained(path)
    return path


@pytest.fixture()
def units(tmp_path) -> Path:
    return write_packed_units(tmp_path / "units", repetitive_corpus(24, n_units=K), K)


FAMILIES = {"opt": ("OPTForCausalLM", True), "gpt2": ("GPT2LMHeadModel", True),
            "llama": ("LlamaForCausalLM", False), "qwen2": ("Qwen2ForCausalLM", True)}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_warm_start_keeps_blocks_and_trains(tmp_path, units, family) -> None:
    cls_name, tied = FAMILIES[family]
    text_dir = save_text_lm(tmp_path / "text", family)
    assert is_text_lm_dir(text_dir) and not is_unit_lm_dir(text_dir)
    text = AutoModelForCausalLM.from_pretrained(text_dir)
    lm = warm_start(text_dir, K)
    model = lm.model
    assert type(model).__name__ == cls_name
    assert (lm.unit_offset, lm.bos_id, lm.eos_id, lm.pad_id) == (0, K, K + 1, K + 2)
    assert model.get_input_embeddings().weight.shape[0] == K + 3 == model.config.vocab_size
    assert model.get_output_embeddings().weight.shape[0] == K + 3
    assert (model.get_output_embeddings().weight is model.get_input_embeddings().weight) == tied
    before, after = blocks_state(text), blocks_state(model)
    assert before.keys() == after.keys() and len(after) > 4
    assert all(torch.equal(before[k], after[k]) for k in before)
    if family == "opt":
        assert model.model.decoder.project_in is not None
        assert model.get_input_embeddings().padding_idx == lm.pad_id  # not a unit's row

    run = tmp_path / "run"
    final = train_lm(units=units, output=run, init_from=text_dir, max_steps=3, **TINY)
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["loss"] == r["loss"] for r in rows)  # finite
    hf = AutoModelForCausalLM.from_pretrained(final)
    assert type(hf).__name__ == cls_name and hf.config.vocab_size == K + 3
    assert (hf.get_output_embeddings().weight is hf.get_input_embeddings().weight) == tied
    loaded = UnitLM.from_pretrained(final)
    assert loaded.n_units == K and loaded.unit_offset == 0
    gen = loaded.generate([[0, 3, 6]], max_new_tokens=6, seed=1)[0]
    assert gen and all(0 <= u < K for u in gen)
    assert loaded.log_likelihood([[0, 3, 6]])[0].n == 3


def test_keep_text_vocab_offsets_units(tmp_path, units) -> None:
    text_dir = save_text_lm(tmp_path / "text", "llama")
    text = AutoModelForCausalLM.from_pretrained(text_dir)
    lm = warm_start(text_dir, K, keep_text_vocab=True)
    assert lm.unit_offset == V and (lm.bos_id, lm.eos_id, lm.pad_id) == (V + K, V + K + 1,
                                                                           V + K + 2)
    emb = lm.model.get_input_embeddings().weight
    assert emb.shape[0] == V + K + 3
    assert torch.equal(emb[:V], text.get_input_embeddings().weight)  # text tokens kept
    assert torch.equal(lm.model.lm_head.weight[:V], text.lm_head.weight)
    assert lm.to_tokens([0, 5]) == [V + K, V, V + 5]
    tokens, offsets, _ = load_packed(units)
    block = BlockStream(tokens, offsets, [0, 1], 8, bos_id=lm.bos_id, eos_id=lm.eos_id,
                        unit_offset=lm.unit_offset).block(0, 0)
    assert block[0] == lm.bos_id and all(V <= t < V + K for t in block[1:7])

    final = train_lm(units=units, output=tmp_path / "run", init_from=text_dir,
                     keep_text_vocab=True, max_steps=2, **TINY)
    loaded = UnitLM.from_pretrained(final)
    assert (loaded.unit_offset, loaded.bos_id, loaded.vocab_size) == (V, V + K, V + K + 3)
    gen = loaded.generate([[1, 2]], max_new_tokens=8, temperature=1.5, top_k=0)[0]
    assert gen and all(0 <= u < K for u in gen)  # units only, never a text token
    ll = loaded.log_likelihood([[1, 2, 3]])[0]
    assert ll.n == 3 and ll.sum < 0


def test_mean_and_random_init(tmp_path) -> None:
    text_dir = save_text_lm(tmp_path / "text", "gpt2")
    def emb(model) -> torch.Tensor:
        return model.get_input_embeddings().weight.detach()

    text_emb = emb(AutoModelForCausalLM.from_pretrained(text_dir))
    mean, std = text_emb.mean(0), float(text_emb.std())
    m = emb(warm_start(text_dir, K, init="mean").model)
    assert float((m - mean).abs().max()) < 0.6 * std  # all rows near the mean
    assert not torch.equal(m[0], m[1])  # but not identical
    r = emb(warm_start(text_dir, K, init="random", seed=1).model)
    assert float(r.std()) == pytest.approx(std, rel=0.3)
    r2 = emb(warm_start(text_dir, K, init="random", seed=1).model)
    assert torch.equal(r, r2)  # seeded


def test_warm_started_run_resumes(tmp_path, units) -> None:
    text_dir = save_text_lm(tmp_path / "text", "opt")
    run = tmp_path / "run"
    train_lm(units=units, output=run, init_from=text_dir, max_steps=2, **TINY)
    train_lm(units=units, output=run, init_from=text_dir, max_steps=4, **TINY)
    steps = [json.loads(x)["step"] for x in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_init_from_errors(tmp_path, units) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "hubert"}')  # a speech encoder
    with pytest.raises(InputError, match="neither a spokenlm unit LM dir"):
        train_lm(units=units, output=tmp_path / "r1", init_from=bad, max_steps=1, **TINY)
    with pytest.raises(InputError, match="huggingface-cli download"):
        train_lm(units=units, output=tmp_path / "r2", init_from=tmp_path / "missing",
                 max_steps=1, **TINY)
    unit_dir = save_tiny_unit_lm(tmp_path / "unit_lm", n_units=K)  # still continues a unit LM
    assert is_unit_lm_dir(unit_dir) and not is_text_lm_dir(unit_dir)
    final = train_lm(units=units, output=tmp_path / "r3", init_from=unit_dir, max_steps=1,
                     **TINY)
    assert UnitLM.from_pretrained(final).n_units == K


def _fake_demo_run(run: Path) -> Path:
    """The parts of a `spokenlm demo` run dir the TWIST benchmark reads, in miniature."""
    import numpy as np

    from spokenlm.audio.load import save_wav
    from spokenlm.common.files import write_json, write_jsonl
    from spokenlm.testing.audio import random_speech_like_wav
    from spokenlm.tokenize.encoders import build_encoder
    from spokenlm.tokenize.kmeans import KMeans
    from spokenlm.tokenize.tokenizer import SpeechTokenizer

    encoder = build_encoder({"name": "mfcc"})
    feats = encoder(torch.from_numpy(random_speech_like_wav(2.0))[None])[0]
    kmeans = KMeans.fit(np.asarray(feats.detach(), np.float32), K, seed=0)
    SpeechTokenizer(encoder, kmeans, device="cpu").save_pretrained(run / "tokenizer")
    for split in ("train", "valid", "test"):
        write_jsonl(run / "corpus" / f"{split}.jsonl",
                    [{"id": f"{split}{i}", "text": t} for i, t in
                     enumerate(["the dog runs", "the cat sleeps", f"a {split} bird sings"])])
    write_packed_units(run / "units" / "train", repetitive_corpus(24, n_units=K), K)
    (run / "units" / "train.jsonl").touch()
    bench = run / "bench" / "spot_the_word"
    audio, items = [], []
    for i in range(3):
        for kind in ("word", "pseudo"):
            path = save_wav(bench / "wavs" / f"{i}_{kind}.wav",
                            random_speech_like_wav(0.5, seed=2 * i + (kind == "pseudo")))
            audio.append({"id": f"{i}_{kind}", "path": str(path), "duration": 0.5,
                          "sample_rate": 16000, "num_channels": 1, "text": "dog"})
        items.append({"id": str(i), "candidates": [f"{i}_word", f"{i}_pseudo"], "answer": 0})
    write_jsonl(bench / "manifest.jsonl", audio)
    write_jsonl(bench / "items.jsonl", items)
    write_json(bench / "config.json", {"kind": "spot_the_word"})
    return run


def test_benchmark_script_on_a_tiny_run(tmp_path, capsys) -> None:
    import importlib.util

    script = Path(__file__).parents[2] / "benchmarks" / "twist.py"
    spec = importlib.util.spec_from_file_location("twist_benchmark", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    run = _fake_demo_run(tmp_path / "run")
    report = bench.main(["--run", str(run), "--size", "tiny", "--text-steps", "2",
                         "--unit-steps", "2", "--extra-sentences", "20", "--seq-len", "16",
                         "--batch-size", "4", "--acceptability-items", "0"])
    out = capsys.readouterr()
    assert "| TWIST warm start |" in out.out and "acceptability: absent" in out.err
    assert set(report["results"]) == {"cold", "warm"}
    assert report["results"]["warm"]["spot_the_word"]["n_items"] == 3
    assert json.loads((run / "twist" / "results.json").read_text())["unit_lm"]["steps"] == 2
    lines = (run / "twist" / "text_lm_sentences.txt").read_text().splitlines()
    assert lines[:3] == ["the dog runs", "the cat sleeps", "a train bird sings"]
    assert lines.count("the dog runs") == 1 and "a test bird sings" not in lines
    assert len(lines) > 3 + 10  # unspoken grammar sentences
