"""Pitch (F0) tracking at the frame rate of speech-resynthesis' F0-conditioned vocoders.

Two trackers share one output contract (below), chosen by name (:func:`track_f0`, CLI
``--f0 yin|yaapt``): ``yaapt`` (:mod:`.f0_yaapt`, pYAAPT with speech-resynthesis' settings:
the F0 its vocoders were trained on, so the default for them, :data:`VOCODER_F0_TRACKER`)
and ``yin`` (:func:`extract_f0`, this module: about 10x faster, calls fewer frames voiced).

speech-resynthesis extracts F0 with YAAPT (``amfm_decompy``) on the 16 kHz waveform padded
by 10 ms on each side, with a 20 ms analysis frame every 5 ms: frame ``k`` is centred on
sample ``80 k`` and a clip of ``T`` samples gives ``ceil(T / 80)`` values, four per 320-sample
unit frame. Unvoiced frames are 0 Hz.

:func:`extract_f0` approximates YAAPT with a YIN tracker (de Cheveigné & Kawahara 2002:
cumulative-mean-normalised difference function, absolute threshold, parabolic refinement)
on the same frame grid and F0 range (60-400 Hz), plus an energy gate for silence. It has no
YAAPT dynamic programming or spectral tracking: expect close values on clean voiced speech
and more single-frame voicing / octave slips on noisy speech.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audio.constants import HOP_LENGTH, SAMPLE_RATE
from ..common.errors import InputError

#: samples between F0 frames (YAAPT ``frame_space`` 5 ms at 16 kHz)
F0_HOP = 80
#: F0 frames per second
F0_FRAME_RATE = SAMPLE_RATE / F0_HOP
#: F0 frames per 50 Hz unit frame
F0_PER_FRAME = HOP_LENGTH // F0_HOP
#: the tracker F0-conditioned vocoders get unless their config or the user names another:
#: YAAPT, what speech-resynthesis extracts when training them
VOCODER_F0_TRACKER = "yaapt"

#: tracker name -> fn(16 kHz wav (T,)) -> F0 Hz float32 (ceil(T / 80),), unvoiced 0
F0Tracker = Callable[[np.ndarray], np.ndarray]
F0_TRACKERS: dict[str, F0Tracker] = {}


@dataclass(frozen=True)
class PitchOptions:
    """YIN settings. ``f0_min`` / ``f0_max`` are YAAPT's defaults; ``window_ms`` is the
    integration window (YAAPT ``frame_length`` in speech-resynthesis)."""

    f0_min: float = 60.0
    f0_max: float = 400.0
    window_ms: float = 20.0
    #: a frame is voiced when its normalised difference dips below this
    threshold: float = 0.15
    #: frames quieter than this (dB below the loudest frame) are unvoiced
    silence_db: float = 40.0
    #: frames with an RMS below this (full scale 1.0) are unvoiced
    silence_rms: float = 1e-4


def num_f0_frames(num_samples: int) -> int:
    """F0 values for a clip of ``num_samples`` (``ceil(T / 80)``, as YAAPT gives)."""
    return -(-num_samples // F0_HOP)


def _frames(wav: np.ndarray, n: int, window: int, length: int) -> np.ndarray:
    """(n, length) slices of ``wav`` (zero outside); slice ``k`` starts ``window // 2``
    before sample ``k * F0_HOP``, so its first ``window`` samples are centred there."""
    left = window // 2
    padded = np.pad(wav, (left, length + F0_HOP))
    starts = np.arange(n) * F0_HOP
    return padded[starts[:, None] + np.arange(length)[None, :]]


def _cmnd(frames: np.ndarray, window: int, max_lag: int) -> np.ndarray:
    """Cumulative-mean-normalised difference d'(tau), tau = 0..max_lag: (N, max_lag + 1).

    d(tau) = sum_j (x[j] - x[j + tau])^2 over the first ``window`` samples, from one FFT
    cross-correlation and running energies; d'(0) = 1 and silent frames stay at 1.
    """
    n_fft = 1 << math.ceil(math.log2(window + frames.shape[1]))
    head = np.fft.rfft(frames[:, :window], n_fft)
    full = np.fft.rfft(frames, n_fft)
    corr = np.fft.irfft(np.conj(head) * full, n_fft)[:, :max_lag + 1]  # (N, L)
    sq = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames ** 2, axis=1)], axis=1)
    lags = np.arange(max_lag + 1)
    energy_lag = sq[:, lags + window] - sq[:, lags]  # sum of x[j + tau]^2 over the window
    diff = np.maximum(sq[:, window:window + 1] + energy_lag - 2.0 * corr, 0.0)
    running = np.cumsum(diff[:, 1:], axis=1)
    out = np.ones_like(diff)
    ok = running > 1e-12 * np.maximum(sq[:, -1:], 1e-30)
    out[:, 1:] = np.where(ok, diff[:, 1:] * lags[1:] / np.where(ok, running, 1.0), 1.0)
    return out


def f0_input(wav: np.ndarray, sample_rate: int, f0_min: float, f0_max: float,
             name: str) -> np.ndarray:
    """``wav`` as float64 samples (T,), after refusing what no F0 extractor here takes: a
    rate other than 16 kHz or an F0 range outside (0, sample_rate / 4) (``name``: the
    extractor, for the message)."""
    if sample_rate != SAMPLE_RATE:
        raise InputError(f"{name} works on {SAMPLE_RATE} Hz audio, got {sample_rate} Hz; "
                         f"load it with spokenlm.audio.load_audio (resamples)")
    if not 0 < f0_min < f0_max < sample_rate / 4:
        raise InputError(f"F0 range [{f0_min}, {f0_max}] Hz is not a valid range")
    return np.asarray(wav, dtype=np.float64).reshape(-1)


def extract_f0(wav: np.ndarray, sample_rate: int = SAMPLE_RATE,
               options: PitchOptions | None = None) -> np.ndarray:
    """16 kHz mono waveform (T,) -> F0 in Hz, float32 (ceil(T / 80),); unvoiced frames 0.

    Frame ``k`` describes the signal around sample ``80 k`` (see the module docstring), so
    ``extract_f0(wav)[4 * i : 4 * i + 4]`` belongs to unit frame ``i``.
    """
    opts = options or PitchOptions()
    x = f0_input(wav, sample_rate, opts.f0_min, opts.f0_max, "extract_f0")
    n = num_f0_frames(len(x))
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    window = int(round(opts.window_ms * sample_rate / 1000))
    min_lag = max(2, int(math.floor(sample_rate / opts.f0_max)))
    max_lag = int(math.ceil(sample_rate / opts.f0_min))
    frames = _frames(x, n, window, window + max_lag + 1)  # (N, W + L + 1)
    frames = frames - frames.mean(axis=1, keepdims=True)
    d = _cmnd(frames, window, max_lag + 1)  # (N, L + 2): one lag more for the parabola

    search = d[:, min_lag:max_lag + 1]
    below = search < opts.threshold
    first = np.where(below.any(axis=1), below.argmax(axis=1), -1)
    f0 = np.zeros(n)
    for k in np.nonzero(first >= 0)[0]:
        tau = min_lag + first[k]
        while tau < max_lag and d[k, tau + 1] < d[k, tau]:  # slide down to the dip
            tau += 1
        a, b, c = d[k, tau - 1], d[k, tau], d[k, tau + 1]
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom > 1e-12 else 0.0
        f0[k] = sample_rate / (tau + float(np.clip(shift, -1.0, 1.0)))

    rms = np.sqrt((frames[:, :window] ** 2).mean(axis=1))
    loud = rms >= max(opts.silence_rms, rms.max() * 10 ** (-opts.silence_db / 20))
    f0[~loud] = 0.0
    f0[(f0 < opts.f0_min * 0.9) | (f0 > opts.f0_max * 1.1)] = 0.0
    return f0.astype(np.float32)


def register_f0_tracker(name: str) -> Callable[[F0Tracker], F0Tracker]:
    """Register an F0 tracker (16 kHz (T,) -> (ceil(T / 80),) Hz, unvoiced 0) by name."""

    def deco(fn: F0Tracker) -> F0Tracker:
        F0_TRACKERS[name] = fn
        return fn

    return deco


register_f0_tracker("yin")(extract_f0)


def f0_tracker(name: str, what: str = "--f0") -> F0Tracker:
    """The tracker registered as ``name``; :class:`InputError` (starting with ``what``, where
    the name came from) listing the known ones."""
    from . import f0_yaapt  # noqa: F401 - registers yaapt

    if name not in F0_TRACKERS:
        raise InputError(f"{what} {name!r}: unknown F0 tracker; use one of "
                         f"{', '.join(sorted(F0_TRACKERS))}")
    return F0_TRACKERS[name]


def track_f0(wav: np.ndarray, tracker: str = "yin") -> np.ndarray:
    """16 kHz mono (T,) -> F0 in Hz float32 (ceil(T / 80),), unvoiced 0, by ``tracker``."""
    return f0_tracker(tracker)(wav)


def vocoder_f0_tracker(vocoder: Any, tracker: str | None = None) -> str:
    """The tracker for an F0-conditioned vocoder: ``tracker`` when given, else the one its
    config names (``"f0": {"tracker": ...}``), else :data:`VOCODER_F0_TRACKER`."""
    name = tracker or getattr(getattr(vocoder, "f0", None), "tracker", None) \
        or VOCODER_F0_TRACKER
    f0_tracker(name)  # refuse an unknown name before any audio is read
    return name


def fit_f0_length(f0: np.ndarray, n_frames: int) -> np.ndarray:
    """F0 (M,) at 200 Hz -> exactly ``4 * n_frames`` values: extra values are cut, missing
    ones repeat the last (a tracker on the audio gives a few more than the tokenizer's
    unit frames)."""
    want = F0_PER_FRAME * n_frames
    f0 = np.asarray(f0, dtype=np.float32).reshape(-1)
    if len(f0) >= want:
        return f0[:want]
    if len(f0) == 0:
        return np.zeros(want, dtype=np.float32)
    return np.pad(f0, (0, want - len(f0)), mode="edge")
