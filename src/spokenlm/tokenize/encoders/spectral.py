"""Spectral encoders in plain torch: ``mfcc`` (HuBERT iteration 1) and ``logmel`` (GSLM).

Both frame the audio exactly like the HuBERT / wav2vec 2.0 conv front-end, no centring and
no padding. At the default ``frame_rate`` of 50 Hz that is a 25 ms window (400 samples)
every 20 ms (320 samples): ``T`` samples give ``floor((T - 400) / 320) + 1`` frames and frame
``i`` covers samples ``[320 i, 320 i + 400)``, as for HuBERT Base. Other rates (25, 12.5 Hz,
any whole hop at 16 kHz) use :meth:`Framing.from_rate`: hop ``16000 / rate``, window 1.25
hops. The windowed frame is zero-padded to the next power of two (512 at 50 Hz) for the FFT.

Long inputs are encoded chunk by chunk *exactly* (``chunking``): log-mel and cepstra are
frame-local, MFCC deltas need 2 frames of context each side (delta-deltas 4), and MFCC's
per-utterance ``cmn`` takes the mean from a first streaming pass over the whole input (its
cepstra summed in float64: the same mean to float32 rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...audio.chunking import Chunking
from ...audio.constants import N_FFT, N_MELS, SAMPLE_RATE
from ...audio.framing import DEFAULT_FRAMING, Framing
from .base import Encoder, register_encoder

#: Frames each side a delta looks at (Kaldi's default window of 2; delta-deltas: 4).
DELTA_WIDTH = 2
#: Seconds of frames per chunk when a long input is encoded chunk by chunk (~60 MB of
#: temporaries; 30 s chunks ran 2-3x slower on 2 busy cores: thread wake-ups per op).
SPECTRAL_CHUNK_S = 120.0


def fft_size(win_length: int) -> int:
    """Smallest power of two >= ``win_length`` (512 for the 400-sample window)."""
    return max(N_FFT, 1 << (int(win_length) - 1).bit_length())


def spectral_framing(frame_rate: float) -> Framing:
    """The framing of a spectral encoder at ``frame_rate`` Hz (50 Hz: window 400, hop 320)."""
    if frame_rate == DEFAULT_FRAMING.frame_rate:
        return DEFAULT_FRAMING
    return Framing.from_rate(frame_rate)


def frame_power_spectrum(wav: torch.Tensor, window: torch.Tensor, *, remove_dc: bool = False,
                         preemphasis: float = 0.0, hop: int = DEFAULT_FRAMING.hop_length,
                         n_fft: int = N_FFT) -> torch.Tensor:
    """Power spectrum of frames of ``len(window)`` samples every ``hop`` samples.

    Args:
        wav: (B, T) float audio at 16 kHz.
        window: (W,) analysis window (W = 400 at 50 Hz).
    Returns:
        (B, F, n_fft // 2 + 1) power spectrum, F = floor((T - W) / hop) + 1.
    """
    frames = wav.unfold(-1, window.shape[0], hop)  # (B, F, W)
    if remove_dc:
        frames = frames - frames.mean(dim=-1, keepdim=True)
    if preemphasis:
        prev = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)  # Kaldi: x[-1] = x[0]
        frames = frames - preemphasis * prev
    spec = torch.fft.rfft(frames * window, n=n_fft)  # (B, F, n_fft // 2 + 1)
    return spec.real.square() + spec.imag.square()


def fft_frequencies(n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """(n_fft // 2 + 1,) float64: the frequency (Hz) of each FFT bin, 0 to Nyquist."""
    return torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)


def mel_filterbank(n_mels: int, f_min: float, f_max: float, n_fft: int = N_FFT,
                   sample_rate: int = SAMPLE_RATE, freqs: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """Triangular filters equally spaced on the mel scale (1127 ln(1 + f / 700), as Kaldi/HTK).

    ``freqs`` (n_fft // 2 + 1,): the frequency each FFT bin is read as; None, the bin's own
    (:func:`fft_frequencies`). A warped axis gives vocal tract length normalisation.

    Returns:
        (n_fft // 2 + 1, n_mels) float32 matrix: ``power (.., 257) @ fb -> mel (.., n_mels)``.
    """
    def mel(f: torch.Tensor) -> torch.Tensor:
        return 1127.0 * torch.log1p(f / 700.0)

    if freqs is None:
        freqs = fft_frequencies(n_fft, sample_rate)
    edges = torch.linspace(float(mel(torch.tensor(f_min))), float(mel(torch.tensor(f_max))),
                           n_mels + 2, dtype=torch.float64)
    m = mel(freqs)[:, None]  # (257, 1)
    left, center, right = edges[:-2], edges[1:-1], edges[2:]  # (n_mels,)
    up = (m - left) / (center - left)
    down = (right - m) / (right - center)
    return torch.clamp(torch.minimum(up, down), min=0.0).to(torch.float32)


def dct_matrix(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II, (n_mels, n_mfcc): ``log_mel (.., n_mels) @ dct -> cepstra``."""
    n = torch.arange(n_mels, dtype=torch.float64)[:, None]
    k = torch.arange(n_mfcc, dtype=torch.float64)[None, :]
    dct = torch.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    dct[:, 0] /= math.sqrt(2.0)
    return dct.to(torch.float32)


def deltas(x: torch.Tensor, width: int = DELTA_WIDTH) -> torch.Tensor:
    """Regression deltas over time, edges replicated (Kaldi / torchaudio ``compute_deltas``).

    Args:
        x: (B, F, C). Returns (B, F, C).
    """
    if x.shape[1] == 0:
        return x
    padded = torch.cat([x[:, :1].expand(-1, width, -1), x, x[:, -1:].expand(-1, width, -1)], 1)
    num = sum(n * (padded[:, width + n: width + n + x.shape[1]]
                   - padded[:, width - n: width - n + x.shape[1]]) for n in range(1, width + 1))
    return num / (2 * sum(n * n for n in range(1, width + 1)))


@dataclass
class MFCCOptions:
    """MFCC + deltas + delta-deltas, Kaldi-style (HuBERT iteration-1 targets), 50 Hz default."""

    n_mfcc: int = 13
    n_mels: int = 23
    f_min: float = 20.0
    f_max: float = SAMPLE_RATE / 2
    cepstral_lifter: float = 22.0
    deltas: bool = True
    cmn: bool = False  # subtract the per-utterance mean of each coefficient
    frame_rate: float = 50.0  # frames per second; any rate giving a whole hop at 16 kHz


@register_encoder("mfcc")
class MFCCEncoder(Encoder):
    """Kaldi-style MFCC: DC removal, pre-emphasis 0.97, Povey window, power spectrum,
    23 mel bins, log, DCT-II (13 coefficients incl. c0), lifter 22, then deltas and
    delta-deltas (39 dims), as in HuBERT's iteration-1 recipe but with a 20 ms hop (50 Hz;
    ``frame_rate`` sets another rate, see :func:`spectral_framing`).

    ``forward``: (B, T) -> (B, F, 39) (13 without deltas). With ``cmn`` the mean is taken
    over the whole input, so batch only utterances of equal length.
    """

    Options = MFCCOptions

    def __init__(self, options: MFCCOptions) -> None:
        super().__init__(options)
        o = options
        self.dim = o.n_mfcc * (3 if o.deltas else 1)
        self.framing = spectral_framing(o.frame_rate)
        self.n_fft = fft_size(self.framing.win_length)
        window = torch.hann_window(self.framing.win_length, periodic=False,
                                   dtype=torch.float64) ** 0.85
        lifter = 1.0 + (o.cepstral_lifter / 2) * torch.sin(
            math.pi * torch.arange(o.n_mfcc, dtype=torch.float64) / o.cepstral_lifter)
        self.register_buffer("window", window.float(), persistent=False)
        self.register_buffer("fbank", mel_filterbank(o.n_mels, o.f_min, o.f_max, self.n_fft),
                             persistent=False)
        self.register_buffer("dct", dct_matrix(o.n_mfcc, o.n_mels), persistent=False)
        self.register_buffer("lifter", lifter.float(), persistent=False)

    @property
    def chunking(self) -> Chunking:
        """Exact: cepstra are frame-local, deltas look 2 frames each way (delta-deltas 4);
        with ``cmn`` a first pass sums the cepstra of the whole input (float64) for the mean
        (:meth:`stream_stats`, :meth:`forward_with_stats`)."""
        return Chunking(self.framing.frames(SPECTRAL_CHUNK_S),
                        2 * DELTA_WIDTH if self.options.deltas else 0, exact=True,
                        two_pass=self.options.cmn)

    def cepstra(self, wav: torch.Tensor) -> torch.Tensor:
        """Liftered cepstra before CMN and deltas, frame-local: (B, T) -> (B, F, n_mfcc)."""
        self.check_input(wav)
        with torch.autocast(wav.device.type, enabled=False):
            power = frame_power_spectrum(wav.float(), self.window, remove_dc=True,
                                         preemphasis=0.97, hop=self.framing.hop_length,
                                         n_fft=self.n_fft)  # (B, F, n_fft // 2 + 1)
            log_mel = torch.log(torch.clamp(power @ self.fbank, min=torch.finfo(torch.float32).eps))
            return (log_mel @ self.dct) * self.lifter  # (B, F, 13)

    def _finish(self, ceps: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
        """(B, F, n_mfcc) cepstra -> features: minus ``mean`` (B, 1, n_mfcc), then deltas."""
        with torch.autocast(ceps.device.type, enabled=False):
            if mean is not None:
                ceps = ceps - mean
            if self.options.deltas:
                d1 = deltas(ceps)
                ceps = torch.cat([ceps, d1, deltas(d1)], dim=-1)  # (B, F, 39)
        return ceps

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        ceps = self.cepstra(wav)
        return self._finish(ceps, ceps.mean(dim=1, keepdim=True) if self.options.cmn else None)

    def stream_stats(self, wav: torch.Tensor) -> torch.Tensor:
        """First-pass statistics of a chunk (frames without context): (B, n_mfcc + 1)
        float64, the sum of its cepstra and its frame count; chunks' stats add up."""
        ceps = self.cepstra(wav).double()
        count = torch.full((ceps.shape[0], 1), ceps.shape[1], dtype=torch.float64,
                           device=ceps.device)
        return torch.cat([ceps.sum(dim=1), count], dim=1)

    def forward_with_stats(self, wav: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` of a chunk, with CMN by the whole input's mean from ``stats``
        (the summed :meth:`stream_stats`, (B, n_mfcc + 1))."""
        mean = (stats[:, :-1] / stats[:, -1:].clamp(min=1)).float()[:, None, :]
        return self._finish(self.cepstra(wav), mean if self.options.cmn else None)


@dataclass
class LogMelOptions:
    """Log-mel filterbank energies, 50 Hz default (GSLM's log-mel baseline)."""

    n_mels: int = N_MELS
    f_min: float = 0.0
    f_max: float = SAMPLE_RATE / 2
    log_floor: float = 1e-10
    frame_rate: float = 50.0  # frames per second; any rate giving a whole hop at 16 kHz


@register_encoder("logmel")
class LogMelEncoder(Encoder):
    """Hann-windowed power spectrum -> ``n_mels`` mel filters -> natural log.

    ``forward``: (B, T) -> (B, F, n_mels). Frame-local, but batch equal lengths like the
    other encoders.
    """

    Options = LogMelOptions

    def __init__(self, options: LogMelOptions) -> None:
        super().__init__(options)
        self.dim = options.n_mels
        self.framing = spectral_framing(options.frame_rate)
        self.n_fft = fft_size(self.framing.win_length)
        self.register_buffer("window", torch.hann_window(self.framing.win_length, periodic=True),
                             persistent=False)
        self.register_buffer("fbank", mel_filterbank(options.n_mels, options.f_min,
                                                     options.f_max, self.n_fft), persistent=False)

    @property
    def chunking(self) -> Chunking:
        """Exact with no context: every frame is computed from its own window only."""
        return Chunking(self.framing.frames(SPECTRAL_CHUNK_S), 0, exact=True)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        self.check_input(wav)
        with torch.autocast(wav.device.type, enabled=False):
            power = frame_power_spectrum(wav.float(), self.window, hop=self.framing.hop_length,
                                         n_fft=self.n_fft)  # (B, F, n_fft // 2 + 1)
            return torch.log(torch.clamp(power @ self.fbank, min=self.options.log_floor))
