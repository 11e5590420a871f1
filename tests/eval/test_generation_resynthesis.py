"""Generation metrics, resynthesis WER and `eval all` on tiny, hand-made run outputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import pytest

from spokenlm.asr import ASR, register_asr
from spokenlm.audio.load import save_wav
from spokenlm.common.files import read_json, write_jsonl
from spokenlm.common.paths import resolve_path
from spokenlm.eval.all import evaluate_all
from spokenlm.eval.generation import evaluate_generation, sequence_metrics
from spokenlm.eval.resynthesis import evaluate_resynthesis
from spokenlm.testing.audio import random_speech_like_wav

WORDS = "the dog cat runs sees a".split()


@register_asr("fixed-test")
def _fixed(arg: str | None) -> ASR:
    class Fixed(ASR):
        name = "fixed-test"

        def transcribe(self, wav: np.ndarray) -> str:
            return arg or "the dog runs"
    return Fixed()


def _text_lm(path: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<bos>": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<bos>", unk_token="<unk>"
                            ).save_pretrained(path)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_embd=16, n_layer=1, n_head=2,
                               n_positions=64, bos_token_id=1, eos_token_id=1)
                    ).save_pretrained(path)
    return path


@pytest.fixture()
def generations(tmp_path: Path) -> Path:
    out = tmp_path / "generate"
    rows = []
    for i in range(3):
        wav = save_wav(out / f"g{i}.wav", random_speech_like_wav(0.5, seed=i))
        rows.append({"id": f"g{i}", "prompt_units": [1, 2, 3], "units": [4, 5, 4, 5, i],
                     "path": str(wav), "continuation_path": str(wav), "text": "x"})
    write_jsonl(out / "generations.jsonl", rows)
    return out


def test_sequence_metrics_values() -> None:
    m = sequence_metrics([[1, 2, 1, 2], [1, 2, 1, 2]], n_symbols=4)
    assert m["self_bleu2"] == pytest.approx(1.0)
    assert m["auto_bleu2"] == pytest.approx(math.sqrt(2 / 3))
    assert m["distinct_1"] == pytest.approx(2 / 8) and m["entropy_bits"] == pytest.approx(1.0)
    assert m["entropy_normalised"] == pytest.approx(0.5) and m["mean_length"] == 4


def test_generation_eval(generations: Path, lm_dir: Path, tmp_path: Path) -> None:
    m = evaluate_generation(generations=generations, lm=lm_dir, asr="fixed-test",
                            text_lm=_text_lm(tmp_path / "tlm"), output=tmp_path / "gen.json")
    assert m["n_samples"] == 3 and 1.0 < m["unit_perplexity"] < 1000
    assert m["units"]["entropy_normalised"] <= 1.0
    assert m["transcripts"]["self_bleu2"] == pytest.approx(1.0)  # identical transcripts
    assert m["ppx"] > 1 and m["gen_ppl"] > 1 and m["asr"] == "fixed-test"
    inputs = read_json(tmp_path / "gen.json")["inputs"]  # relative to gen.json in its run
    assert resolve_path(inputs["lm"], tmp_path / "gen.json") == lm_dir


def test_resynthesis_eval(tmp_path: Path) -> None:
    wav = save_wav(tmp_path / "a.wav", random_speech_like_wav(0.5))
    write_jsonl(tmp_path / "resynth.jsonl", [
        {"id": "a", "source": str(wav), "path": str(wav), "text": "The dog runs."},
        {"id": "b", "source": str(wav), "path": str(wav), "text": "the cat runs"}])
    m = evaluate_resynthesis(resynth=tmp_path, asr="fixed-test", output=tmp_path / "r.json")
    assert m["wer"] == pytest.approx(1 / 6) and m["source_wer"] == pytest.approx(1 / 6)
    assert m["cer"] == pytest.approx(3 / (12 + 12))
    assert (tmp_path / "r.transcripts.jsonl").exists()


def test_eval_all_runs_what_is_there(generations: Path, tokenizer_dir: Path, lm_dir: Path,
                                     tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tokenizer_dir, run / "tokenizer")
    shutil.copytree(lm_dir, run / "lm" / "final")
    shutil.copytree(generations, run / "generate")
    summary = evaluate_all(run=run, asr="fixed-test", build=False)
    res = summary["results"]
    assert "units" in res["generation"] and "unit_perplexity" in res["generation"]
    for name in ("pnmi", "abx_phone", "spot_the_word", "acceptability", "resynthesis"):
        assert "skipped" in res[name], name
    table = capsys.readouterr().out
    assert "| generation unit VERT |" in table and "skipped" in table
    assert (run / "eval" / "all.json").exists()


def test_eval_all_aligns_with_a_ctc_phoneme_model(tmp_path: Path) -> None:
    """``--aligner``: a spokenlm CTC phoneme model aligns every test utterance (no
    pocketsphinx), and PNMI runs on those alignments."""
    from spokenlm.asr.ctc_model import CTCConfig, CTCModel
    from spokenlm.asr.text import Vocab
    from spokenlm.audio.load import load_audio
    from spokenlm.common.files import iter_jsonl
    from spokenlm.testing.audio import write_test_manifest, write_wav_folder
    from spokenlm.tokenize.encoders.base import num_frames

    run = tmp_path / "run"
    wavs = write_wav_folder(run / "corpus" / "wavs", n=3, seed=4, seconds=(0.6, 0.9))
    phones = ["d ɑː ɡ", "k æ t | s æ t", "ɡ oʊ"]
    test = write_test_manifest(run / "corpus" / "test.jsonl", wavs, text=["dog", "cat sat",
                                                                          "go"], phonemes=phones)
    units = []
    for i, r in enumerate(iter_jsonl(test)):
        n = num_frames(len(load_audio(r["path"])))
        units.append({"id": r["id"], "units": [(i + k) % 4 for k in range(n)]})
    write_jsonl(run / "units" / "test.jsonl", units)
    inventory = ["<blank>", "d", "ɑː", "ɡ", "k", "æ", "t", "s", "oʊ"]
    torch.manual_seed(0)
    aligner = CTCModel(CTCConfig(adapter_layers=1, adapter_dim=32),
                       Vocab(inventory, "phonemes")).save_pretrained(tmp_path / "aligner")
    summary = evaluate_all(run=run, asr="fixed-test", build=False, aligner=aligner)
    res = summary["results"]
    assert res["alignment"]["aligner"] == str(aligner)
    rows = list(iter_jsonl(run / "eval" / "alignments.jsonl"))
    assert len(rows) == 3
    assert [iv[2] for iv in rows[1]["intervals"] if iv[2] != "sil"] == \
        ["k", "æ", "t", "s", "æ", "t"]
    assert "pnmi" in res["pnmi"] and "skipped" not in res["pnmi"]
