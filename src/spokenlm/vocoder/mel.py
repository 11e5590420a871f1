"""Mel filterbank and (log-)mel spectrogram in plain torch (no torchaudio).

Used by the HiFi-GAN mel loss and as the regression target of the fast vocoder, whose
Griffin-Lim inversion (:mod:`spokenlm.vocoder.griffinlim`) uses the same STFT framing.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..audio.constants import SAMPLE_RATE

#: Floor of the mel magnitude before the log: log(1e-5) = -11.5 is "silence".
LOG_FLOOR: float = 1e-5


def hz_to_mel(freq: Tensor) -> Tensor:
    """Slaney mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    f_sp, min_log_hz, min_log_mel = 200.0 / 3, 1000.0, 15.0
    logstep = math.log(6.4) / 27.0
    linear = freq / f_sp
    log = min_log_mel + torch.log(torch.clamp(freq, min=1e-10) / min_log_hz) / logstep
    return torch.where(freq >= min_log_hz, log, linear)


def mel_to_hz(mel: Tensor) -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    f_sp, min_log_hz, min_log_mel = 200.0 / 3, 1000.0, 15.0
    logstep = math.log(6.4) / 27.0
    linear = mel * f_sp
    log = min_log_hz * torch.exp(logstep * (mel - min_log_mel))
    return torch.where(mel >= min_log_mel, log, linear)


def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = 1024, n_mels: int = 80,
                   fmin: float = 0.0, fmax: float | None = None) -> Tensor:
    """Slaney-normalised triangular filters, float32 (n_mels, n_fft // 2 + 1)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(float(hz_to_mel(torch.tensor(fmin, dtype=torch.float64))),
                          float(hz_to_mel(torch.tensor(fmax, dtype=torch.float64))),
                          n_mels + 2, dtype=torch.float64)
    hz = mel_to_hz(mels)  # (n_mels + 2,)
    fdiff = hz[1:] - hz[:-1]
    ramps = hz[:, None] - fft_freqs[None, :]  # (n_mels + 2, F)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)  # (n_mels, F)
    weights = weights * (2.0 / (hz[2:] - hz[:-2]))[:, None]  # slaney area normalisation
    return weights.float()


class MelSpectrogram(nn.Module):
    """Magnitude STFT (hann window, centred frames) projected on a mel filterbank.

    A signal of T samples gives ``T // hop_length + 1`` frames; frame j is centred on
    sample ``j * hop_length``.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = 1024,
                 hop_length: int = 160, win_length: int | None = None, n_mels: int = 80,
                 fmin: float = 0.0, fmax: float | None = None) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.win_length = win_length or n_fft
        self.n_mels = n_mels
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)
        self.register_buffer("fb", mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax),
                             persistent=False)

    def stft(self, wav: Tensor) -> Tensor:
        """(B, T) float -> complex (B, n_fft // 2 + 1, N)."""
        return torch.stft(wav, self.n_fft, self.hop_length, self.win_length, self.window,
                          center=True, pad_mode="reflect", return_complex=True)

    def magnitude(self, wav: Tensor) -> Tensor:
        """(B, T) -> linear magnitude (B, F, N)."""
        spec = self.stft(wav)
        return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)

    def forward(self, wav: Tensor) -> Tensor:
        """(B, T) -> mel magnitude (B, n_mels, N)."""
        return torch.matmul(self.fb, self.magnitude(wav))

    def log_mel(self, wav: Tensor) -> Tensor:
        """(B, T) -> natural-log mel magnitude (B, n_mels, N), floored at log(1e-5)."""
        return torch.log(torch.clamp(self(wav), min=LOG_FLOOR))
