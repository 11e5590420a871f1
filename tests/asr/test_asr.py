"""ASR backends: pocketsphinx on espeak-ng speech, a tiny transformers CTC dir, the registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spokenlm.asr import ASR, load_asr, register_asr
from spokenlm.common.errors import InputError
from spokenlm.eval.edit_distance import wer
from spokenlm.testing.audio import random_speech_like_wav

SENTENCE = "my mother reads a book every morning"


@pytest.fixture(scope="module")
def spoken() -> np.ndarray:
    from spokenlm.data.tts import SPEAKERS, synthesize

    return synthesize(SENTENCE + ".", SPEAKERS[1])  # en-us+f2


def test_pocketsphinx_transcribes_espeak_speech(spoken: np.ndarray) -> None:
    pytest.importorskip("pocketsphinx")
    text = load_asr("pocketsphinx").transcribe(spoken)
    assert wer([SENTENCE], [text]) <= 0.5, text


def test_pocketsphinx_phones_and_alignment(spoken: np.ndarray) -> None:
    pytest.importorskip("pocketsphinx")
    from spokenlm.asr.sphinx import PocketSphinxAligner

    phones = load_asr("pocketsphinx-phones")
    assert phones.unit == "phones" and len(phones.transcribe(spoken).split()) >= 10
    ivs = PocketSphinxAligner().align(spoken, SENTENCE)
    names = [p for _, _, p in ivs if p != "SIL"]
    assert names[:3] == ["M", "AY", "M"]
    starts = [a for a, _, _ in ivs]
    assert starts == sorted(starts) and ivs[-1][1] <= len(spoken) / 16000 + 0.02
    with pytest.raises(InputError, match="dictionary"):
        PocketSphinxAligner().align(spoken, "blorptastic")


def _tiny_ctc_dir(path: Path) -> Path:
    import torch
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor,
                              Wav2Vec2ForCTC, Wav2Vec2Processor)

    path.mkdir(parents=True)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: i + 3 for i, c in enumerate("abcdefgh")}}
    (path / "vocab.json").write_text(json.dumps(vocab))
    tok = Wav2Vec2CTCTokenizer(str(path / "vocab.json"), pad_token="<pad>", unk_token="<unk>",
                               word_delimiter_token="|")
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, return_attention_mask=True)
    Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(path)
    torch.manual_seed(0)
    cfg = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=32, conv_dim=(8,) * 7,
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                         pad_token_id=0)
    Wav2Vec2ForCTC(cfg).save_pretrained(path)
    return path


def test_tiny_ctc_directory_saved_and_loaded(tmp_path: Path) -> None:
    d = _tiny_ctc_dir(tmp_path / "ctc")
    asr = load_asr(str(d))
    assert asr.describe() == f"ctc:{d}" and load_asr(f"ctc:{d}").name == "ctc"
    wavs = [random_speech_like_wav(0.5, seed=1), random_speech_like_wav(1.0, seed=2)]
    texts = asr.transcribe_many(wavs)
    assert len(texts) == 2 and all(set(t) <= set("abcdefgh ") for t in texts)
    assert asr.transcribe(wavs[1]) == texts[1]  # batching (padding) does not change the output


def test_registry_and_errors(tmp_path: Path) -> None:
    @register_asr("echo-test")
    def _echo(arg: str | None) -> ASR:
        class Echo(ASR):
            name = "echo-test"

            def transcribe(self, wav: np.ndarray) -> str:
                return arg or "hello"
        return Echo()

    assert load_asr("echo-test:hi there").transcribe(np.zeros(10)) == "hi there"
    with pytest.raises(InputError, match="unknown backend"):
        load_asr("nope")
