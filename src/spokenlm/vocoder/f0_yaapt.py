"""YAAPT F0 (Zahorian & Hu 2008) through ``amfm_decompy.pYAAPT``, as speech-resynthesis runs it.

speech-resynthesis' ``get_yaapt_f0`` (dataset.py) is the F0 its vocoders were trained on:
the peak-normalised waveform (``librosa.util.normalize(audio) * 0.95`` in its dataset) padded
with 10 ms of zeros on each side, ``frame_length`` 20 ms, ``frame_space`` 5 ms,
``nccf_thresh1`` 0.25, ``tda_frame_length`` 25 ms, every other YAAPT parameter at its default
(F0 range 60-400 Hz), and ``samp_values`` (unvoiced = 0) unless the vocoder interpolates
(that is done later, by :meth:`~spokenlm.vocoder.f0_norm.F0Config.prepare`).

Same output contract as YIN's :func:`spokenlm.vocoder.f0.extract_f0`: frame ``k`` is centred
on sample ``80 k``, ``ceil(T / 80)`` values in Hz, unvoiced frames 0. YAAPT fails on clips
shorter than about 25 ms; those come back unvoiced, as speech-resynthesis' dataset does with
any YAAPT failure. It is slower than YIN (about 0.05 s per second of audio on one core).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..audio.constants import SAMPLE_RATE
from .f0 import F0_HOP, f0_input, num_f0_frames, register_f0_tracker


@dataclass(frozen=True)
class YaaptOptions:
    """speech-resynthesis' YAAPT settings (``frame_space`` is fixed by the 80-sample hop)."""

    frame_length_ms: float = 20.0
    tda_frame_length_ms: float = 25.0
    nccf_thresh1: float = 0.25
    f0_min: float = 60.0
    f0_max: float = 400.0
    #: peak the waveform is scaled to first (speech-resynthesis' dataset); None keeps it
    peak: float | None = 0.95


def extract_f0_yaapt(wav: np.ndarray, sample_rate: int = SAMPLE_RATE,
                     options: YaaptOptions | None = None) -> np.ndarray:
    """16 kHz mono waveform (T,) -> YAAPT F0 in Hz, float32 (ceil(T / 80),); unvoiced 0."""
    import amfm_decompy.basic_tools as basic
    import amfm_decompy.pYAAPT as pyaapt

    opts = options or YaaptOptions()
    x = f0_input(wav, sample_rate, opts.f0_min, opts.f0_max, "extract_f0_yaapt")
    n = num_f0_frames(len(x))
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if n == 0 or peak == 0.0 or not np.isfinite(peak):
        return np.zeros(n, dtype=np.float32)
    if opts.peak is not None:
        x = x * (opts.peak / peak)
    pad = int(opts.frame_length_ms * sample_rate / 1000) // 2
    signal = basic.SignalObj(np.pad(x, (pad, pad)), sample_rate)
    params = {"frame_length": opts.frame_length_ms, "frame_space": 1000.0 * F0_HOP / sample_rate,
              "nccf_thresh1": opts.nccf_thresh1, "tda_frame_length": opts.tda_frame_length_ms,
              "f0_min": opts.f0_min, "f0_max": opts.f0_max}
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # empty slices and 0/0 on silent stretches
            f0 = np.asarray(pyaapt.yaapt(signal, **params).samp_values, dtype=np.float64)
    except (IndexError, ValueError, ZeroDivisionError):  # clips too short for its filters
        return np.zeros(n, dtype=np.float32)
    f0 = np.where(np.isfinite(f0) & (f0 > 0), f0, 0.0)[:n]
    return np.pad(f0, (0, n - len(f0))).astype(np.float32)


register_f0_tracker("yaapt")(extract_f0_yaapt)
