from __future__ import annotations

import numpy as np
import torch

from spokenlm.vocoder.griffinlim import griffin_lim, mel_to_magnitude, spectral_convergence
from spokenlm.vocoder.mel import MelSpectrogram, mel_filterbank


def _harmonic(seconds: float = 0.5, f0: float = 180.0, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    f = f0 * (1 + 0.1 * torch.sin(2 * torch.pi * 3 * t))  # a little vibrato
    phase = 2 * torch.pi * torch.cumsum(f, 0) / sr
    return sum(torch.sin(h * phase) / h for h in range(1, 6)) * 0.2


def test_griffin_lim_reconstructs_magnitude_of_harmonic_signal() -> None:
    mel = MelSpectrogram(n_fft=512, hop_length=128)
    wav = _harmonic()[None]  # (1, T)
    mag = mel.magnitude(wav)  # (1, F, N)
    rec = griffin_lim(mag, 512, 128, n_iter=48, length=wav.shape[-1])
    assert rec.shape == wav.shape
    assert spectral_convergence(mag, mel.magnitude(rec)) < 0.2


def test_griffin_lim_unbatched_and_default_length() -> None:
    mag = MelSpectrogram(n_fft=256, hop_length=64).magnitude(_harmonic(0.1)[None])[0]
    rec = griffin_lim(mag, 256, 64, n_iter=4)
    assert rec.shape == ((mag.shape[-1] - 1) * 64,)


def test_mel_filterbank_is_slaney_like_and_pinv_inverts_smooth_spectra() -> None:
    fb = mel_filterbank(16000, 1024, 80, fmax=8000.0)
    assert fb.shape == (80, 513)
    assert (fb >= 0).all() and (fb.sum(1) > 0).all()
    spec = torch.linspace(1.0, 0.1, 513)[None, :, None].repeat(1, 1, 3)  # (1, F, 3)
    back = mel_to_magnitude(torch.matmul(fb, spec), fb)
    assert (back >= 0).all()
    assert torch.allclose(torch.matmul(fb, back), torch.matmul(fb, spec), rtol=1e-2, atol=1e-4)


def test_log_mel_shape_and_floor() -> None:
    mel = MelSpectrogram(hop_length=160)
    out = mel.log_mel(torch.zeros(2, 3200))
    assert out.shape == (2, 80, 21)
    assert np.isclose(float(out.min()), np.log(1e-5), atol=1e-3)
