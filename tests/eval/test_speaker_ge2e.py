"""GE2E speaker encoder (Resemblyzer's weights format and preprocessing), the
``--speaker-encoder`` specs, and GE2E as the resynthesis default."""

from __future__ import annotations

import importlib.metadata
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.audio.load import save_wav
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl, write_jsonl
from spokenlm.eval import speaker_ge2e
from spokenlm.eval.resynthesis import evaluate_resynthesis
from spokenlm.eval.speaker import load_speaker_encoder
from spokenlm.eval.speaker_ge2e import (GE2EEncoder, load_ge2e_network, normalize_volume,
                                        partial_slices, resemblyzer_weights, speech_mask)
from spokenlm.testing.audio import random_speech_like_wav

SR = 16000
REAL = resemblyzer_weights()
needs_real = pytest.mark.skipif(REAL is None, reason="Resemblyzer (its pretrained.pt) missing")


def save_tiny_ge2e(path: Path, hidden: int = 12, dim: int = 8, layers: int = 2,
                   seed: int = 0) -> Path:
    """A random GE2E voice encoder saved as Resemblyzer saves one (``step``, ``model_state``
    with the GE2E loss scalars, ``optimizer_state``)."""
    torch.manual_seed(seed)
    lstm, linear = torch.nn.LSTM(40, hidden, layers, batch_first=True), torch.nn.Linear(hidden, dim)
    state = {"similarity_weight": torch.tensor([10.0]), "similarity_bias": torch.tensor([-5.0]),
             **{f"lstm.{k}": v for k, v in lstm.state_dict().items()},
             **{f"linear.{k}": v for k, v in linear.state_dict().items()}}
    torch.save({"step": 7, "model_state": state, "optimizer_state": {"state": {}}}, path)
    return path


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_ge2e(tmp_path_factory.mktemp("ge2e") / "pretrained.pt")


@pytest.fixture(scope="module")
def tiny(tiny_path: Path) -> GE2EEncoder:
    return GE2EEncoder(tiny_path, device="cpu", batch_size=3)


def _speech_with_pause(seed: int, pause_s: float = 1.0) -> np.ndarray:
    a, b = random_speech_like_wav(0.8, seed=seed), random_speech_like_wav(0.9, seed=seed + 1)
    return np.concatenate([a, np.zeros(int(pause_s * SR), np.float32), b])


def test_partial_slices_follow_embed_utterance() -> None:
    # 1 s: 101 frames, one partial (kept although it covers 62.5 %: it is the only one)
    assert partial_slices(SR) == [(0, 160)]
    # 2.5 s: 251 frames; partials every 77 frames; the third covers 60 % < 75 %, dropped
    assert partial_slices(40000) == [(0, 160), (77, 237)]
    assert partial_slices(45000) == [(0, 160), (77, 237), (154, 314)]  # 80 % covered
    assert partial_slices(0) == [(0, 160)]


def test_volume_normalisation_and_speech_mask() -> None:
    quiet = 0.001 * np.ones(1000, np.float32)
    out = normalize_volume(quiet)
    assert 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2))) == pytest.approx(-30.0)
    loud = 0.5 * np.ones(10, np.float32)
    assert normalize_volume(loud) is loud and not normalize_volume(np.zeros(5)).any()
    # 8-window vote (> 4 needed), then speech widened by 3 windows each side
    flags = np.zeros(40, bool)
    flags[10:15] = True  # window j counts windows j-3..j+4: 5 votes at 10..13, 4 at 9 and 14
    mask = speech_mask(flags)
    assert np.nonzero(mask)[0].tolist() == list(range(7, 17))
    assert not speech_mask(np.r_[np.zeros(10, bool), np.ones(4, bool), np.zeros(10, bool)]).any()


def test_vad_trims_a_long_pause(tiny: GE2EEncoder) -> None:
    if tiny.vad is None:
        pytest.skip("webrtcvad missing")
    wav = _speech_with_pause(0, pause_s=1.5)
    kept = tiny.preprocess(wav)
    # the pause goes except about 90 ms of widening each side (and the VAD's own hangover)
    assert len(wav) - 1.5 * SR < len(kept) < len(wav) - 1.0 * SR
    assert len(tiny.preprocess(random_speech_like_wav(1.0))) >= 0.9 * SR  # speech stays


def test_mel_is_a_centred_power_spectrogram(tiny: GE2EEncoder) -> None:
    wav = random_speech_like_wav(0.3, seed=4)
    n = len(wav) // 160 + 1
    padded = np.pad(wav.astype(np.float64), (200, 200))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)  # periodic Hann
    frames = np.stack([padded[160 * j:160 * j + 400] * window for j in range(n)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (N, 201)
    ref = power @ tiny.fb.double().numpy().T  # (N, 40)
    mel = tiny.mel(wav).double().numpy()
    assert mel.shape == (n, 40)
    np.testing.assert_allclose(mel, ref, rtol=1e-3, atol=1e-6 * ref.max())


def test_embedding_is_the_normalised_mean_of_partials(tiny: GE2EEncoder) -> None:
    wav = random_speech_like_wav(3.0, seed=5)
    emb = tiny.embed(wav)
    assert emb.shape == (8,) and emb.dtype == np.float32
    with torch.no_grad():
        parts = tiny.net(tiny.partials(tiny.preprocess(wav)))  # (P, 8), each unit norm
    assert len(parts) == len(partial_slices(len(tiny.preprocess(wav)))) > 2
    assert (parts >= 0).all() and torch.allclose(parts.norm(dim=1), torch.ones(len(parts)))
    mean = parts.mean(0)
    np.testing.assert_allclose(emb, (mean / mean.norm()).numpy(), rtol=1e-5, atol=1e-6)
    # partials of several utterances share batches (batch_size 3) without mixing
    wavs = [random_speech_like_wav(s, seed=i) for i, s in enumerate([0.5, 2.5, 1.2, 0.05])]
    batched = tiny.embed_many(wavs)
    np.testing.assert_allclose(batched, np.stack([tiny.embed(w) for w in wavs]), atol=1e-6)


def test_no_speech_gives_no_similarity(tiny: GE2EEncoder) -> None:
    if tiny.vad is None:
        pytest.skip("webrtcvad missing")
    silent = np.zeros(SR, np.float32)
    assert np.isnan(tiny.embed(silent)).all()
    speech = random_speech_like_wav(1.0)
    assert tiny.paired_similarity([silent, speech, speech[:100]], [speech, speech, speech]) \
        == [None, pytest.approx(1.0, abs=1e-6), None]


def test_checkpoint_errors(tmp_path: Path, tiny_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_ge2e_network(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable torch checkpoint"):
        load_ge2e_network(tmp_path / "junk.pt")
    with open(tmp_path / "code.pt", "wb") as f:  # a pickle that would run code when loaded
        pickle.dump(types.SimpleNamespace(x=1), f, protocol=2)
    with pytest.raises(InputError, match="not a readable torch checkpoint"):
        load_ge2e_network(tmp_path / "code.pt")
    torch.save({"model_state": {"linear.weight": torch.zeros(2, 2)}}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a GE2E voice encoder checkpoint"):
        load_ge2e_network(tmp_path / "other.pt")
    ckpt = torch.load(tiny_path, weights_only=True)
    ckpt["model_state"]["lstm.weight_ih_l0"] = torch.zeros(48, 80)
    torch.save(ckpt, tmp_path / "mels80.pt")
    with pytest.raises(InputError, match="reads 80 mel channels"):
        load_ge2e_network(tmp_path / "mels80.pt")


def test_speaker_encoder_specs(tmp_path: Path, tiny_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_speaker_encoder("none") is None
    enc = load_speaker_encoder(f"ge2e:{tiny_path}", device="cpu")
    assert isinstance(enc, GE2EEncoder) and enc.dim == 8 and str(tiny_path) in enc.describe()
    monkeypatch.setattr(speaker_ge2e, "resemblyzer_weights", lambda: tiny_path)
    for spec in ("auto", None, "ge2e"):
        assert isinstance(load_speaker_encoder(spec, device="cpu"), GE2EEncoder)
    (tmp_path / "sv").mkdir()  # a directory goes to the x-vector loader (its own error)
    for spec in (tmp_path / "sv", f"xvector:{tmp_path / 'sv'}"):
        with pytest.raises(InputError, match="not a model directory"):
            load_speaker_encoder(spec)
    with pytest.raises(InputError, match="neither a known encoder"):
        load_speaker_encoder(tmp_path / "nothing")
    monkeypatch.setattr(speaker_ge2e, "resemblyzer_weights", lambda: None)
    assert load_speaker_encoder("auto") is None
    with pytest.raises(InputError, match="pip install Resemblyzer"):
        load_speaker_encoder("ge2e")


def test_resynthesis_uses_ge2e_by_default(tmp_path: Path, tiny_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from spokenlm.asr import ASR, register_asr

    @register_asr("fixed-ge2e-test")
    def _fixed(arg: str | None) -> ASR:
        class Fixed(ASR):
            name = "fixed-ge2e-test"

            def transcribe(self, wav: np.ndarray) -> str:
                return "a b"
        return Fixed()

    # 1.65 s: one full partial each (a random LSTM forgets its input over zero padding)
    src = save_wav(tmp_path / "src.wav", random_speech_like_wav(1.65, seed=1))
    other = save_wav(tmp_path / "other.wav", random_speech_like_wav(1.65, seed=2))
    write_jsonl(tmp_path / "resynth" / "resynth.jsonl", [
        {"id": "a", "source": str(src), "path": str(src), "text": "a b"},
        {"id": "b", "source": str(src), "path": str(other), "text": "a b"}])
    monkeypatch.setattr(speaker_ge2e, "resemblyzer_weights", lambda: tiny_path)
    m = evaluate_resynthesis(resynth=tmp_path / "resynth", asr="fixed-ge2e-test", source=False,
                             output=tmp_path / "out" / "r.json")
    block = m["speaker_similarity"]
    assert block["encoder"].startswith(f"ge2e:{tiny_path}") and block["n"] == 2
    sims = [r["speaker_similarity"] for r in read_jsonl(tmp_path / "out" / "r.transcripts.jsonl")]
    assert sims[0] == pytest.approx(1.0, abs=1e-5) and sims[1] < 1 - 1e-4
    monkeypatch.setattr(speaker_ge2e, "resemblyzer_weights", lambda: None)
    m = evaluate_resynthesis(resynth=tmp_path / "resynth", asr="fixed-ge2e-test", source=False,
                             output=tmp_path / "out" / "r2.json")
    assert "Resemblyzer's GE2E weights are not installed" in m["speaker_similarity"]["skipped"]


@needs_real
def test_shipped_weights_load_and_embed() -> None:
    enc = GE2EEncoder(device="cpu")
    assert enc.path == REAL and enc.dim == 256 and enc.net.lstm.num_layers == 3
    a, b = random_speech_like_wav(1.0, seed=1), random_speech_like_wav(1.0, seed=2)
    ea = enc.embed(a)
    assert ea.shape == (256,) and (ea >= 0).all() and np.linalg.norm(ea) == pytest.approx(1.0)
    assert enc.similarity(a, a.copy()) == pytest.approx(1.0, abs=1e-6)
    assert enc.similarity(a, b) < 0.999


def _import_resemblyzer(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Resemblyzer, importable although webrtcvad's wrapper wants the gone pkg_resources."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        stub = types.ModuleType("pkg_resources")
        stub.get_distribution = lambda name: types.SimpleNamespace(  # type: ignore[attr-defined]
            version=importlib.metadata.version(name))
        monkeypatch.setitem(sys.modules, "pkg_resources", stub)
    return pytest.importorskip("resemblyzer")


@pytest.mark.slow
@needs_real
def test_same_embedding_as_the_resemblyzer_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """cosine >= 0.999 with ``VoiceEncoder().embed_utterance(preprocess_wav(wav))``, with VAD
    trimming (both the webrtcvad wrapper and its bare extension) and without it."""
    import _webrtcvad

    rz = _import_resemblyzer(monkeypatch)
    ref = rz.VoiceEncoder("cpu", verbose=False)
    mine, untrimmed = GE2EEncoder(device="cpu"), GE2EEncoder(device="cpu", trim=False)
    bare = GE2EEncoder(device="cpu")
    assert mine.vad is not None and bare.vad is not None
    bare.vad._wrapper, bare.vad._ext = None, _webrtcvad
    for seed in range(3):
        wav = _speech_with_pause(10 * seed, pause_s=0.5 + seed) * (0.02 if seed == 1 else 1.0)
        want = ref.embed_utterance(rz.preprocess_wav(wav))
        assert float(mine.embed(wav) @ want) >= 0.999
        assert float(bare.embed(wav) @ want) >= 0.999
        want_untrimmed = ref.embed_utterance(rz.normalize_volume(wav, -30, increase_only=True))
        assert float(untrimmed.embed(wav) @ want_untrimmed) >= 0.999
