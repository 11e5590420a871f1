"""Speaker encoders (local x-vector model dir; GE2E in tests/eval/test_speaker_ge2e.py) and
resynthesis speaker similarity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.asr import ASR, register_asr
from spokenlm.audio.load import save_wav
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_json, read_jsonl, write_jsonl
from spokenlm.eval.all import evaluate_all
from spokenlm.eval.resynthesis import evaluate_resynthesis
from spokenlm.eval.speaker import SpeakerEncoder, cosine_similarity
from spokenlm.testing.audio import random_speech_like_wav
from spokenlm.testing.encoders import CONV_KERNEL, CONV_STRIDE


def _tiny_xvector_config() -> dict:
    # initializer_range 0.1 keeps the random embeddings far from zero (0.02 gives ~1e-8)
    return dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                conv_dim=(16,) * 7, conv_kernel=CONV_KERNEL, conv_stride=CONV_STRIDE,
                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                tdnn_dim=(16, 16, 16, 16, 32), xvector_output_dim=16, classifier_proj_size=16,
                initializer_range=0.1, hidden_dropout=0.0, attention_dropout=0.0,
                activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0)


@pytest.fixture(scope="module")
def wavlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random WavLMForXVector (group-norm conv) + feature extractor with do_normalize."""
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    path = tmp_path_factory.mktemp("sv") / "wavlm-sv"
    torch.manual_seed(0)
    WavLMForXVector(WavLMConfig(**_tiny_xvector_config())).eval().save_pretrained(path)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def encoder(wavlm_dir: Path) -> SpeakerEncoder:
    return SpeakerEncoder(wavlm_dir, device="cpu", batch_size=2)


def _wav(seconds: float, seed: int) -> np.ndarray:
    return random_speech_like_wav(seconds, seed=seed)


def test_embedding_shape_and_self_similarity(encoder: SpeakerEncoder) -> None:
    wav = _wav(0.5, 0)
    emb = encoder.embed(wav)
    assert emb.shape == (16,) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert encoder.normalize is True and encoder.dim == 16
    assert encoder.similarity(wav, wav.copy()) == pytest.approx(1.0, abs=1e-5)


def test_similarity_symmetric_and_bounded(encoder: SpeakerEncoder) -> None:
    a, b = _wav(0.5, 1), _wav(0.7, 2)
    s_ab, s_ba = encoder.similarity(a, b), encoder.similarity(b, a)
    assert s_ab == pytest.approx(s_ba, abs=1e-6) and -1.0 <= s_ab <= 1.0
    assert s_ab < 1 - 1e-4  # different audio, different embedding
    assert cosine_similarity(np.ones(3), -np.ones(3)) == pytest.approx(-1.0)


def test_embedding_equals_transformers_forward(wavlm_dir: Path, encoder: SpeakerEncoder) -> None:
    from transformers import Wav2Vec2FeatureExtractor, WavLMForXVector

    wav = _wav(0.6, 3)
    fe = Wav2Vec2FeatureExtractor.from_pretrained(wavlm_dir, local_files_only=True)
    model = WavLMForXVector.from_pretrained(wavlm_dir, local_files_only=True).eval()
    values = fe(wav, sampling_rate=16000, return_tensors="pt").input_values  # (1, T) normalised
    with torch.no_grad():
        ref = model(values).embeddings[0].numpy()
    np.testing.assert_allclose(encoder.embed(wav), ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max())


def test_batches_give_the_single_utterance_embedding(encoder: SpeakerEncoder) -> None:
    wavs = [_wav(0.5, 4), _wav(0.7, 5), _wav(0.5, 6), _wav(0.5, 7), _wav(0.4, 8)]
    batched = encoder.embed_many(wavs)  # equal lengths share batches of 2
    single = np.stack([encoder.embed(w) for w in wavs])
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-6 * np.abs(single).max())


def test_wav2vec2_without_preprocessor_config(tmp_path: Path) -> None:
    """No preprocessor_config.json: raw (un-normalised) input, as the model is called."""
    from transformers import Wav2Vec2Config, Wav2Vec2ForXVector

    torch.manual_seed(1)
    model = Wav2Vec2ForXVector(Wav2Vec2Config(**_tiny_xvector_config())).eval()
    model.save_pretrained(tmp_path / "w2v")
    enc = SpeakerEncoder(tmp_path / "w2v", device="cpu")
    wav = _wav(0.5, 9)
    with torch.no_grad():
        ref = model(torch.from_numpy(wav)[None]).embeddings[0].numpy()
    assert enc.normalize is False
    np.testing.assert_allclose(enc.embed(wav), ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max())


def test_clear_errors(tmp_path: Path, encoder: SpeakerEncoder) -> None:
    from transformers import WavLMConfig, WavLMModel

    with pytest.raises(InputError, match="no such directory"):
        SpeakerEncoder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        SpeakerEncoder(tmp_path / "empty")
    WavLMModel(WavLMConfig(**_tiny_xvector_config())).save_pretrained(tmp_path / "ssl")
    with pytest.raises(InputError, match="not an x-vector"):
        SpeakerEncoder(tmp_path / "ssl")
    with pytest.raises(InputError, match=r"mono 16 kHz audio \(T,\)"):
        encoder.embed(np.zeros((2, 8000), np.float32))
    with pytest.raises(InputError, match="receptive field"):
        encoder.embed(np.zeros(encoder.min_samples - 1, np.float32))
    assert encoder.embed(_wav(1.0, 0)[:encoder.min_samples]).shape == (16,)


def test_paired_similarity_marks_short_pairs(encoder: SpeakerEncoder) -> None:
    a, short = _wav(0.5, 10), _wav(0.1, 11)
    sims = encoder.paired_similarity([a, a, short], [a, _wav(0.5, 12), a])
    assert sims[0] == pytest.approx(1.0, abs=1e-5) and sims[1] is not None and sims[2] is None


@register_asr("fixed-speaker-test")
def _fixed(arg: str | None) -> ASR:
    class Fixed(ASR):
        name = "fixed-speaker-test"

        def transcribe(self, wav: np.ndarray) -> str:
            return "the dog runs"
    return Fixed()


@pytest.fixture()
def resynth_dir(tmp_path: Path) -> Path:
    """Row a: the resynthesis is the source itself; row b: another signal."""
    src = save_wav(tmp_path / "src.wav", _wav(0.5, 0))
    other = save_wav(tmp_path / "other.wav", _wav(0.6, 1))
    out = tmp_path / "resynth"
    write_jsonl(out / "resynth.jsonl", [
        {"id": "a", "source": str(src), "path": str(src), "text": "the dog runs"},
        {"id": "b", "source": str(src), "path": str(other), "text": "the cat runs"}])
    return out


def test_resynthesis_reports_speaker_similarity(resynth_dir: Path, wavlm_dir: Path,
                                                tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    m = evaluate_resynthesis(resynth=resynth_dir, asr="fixed-speaker-test", source=False,
                             speaker_encoder=wavlm_dir, output=out)
    block = m["speaker_similarity"]
    rows = read_jsonl(tmp_path / "r.transcripts.jsonl")
    sims = [r["speaker_similarity"] for r in rows]
    assert sims[0] == pytest.approx(1.0, abs=1e-5) and -1.0 <= sims[1] < 1.0
    assert block["n"] == 2 and block["n_too_short"] == 0
    assert block["mean"] == pytest.approx(np.mean(sims)) and block["std"] == pytest.approx(
        np.std(sims))
    assert str(wavlm_dir) in block["encoder"]
    stored = Path(read_json(out)["inputs"]["speaker_encoder"])  # may be stored relative to out
    assert (stored if stored.is_absolute() else out.parent / stored).resolve() == \
        wavlm_dir.resolve()


def test_resynthesis_reports_skip_without_encoder(resynth_dir: Path, tmp_path: Path) -> None:
    m = evaluate_resynthesis(resynth=resynth_dir, asr="fixed-speaker-test",
                             speaker_encoder="none", output=tmp_path / "r.json")
    assert m["speaker_similarity"] == {"skipped": "--speaker-encoder none"}
    assert "speaker_similarity" not in read_jsonl(tmp_path / "r.transcripts.jsonl")[0]
    assert m["inputs"]["speaker_encoder"] == "none"


def test_eval_all_passes_the_speaker_encoder(resynth_dir: Path, wavlm_dir: Path) -> None:
    run = resynth_dir.parent  # <run>/resynth/resynth.jsonl; everything else is skipped
    summary = evaluate_all(run=run, asr="fixed-speaker-test", build=False,
                           speaker_encoder=wavlm_dir)
    assert "mean" in summary["results"]["resynthesis"]["speaker_similarity"]
    assert any(r["metric"] == "resynthesis speaker similarity" and "value" in r
               for r in summary["table"])


def test_a_row_with_unreadable_source_is_skipped_not_misaligned(resynth_dir: Path,
                                                               wavlm_dir: Path,
                                                               tmp_path: Path) -> None:
    rows = read_jsonl(resynth_dir / "resynth.jsonl")
    bad = {"id": "bad", "source": str(tmp_path / "gone.wav"), "path": rows[1]["path"],
           "text": "the cat"}
    write_jsonl(resynth_dir / "resynth.jsonl", [bad, *rows])
    m = evaluate_resynthesis(resynth=resynth_dir, asr="fixed-speaker-test", source=False,
                             speaker_encoder=wavlm_dir, output=tmp_path / "r.json")
    assert m["n_utterances"] == 2 and m["skipped_reasons"]["unreadable source audio"]["count"] == 1
    sims = [r["speaker_similarity"] for r in read_jsonl(tmp_path / "r.transcripts.jsonl")]
    assert sims[0] == pytest.approx(1.0, abs=1e-5)  # row a is still paired with its own source


def test_pairs_without_a_similarity_say_why(resynth_dir: Path, wavlm_dir: Path,
                                            encoder: SpeakerEncoder, tmp_path: Path) -> None:
    short = save_wav(tmp_path / "short.wav", _wav((encoder.min_samples - 10) / 16000, 3))
    write_jsonl(resynth_dir / "resynth.jsonl", [
        {"id": "s", "source": str(short), "path": str(short), "text": "the dog runs"}])
    m = evaluate_resynthesis(resynth=resynth_dir, asr="fixed-speaker-test", source=False,
                             speaker_encoder=wavlm_dir, output=tmp_path / "r.json")
    assert "all 1 utterance pairs skipped" in m["speaker_similarity"]["skipped"]
    row = read_jsonl(tmp_path / "r.transcripts.jsonl")[0]
    assert row["speaker_similarity"] is None and "receptive field" in \
        row["speaker_similarity_reason"]
