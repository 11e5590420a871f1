"""Long speech is synthesised chunk by chunk and written as it comes: HiFi-GAN (plain and
F0-conditioned) gives the one-piece waveform to float rounding; the fast vocoder's log-mel
network is exact and its chunked Griffin-Lim is as close to the target spectrogram as the
one-piece Griffin-Lim (tolerances below)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from spokenlm.audio import chunking
from spokenlm.audio.chunking import plan_chunks
from spokenlm.audio.load import save_wav
from spokenlm.testing.audio import random_speech_like_wav
from spokenlm.testing.speech_resynthesis import TINY_QUANTIZER
from spokenlm.vocoder.f0_norm import F0Config, F0Stats
from spokenlm.vocoder.fast import FastVocoder
from spokenlm.vocoder.hifigan import _V1, HIFIGAN_SIZES, UnitHifiGan

#: one 16-bit step: chunked and one-piece files may differ by rounding at most this much
LSB = 1


def _loud(model: torch.nn.Module, std: float = 0.3) -> torch.nn.Module:
    """Conv weights far from the 0.01 init, so every tap of the receptive field matters
    (with tiny weights a too-short context would go unnoticed)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)) and m.weight.numel():
                m.weight.normal_(0.0, std)
    return model


def _hifigan(config: dict, hop: int = 320, **extra) -> UnitHifiGan:
    torch.manual_seed(0)
    return _loud(UnitHifiGan({"n_units": 8, **config, "speakers": [], "hop_length": hop,
                              "duration_predictor": False, **extra}).eval())


def _units(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 8, n), rng.integers(1, 6, n)


def test_plan_chunks_cover_each_frame_once() -> None:
    for n, chunk, ctx, mult, min_last in [(1, 5, 3, 1, 0), (100, 7, 3, 1, 0), (101, 8, 5, 4, 0),
                                          (103, 20, 10, 1, 10), (20, 20, 4, 1, 0)]:
        plan = plan_chunks(n, chunk, ctx, mult, min_last)
        assert [c.start for c in plan] == [0] + [c.stop for c in plan[:-1]]
        assert plan[-1].stop == n
        assert all(c.start % mult == 0 and c.lo >= 0 and c.hi <= n for c in plan)
        assert all(c.left == min(-(-ctx // mult) * mult, c.start) for c in plan)
        assert len(plan) == 1 or plan[-1].stop - plan[-1].start >= min_last


@pytest.mark.parametrize("name", ["tiny", "v1-narrow", "25hz"])
def test_hifigan_chunked_equals_one_piece(name: str) -> None:
    if name == "v1-narrow":  # HiFi-GAN V1's kernels and dilations, few channels
        model = _hifigan({**_V1, "upsample_initial_channel": 32, "embedding_dim": 8})
    else:
        model = _hifigan(HIFIGAN_SIZES["tiny"], hop=640 if name == "25hz" else 320)
    units, durations = _units(90 if name == "tiny" else 40)
    whole = model.synthesize(units, durations)
    for chunk in ((1, 13, 64, 10_000) if name == "tiny" else (7, 50)):
        pieces = list(model.synthesize_stream(units, durations, chunk_frames=chunk))
        joined = np.concatenate(pieces)
        assert joined.shape == whole.shape == (durations.sum() * model.hop_length,)
        np.testing.assert_allclose(joined, whole, atol=1e-6, rtol=0)


def test_hifigan_context_is_needed() -> None:
    """Chunks run with less context than the receptive field give another waveform, so the
    equality above depends on the declared context."""
    model = _hifigan(HIFIGAN_SIZES["tiny"])
    frames = torch.from_numpy(np.repeat(*_units(60)))[None]
    with torch.inference_mode():
        whole = model.generate(frames)[0]
        def chunked(context: int) -> torch.Tensor:
            return torch.cat([model.generate(frames[:, c.lo:c.hi])[0][
                c.left * 320:(c.left + c.stop - c.start) * 320]
                for c in plan_chunks(frames.shape[1], 20, context)])

        exact = (chunked(model.receptive_field_frames()) - whole).abs().max()
        bare = (chunked(0) - whole).abs().max()
    assert exact < 1e-6 and bare > 1e-4


@pytest.mark.parametrize("quantizer", [False, True])
def test_f0_hifigan_chunked_equals_one_piece(quantizer: bool) -> None:
    rates = {} if quantizer else {"upsample_rates": [5, 4, 2, 2],
                                  "upsample_kernel_sizes": [11, 8, 4, 4]}
    f0 = F0Config(quantizer=TINY_QUANTIZER if quantizer else None, normalize=True,
                  stats=F0Stats(150.0, 30.0, {}))
    model = _hifigan({**HIFIGAN_SIZES["tiny"], **rates}, f0=f0.to_json())
    units, durations = _units(40, seed=1)
    n = int(durations.sum())
    hz = 120 + 30 * np.sin(np.arange(4 * n) / 7.0)
    hz[np.random.default_rng(0).random(4 * n) < 0.2] = 0.0
    whole = model.synthesize(units, durations, f0=hz)
    for chunk in (5, 21):  # chunks start on multiples of the quantizer's 4 frames
        joined = np.concatenate(list(model.synthesize_stream(units, durations, f0=hz,
                                                             chunk_frames=chunk)))
        np.testing.assert_allclose(joined, whole, atol=1e-6, rtol=0)


def test_fast_vocoder_log_mel_network_is_exact_when_chunked() -> None:
    torch.manual_seed(0)
    model = _loud(FastVocoder.build("base", 8, duration_predictor=False).eval(), 0.2)
    frames = torch.from_numpy(np.repeat(*_units(50)))[None]
    ctx, r = model.receptive_field_frames(), model.ratio
    with torch.inference_mode():
        whole = model(frames)
        pieces = [model(frames[:, c.lo:c.hi])[:, :, c.left * r:(c.left + c.stop - c.start) * r]
                  for c in plan_chunks(frames.shape[1], 17, ctx)]
        bare = [model(frames[:, c.lo:c.hi])[:, :, c.left * r:(c.left + c.stop - c.start) * r]
                for c in plan_chunks(frames.shape[1], 17, ctx - 3)]
    scale = float(whole.abs().max())  # loud weights: values ~100, float rounding ~1e-5
    assert float((torch.cat(pieces, dim=-1) - whole).abs().max()) <= 1e-6 * scale
    assert float((torch.cat(bare, dim=-1) - whole).abs().max()) > 1e-3 * scale


class _TableVocoder(FastVocoder):
    """A fast vocoder whose "network" returns a given log-mel: unit i = frame i's columns."""

    table: torch.Tensor

    def forward(self, frames: torch.Tensor, speaker: torch.Tensor | None = None) -> torch.Tensor:
        cols = (frames[0][:, None] * self.ratio + torch.arange(self.ratio)).reshape(-1)
        return self.table[:, :, cols]


def test_fast_vocoder_chunked_griffin_lim_is_as_close_as_one_piece() -> None:
    """Griffin-Lim is global and starts from random phases, so chunked and one-piece
    waveforms differ sample for sample. Both are judged against the spectrogram they
    invert (speech-like audio, 5 s, chunks of 1 s): the chunked log-mel error is at most
    10 % above the one-piece one on average, and no frame (chunk boundaries included) is
    more than 25 % worse than the one-piece worst frame."""
    wav = torch.from_numpy(random_speech_like_wav(5.0, seed=3))
    n = len(wav) // 320
    torch.manual_seed(0)
    model = _TableVocoder.build("tiny", n, duration_predictor=False).eval()
    model.table = model.mel.log_mel(wav[None])[:, :, :2 * n]
    frames = torch.arange(n)[None]
    with torch.inference_mode():
        whole = model.generate(frames)[0]
        pieces = list(model.generate_stream(frames, chunk_frames=50))
        joined = torch.cat(pieces)
        err_whole = (model.mel.log_mel(whole[None])[:, :, :2 * n] - model.table).abs().mean(1)
        err = (model.mel.log_mel(joined[None])[:, :, :2 * n] - model.table).abs().mean(1)
    assert len(pieces) > 4 and joined.shape == whole.shape == (n * 320,)
    assert float(err.mean()) <= 1.1 * float(err_whole.mean())
    assert float(err.max()) <= 1.25 * float(err_whole.max())
    # one chunk: exactly the one-piece synthesis
    with torch.inference_mode():
        torch.testing.assert_close(torch.cat(list(model.generate_stream(frames))), whole)


@pytest.mark.parametrize("kind", ["hifigan", "fast"])
def test_synthesize_to_wav(tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Short speech: the file save_wav(synthesize(...)) writes, byte for byte. Long speech
    (threshold lowered): written chunk by chunk; HiFi-GAN's samples within one 16-bit step."""
    torch.manual_seed(0)
    model = (_hifigan(HIFIGAN_SIZES["tiny"]) if kind == "hifigan"
             else FastVocoder.build("tiny", 8, duration_predictor=True).eval())
    units, durations = _units(150, seed=2)
    n = model.synthesize_to_wav(tmp_path / "a.wav", units, durations)
    ref = save_wav(tmp_path / "ref.wav", model.synthesize(units, durations))
    assert (tmp_path / "a.wav").read_bytes() == ref.read_bytes() and n == durations.sum() * 320
    if kind == "fast":  # durations from the predictor: the same as synthesize's
        model.synthesize_to_wav(tmp_path / "p.wav", units)
        save_wav(tmp_path / "pref.wav", model.synthesize(units))
        assert (tmp_path / "p.wav").read_bytes() == (tmp_path / "pref.wav").read_bytes()
    monkeypatch.setattr(chunking, "STREAM_ABOVE_S", 2.0)
    n = model.synthesize_to_wav(tmp_path / "b.wav", units, durations)
    long, _ = sf.read(tmp_path / "b.wav", dtype="int16")
    one, _ = sf.read(ref, dtype="int16")
    assert n == len(long) == len(one)
    if kind == "hifigan":
        assert np.abs(long.astype(int) - one).max() <= LSB
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically
