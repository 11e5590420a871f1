"""F0-conditioned unit HiFi-GAN (``"f0"`` config block): shapes, save/load, errors.
Equality with the original generator: tests/interop/test_speech_resynthesis_f0.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from spokenlm.common.errors import InputError
from spokenlm.testing.speech_resynthesis import TINY_QUANTIZER, quantizer_state
from spokenlm.testing.vocoder import tiny_vocoder
from spokenlm.vocoder import load_vocoder
from spokenlm.vocoder.f0_norm import F0Config, F0Stats
from spokenlm.vocoder.f0_quantizer import F0Quantizer
from spokenlm.vocoder.hifigan import HIFIGAN_SIZES, UnitHifiGan

STATS = F0Stats(150.0, 30.0, {1: (110.0, 15.0)})


def f0_vocoder(quantizer: bool, speakers: list[str] | None = None, **f0: Any) -> UnitHifiGan:
    torch.manual_seed(0)
    rates = {} if quantizer else {"upsample_rates": [5, 4, 2, 2],
                                  "upsample_kernel_sizes": [11, 8, 4, 4]}
    cfg = F0Config(quantizer=TINY_QUANTIZER if quantizer else None, normalize=True,
                   stats=STATS, **f0)
    model = UnitHifiGan({"n_units": 8, **HIFIGAN_SIZES["tiny"], **rates,
                         "speakers": speakers or [], "duration_predictor": False,
                         "f0": cfg.to_json()}).eval()
    if model.f0 is not None and model.f0.quantizer is not None:  # codebook from encoder outputs
        with torch.no_grad():
            x = model.f0.quantizer.encoder.level_blocks[0](3 * torch.randn(1, 1, 16 * 6))
            model.f0.quantizer.vq.level_blocks[0].k.copy_(x[0].t())
    return model


def test_quantizer_modules_use_the_original_key_names() -> None:
    assert set(F0Quantizer(TINY_QUANTIZER).state_dict()) == set(quantizer_state(TINY_QUANTIZER))
    q = F0Quantizer(TINY_QUANTIZER)
    f0 = torch.randn(2, 1, 64)
    assert q.encode(f0).shape == (2, 4) and q.downsampling == 16
    assert q.decode(q.encode(f0)).shape == (2, 1, 64)


@pytest.mark.parametrize("quantizer", [False, True])
def test_shapes_save_load_and_f0_matters(tmp_path: Path, quantizer: bool) -> None:
    model = f0_vocoder(quantizer, speakers=["a", "b"], feats=True)
    assert model.needs_f0 and model.conv_pre.weight.shape[1] == 64 + (32 if quantizer else 1) + 2
    frames = torch.randint(0, 8, (2, 8))
    with torch.no_grad():
        out = model(frames, torch.tensor([0, 1]), torch.randn(2, 32), torch.rand(2, 2))
    assert out.shape == (2, 1, 8 * 320)

    f0 = 120 + 30 * np.sin(np.arange(4 * 7) / 3.0)
    wav = model.synthesize([3, 1, 4], [2, 1, 4], speaker="b", f0=f0)
    assert wav.shape == (7 * 320,) and wav.dtype == np.float32
    model.save_pretrained(tmp_path / "voc")
    again = load_vocoder(tmp_path / "voc")
    np.testing.assert_array_equal(again.synthesize([3, 1, 4], [2, 1, 4], speaker="b", f0=f0), wav)
    assert np.abs(model.synthesize([3, 1, 4], [2, 1, 4], speaker="b", f0=np.full(28, 400.0))
                  - wav).max() > 0
    # F0 cut or edge-padded to 4 values per frame
    np.testing.assert_array_equal(
        model.synthesize([3, 1, 4], [2, 1, 4], speaker="b", f0=np.r_[f0, [300.0] * 5]), wav)


def test_missing_f0_falls_back_or_fails_clearly() -> None:
    model = f0_vocoder(False)
    frames = torch.tensor([[1, 2, 2, 3]])
    with pytest.raises(InputError, match="conditioned on F0: pass f0"):
        model.generate(frames)
    with pytest.raises(InputError, match=r"f0 must be \(batch, 4 \* frames\) = \(1, 16\)"):
        model.generate(frames, None, torch.zeros(1, 15))
    flat = model.synthesize([1, 2, 3], [1, 2, 1])  # normalised: the speaker's mean = 0
    with torch.no_grad():
        np.testing.assert_allclose(flat, model.generate(frames, None, torch.zeros(1, 16))[0],
                                   atol=1e-6)
    strict = f0_vocoder(False, fallback="error")
    with pytest.raises(InputError, match="none was given; pass f0="):
        strict.synthesize([1, 2, 3], [1, 2, 1])
    plain = tiny_vocoder("hifigan", n_units=8)
    assert not plain.needs_f0
    with pytest.raises(InputError, match="not conditioned on F0"):
        plain.synthesize([1, 2], [1, 1], f0=np.zeros(8))
