from __future__ import annotations

import numpy as np
import pytest

from spokenlm.common.errors import InputError
from spokenlm.vocoder.f0 import F0_HOP, PitchOptions, extract_f0, fit_f0_length, num_f0_frames

SR = 16000


def harmonic(f0: float | np.ndarray, seconds: float, n_harmonics: int = 5) -> np.ndarray:
    """A tone with 1/k harmonics; ``f0`` constant or one value per sample."""
    n = int(seconds * SR)
    f0 = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    return 0.3 * sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1))


@pytest.mark.parametrize("f0", [65.0, 110.0, 180.0, 260.0, 390.0])
@pytest.mark.parametrize("n_harmonics", [1, 5])
def test_tracks_steady_tones_within_two_percent(f0: float, n_harmonics: int) -> None:
    wav = harmonic(f0, 0.6, n_harmonics)
    est = extract_f0(wav)
    assert est.dtype == np.float32 and len(est) == num_f0_frames(len(wav)) == 120
    inner = est[4:-4]  # frames whose window lies inside the clip
    assert (inner > 0).all()
    assert np.abs(inner / f0 - 1).max() < 0.02


def test_follows_a_glide_at_the_frame_centres() -> None:
    n = int(0.8 * SR)
    track = np.linspace(100.0, 220.0, n)
    est = extract_f0(harmonic(track, 0.8))
    centres = np.arange(len(est)) * F0_HOP  # frame k describes the signal around 80 k
    inner = slice(4, -4)
    assert np.abs(est[inner] / track[centres[inner]] - 1).max() < 0.02


def test_silence_and_noise_are_unvoiced() -> None:
    assert not extract_f0(np.zeros(SR // 2)).any()
    noise = 0.1 * np.random.default_rng(0).standard_normal(SR)
    assert (extract_f0(noise) > 0).mean() < 0.05
    wav = np.concatenate([np.zeros(SR // 4), harmonic(150.0, 0.5), np.zeros(SR // 4)])
    est = extract_f0(wav)
    assert not est[:45].any() and not est[-45:].any()  # quiet parts (10 ms from the edges)
    assert (np.abs(est[55:-55] / 150 - 1) < 0.02).all()


def test_lengths_and_bad_inputs() -> None:
    assert len(extract_f0(np.zeros(0))) == 0
    assert num_f0_frames(320 * 7) == 28 and num_f0_frames(321) == 5
    np.testing.assert_array_equal(fit_f0_length(np.arange(10.0), 2), np.arange(8.0))
    np.testing.assert_array_equal(fit_f0_length(np.array([1.0, 2.0]), 1), [1, 2, 2, 2])
    assert not fit_f0_length(np.zeros(0), 2).any() and len(fit_f0_length(np.zeros(0), 2)) == 8
    with pytest.raises(InputError, match="16000 Hz"):
        extract_f0(np.zeros(100), sample_rate=22050)
    with pytest.raises(InputError, match="F0 range"):
        extract_f0(np.zeros(100), options=PitchOptions(f0_min=300, f0_max=200))
