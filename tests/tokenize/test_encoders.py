from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.common.errors import InputError
from spokenlm.testing.audio import random_speech_like_wav
from spokenlm.testing.encoders import tiny_wav2vec2_dir
from spokenlm.tokenize.encoders import ENCODERS, build_encoder, encoder_options
from spokenlm.tokenize.encoders.base import num_frames


def _wav(seconds: float = 0.5, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(random_speech_like_wav(seconds, seed))[None]  # (1, T)


def _full_hidden_state(path: Path, model_cls: type, wav: torch.Tensor, layer: int) -> torch.Tensor:
    model = model_cls.from_pretrained(str(path)).eval()
    with torch.no_grad():
        return model(wav, output_hidden_states=True).hidden_states[layer]


def test_registry_has_builtins() -> None:
    assert {"mfcc", "logmel", "hubert", "wav2vec2"} <= set(ENCODERS)


def test_frame_counts_agree_across_encoders(hubert_dir: Path) -> None:
    encoders = [build_encoder(c) for c in ({"name": "mfcc"}, {"name": "logmel"},
                                           {"name": "hubert", "path": str(hubert_dir), "layer": 2})]
    for num_samples in (400, 401, 719, 720, 1600, 8000, 12345):
        wav = torch.randn(1, num_samples) * 0.1
        expected = (num_samples - 400) // 320 + 1
        assert num_frames(num_samples) == expected
        for enc in encoders:
            with torch.no_grad():
                feats = enc(wav)
            assert feats.shape == (1, expected, enc.dim), (enc.name, num_samples)
            assert enc.num_frames(num_samples) == expected
            assert torch.isfinite(feats).all()


def test_spectral_dims_and_batch_consistency() -> None:
    mfcc, logmel = build_encoder({"name": "mfcc"}), build_encoder({"name": "logmel"})
    assert (mfcc.dim, logmel.dim) == (39, 80)
    wav = torch.cat([_wav(0.5, 1), _wav(0.5, 2)])  # (2, T) equal lengths
    for enc in (mfcc, logmel):
        both = enc(wav)
        assert torch.allclose(both[1:], enc(wav[1:]), atol=1e-5)


def test_mel_filterbank_on_a_scaled_axis_moves_every_filter() -> None:
    """Reading the bins at 1.1x their frequency (a VTLN warp) moves each filter's peak down
    the bins, never up; the bins' own frequencies give the default filterbank."""
    from spokenlm.tokenize.encoders.spectral import fft_frequencies, mel_filterbank

    fb = mel_filterbank(23, 20.0, 8000.0)
    assert torch.equal(mel_filterbank(23, 20.0, 8000.0, freqs=fft_frequencies()), fb)
    scaled = mel_filterbank(23, 20.0, 8000.0, freqs=1.1 * fft_frequencies())
    assert (scaled.argmax(0) <= fb.argmax(0)).all()
    assert (scaled.argmax(0) < fb.argmax(0)).sum() > 15


def test_too_short_audio_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="shorter than one frame"):
        build_encoder({"name": "mfcc"})(torch.zeros(1, 100))


@pytest.mark.parametrize("layer", [0, 3, 4])
def test_hubert_layer_equals_full_model_hidden_state(hubert_dir: Path, layer: int) -> None:
    from transformers import HubertModel

    wav = _wav(0.5)
    enc = build_encoder({"name": "hubert", "path": str(hubert_dir), "layer": layer})
    assert len(enc.model.encoder.layers) == layer  # truncated
    assert enc.full_config.num_hidden_layers == 4
    with torch.no_grad():
        feats = enc(wav)
    ref = _full_hidden_state(hubert_dir, HubertModel, wav, layer)
    assert feats.shape == ref.shape == (1, num_frames(wav.shape[1]), 32)
    assert (feats - ref).abs().max().item() < 1e-5


@pytest.mark.parametrize("stable", [True, False])
@pytest.mark.parametrize("layer", [2, 4])
def test_wav2vec2_layer_equals_full_model_hidden_state(
        wav2vec2_dir: Path, tmp_path: Path, stable: bool, layer: int) -> None:
    from transformers import Wav2Vec2Model

    path = wav2vec2_dir if stable else tiny_wav2vec2_dir(tmp_path / "base", stable_layer_norm=False)
    wav = _wav(0.4, 3)
    enc = build_encoder({"name": "wav2vec2", "path": str(path), "layer": layer})
    with torch.no_grad():
        feats = enc(wav)
    ref = _full_hidden_state(path, Wav2Vec2Model, wav, layer)
    assert (feats - ref).abs().max().item() < 1e-5


def test_config_round_trip(hubert_dir: Path) -> None:
    for config in (encoder_options("mfcc", path=None, layer=6) | {"cmn": True},
                   encoder_options("logmel"),
                   encoder_options("hubert", path=str(hubert_dir), layer=3)):
        enc = build_encoder(config)
        again = build_encoder(enc.config())
        assert again.config() == enc.config()
        wav = _wav(0.3, 4)
        with torch.no_grad():
            np.testing.assert_allclose(enc(wav).numpy(), again(wav).numpy(), atol=1e-6)
    assert build_encoder(encoder_options("hubert", path=str(hubert_dir), layer=3)).config() == {
        "name": "hubert", "path": str(hubert_dir), "layer": 3, "normalize": False}


def test_bad_encoder_configs_name_the_fix(hubert_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown encoder 'cpc'"):
        build_encoder({"name": "cpc"})
    with pytest.raises(InputError, match="unknown option"):
        build_encoder({"name": "mfcc", "layer": 3})
    with pytest.raises(InputError, match="layers 0..4"):
        build_encoder({"name": "hubert", "path": str(hubert_dir), "layer": 5})
    with pytest.raises(InputError, match="--encoder-path"):
        build_encoder({"name": "hubert"})
    with pytest.raises(InputError, match="not a model directory"):
        build_encoder({"name": "hubert", "path": str(tmp_path / "nope")})
    with pytest.raises(InputError, match="not a hubert model"):
        build_encoder({"name": "hubert", "path": str(tiny_wav2vec2_dir(tmp_path / "w"))})


def test_encoder_options_parse_typed_and_reject_unknown() -> None:
    from spokenlm.common.errors import InputError
    from spokenlm.tokenize.encoders.base import parse_encoder_options

    assert parse_encoder_options("mfcc", ["cmn=true", "n_mfcc=20"]) == {"cmn": True, "n_mfcc": 20}
    with pytest.raises(InputError, match="n_mfcc"):
        parse_encoder_options("mfcc", ["nope=1"])
    with pytest.raises(InputError, match="not a valid"):
        parse_encoder_options("mfcc", ["n_mfcc=abc"])
