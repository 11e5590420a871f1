"""Phase reconstruction: mel -> linear magnitude (pseudo-inverse) -> fast Griffin-Lim.

Fast Griffin-Lim (Perraudin et al. 2013) adds a momentum term to the classic
alternating projections of Griffin & Lim (1984); 32-64 iterations suffice for speech.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mel_to_magnitude(mel: Tensor, fb: Tensor) -> Tensor:
    """Least-squares inverse of a mel projection, clamped to be non-negative.

    Args:
        mel: mel magnitude (B, M, N) (not log).
        fb: filterbank (M, F) that produced it.
    Returns:
        linear magnitude (B, F, N).
    """
    inverse = torch.linalg.pinv(fb.double()).to(mel.dtype)  # (F, M)
    return torch.clamp(torch.matmul(inverse, mel), min=0.0)


def griffin_lim(magnitude: Tensor, n_fft: int, hop_length: int, win_length: int | None = None,
                n_iter: int = 32, momentum: float = 0.99, length: int | None = None,
                seed: int = 0, angles: Tensor | None = None) -> Tensor:
    """Waveform whose STFT magnitude approximates ``magnitude``.

    Args:
        magnitude: linear magnitude (B, n_fft // 2 + 1, N) or (F, N), centred hann frames.
        length: output samples; default ``(N - 1) * hop_length``.
        momentum: 0 gives classic Griffin-Lim; 0.99 is "fast Griffin-Lim".
        angles: initial phases as unit complex numbers, the shape of ``magnitude``;
            default: uniform random phases drawn with ``seed``.
    Returns:
        wav (B, T) float (or (T,) for an unbatched input).
    """
    squeeze = magnitude.dim() == 2
    mag = magnitude[None] if squeeze else magnitude
    win_length = win_length or n_fft
    window = torch.hann_window(win_length, device=mag.device, dtype=mag.dtype)
    length = length if length is not None else (mag.shape[-1] - 1) * hop_length
    if angles is None:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        phase = torch.rand(mag.shape, generator=gen, dtype=mag.dtype).to(mag.device) * 2 * torch.pi
        angles = torch.polar(torch.ones_like(mag), phase)
    else:
        angles = (angles[None] if squeeze else angles).to(mag.device)
    rebuilt = torch.zeros_like(angles)
    alpha = momentum / (1.0 + momentum)

    def istft(spec: Tensor) -> Tensor:
        return torch.istft(spec, n_fft, hop_length, win_length, window, center=True,
                           length=length)

    for _ in range(n_iter):
        previous = rebuilt
        wav = istft(mag * angles)
        rebuilt = torch.stft(wav, n_fft, hop_length, win_length, window, center=True,
                             pad_mode="reflect", return_complex=True)
        angles = rebuilt - alpha * previous
        angles = angles / (angles.abs() + 1e-16)
    wav = istft(mag * angles)
    return wav[0] if squeeze else wav


def spectral_convergence(reference: Tensor, estimate: Tensor) -> float:
    """||ref - est||_F / ||ref||_F over magnitudes of the same shape (0 = identical)."""
    return float(torch.linalg.norm(reference - estimate) / torch.linalg.norm(reference))
