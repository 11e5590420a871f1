from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from spokenlm.common.errors import InputError
from spokenlm.lm import UnitLM
from spokenlm.lm.text_lm import TOKENIZER_FILE, TextTokenizer, pretrain_text_lm, read_text
from spokenlm.lm.train import train_lm
from spokenlm.lm.twist import is_text_lm_dir, is_unit_lm_dir
from spokenlm.testing.checkpoints import truncate_checkpoint
from spokenlm.testing.lm import repetitive_corpus, write_packed_units

TINY = dict(size="tiny", seq_len=16, batch_size=4, lr=3e-3, warmup_steps=1, save_every=10,
            eval_every=10)


def test_tokenizer_word_and_char(tmp_path) -> None:
    tok = TextTokenizer.fit(["The dog runs.", "the cats run"], "word")
    assert tok.symbols[:2] == ["<unk>", "the"]
    ids = tok.encode("the dog sleeps .")
    assert ids[-2] == 0 and tok.decode(ids) == "the dog <unk> ."
    back = TextTokenizer.load(tok.save(tmp_path / "t.json"))
    assert back.symbols == tok.symbols and back.encode("the dog") == tok.encode("the dog")
    chars = TextTokenizer.fit(["ab a"], "char")
    assert chars.decode(chars.encode("ba a")) == "ba a"


def test_read_text_forms(tmp_path) -> None:
    (tmp_path / "t.txt").write_text("one two\n\n three \n")
    assert read_text(tmp_path / "t.txt") == ["one two", "three"]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.jsonl").write_text(json.dumps({"id": "a", "text": "the dog runs"}) + "\n")
    assert read_text(corpus) == ["the dog runs"]
    with pytest.raises(InputError, match="train.jsonl"):
        read_text(tmp_path)
    with pytest.raises(InputError, match="not found"):
        read_text(tmp_path / "nope.txt")


def test_pretrain_then_warm_start(tmp_path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("\n".join(["the dog runs", "the cats sleep", "a bird sings"] * 10))
    final = pretrain_text_lm(text=text, output=tmp_path / "text_lm", extra_sentences=30,
                             max_steps=4, **TINY)
    assert final == tmp_path / "text_lm" / "final"
    assert is_text_lm_dir(final) and not is_unit_lm_dir(final)
    tok = TextTokenizer.load(final / TOKENIZER_FILE)
    assert "dog" in tok.symbols and len(tok) > 10  # corpus + grammar words
    model = AutoModelForCausalLM.from_pretrained(final)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == len(tok) + 3
    rows = [json.loads(x) for x in (tmp_path / "text_lm" / "run" / "log.jsonl").read_text()
            .splitlines()]
    assert rows[-1]["step"] == 4

    units = write_packed_units(tmp_path / "units", repetitive_corpus(16, n_units=12), 12)
    unit_final = train_lm(units=units, output=tmp_path / "unit_run", init_from=final,
                          max_steps=2, **TINY)
    lm = UnitLM.from_pretrained(unit_final)
    assert lm.n_units == 12 and lm.vocab_size == 15


def test_pretrain_resumes_past_a_damaged_checkpoint(tmp_path, capsys) -> None:
    from safetensors.torch import load_file

    text = tmp_path / "text.txt"
    text.write_text("\n".join(["the dog runs", "the cats sleep", "a bird sings"] * 10))
    opts = dict(text=text, output=tmp_path / "text_lm", max_steps=4, **{**TINY, "save_every": 2})
    straight = load_file(pretrain_text_lm(**opts) / "model.safetensors")
    truncate_checkpoint(tmp_path / "text_lm" / "run", 4, "trainer_state.pt")
    capsys.readouterr()
    resumed = load_file(pretrain_text_lm(**opts) / "model.safetensors")
    said = "".join(capsys.readouterr())
    assert "skipping checkpoint" in said and "step_00000004" in said
    assert "resuming from step_00000002" in said
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_pretrained_text_lm_scores_text_for_eval(tmp_path) -> None:
    """A `lm pretrain-text` dir is a --text-lm for PPX / GenPPL (its own tokenizer file)."""
    import math

    from spokenlm.eval.textlm import TextLM

    text = tmp_path / "text.txt"
    text.write_text("\n".join(["the dog runs", "the cats sleep"] * 10))
    final = pretrain_text_lm(text=text, output=tmp_path / "text_lm", max_steps=2, **TINY)
    tlm = TextLM(final, device="cpu")
    (nll, n), = tlm.nll(["the dog runs"])
    assert n == 3  # BOS + 3 words: every word scored
    tok = TextTokenizer.load(final / TOKENIZER_FILE)
    ids = torch.tensor([[tlm.model.config.bos_token_id, *tok.encode("the dog runs")]])
    with torch.no_grad():
        logp = torch.log_softmax(tlm.model(ids).logits[0, :-1], -1)
    assert nll == pytest.approx(-float(logp.gather(1, ids[0, 1:, None]).sum()), rel=1e-5)
    assert math.isfinite(tlm.perplexity(["the cats sleep", "the dog sleeps"]))
