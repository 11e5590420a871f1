"""F0-conditioned speech-resynthesis generators (``"f0": true``, raw F0 or F0 quantizer)
-> spokenlm hifigan, checked against the original ``CodeGenerator`` forward re-written in
:mod:`spokenlm.testing.speech_resynthesis`.

Files are laid out as in a speech-resynthesis checkout: ``datasets/tiny/f0_stats.pth``,
``checkpoints/tiny/g_00400000`` + ``config.json``, ``checkpoints/tiny_f0_vq/g_00400000``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from spokenlm.common.errors import InputError
from spokenlm.interop.speech_resynthesis import export_vocoder, import_vocoder
from spokenlm.testing.speech_resynthesis import (f0_config, original_state, reference_generator,
                                                 write_original)
from spokenlm.vocoder.base import load_vocoder

UNITS, DURS = [3, 7, 1, 11, 0, 5], [2, 3, 1, 4, 2, 4]  # 16 frames: 64 F0 values
N_SPEAKERS = 4
GAIN = 0.5  # conv norms for a lively, unsaturated tiny output (F0 changes it by > 1e-2)


def f0_contour(n: int, seed: int = 0) -> np.ndarray:
    """A wavy F0 track in Hz with two unvoiced stretches (0)."""
    rng = np.random.default_rng(seed)
    f0 = 140 + 40 * np.sin(np.arange(n) / 5.0) + rng.normal(0, 3, n)
    f0[5:11] = 0
    f0[40:47] = 0
    return f0.astype(np.float32)


def normalized(f0: np.ndarray, mean: float, std: float, median: bool) -> np.ndarray:
    """``CodeDataset`` F0 normalisation, written out for the test."""
    out = f0.astype(np.float32).copy()
    voiced = out != 0
    if median:
        out[~voiced] = (np.median(out[voiced]) - mean) / std
    out[voiced] = (out[voiced] - mean) / std
    return out


def write_stats(path: Path, per_speaker: bool) -> dict[Any, Any]:
    """LJSpeech-style (global numpy float64) or VCTK-style (np.int64 keys, float32) stats."""
    if per_speaker:
        stats: dict[Any, Any] = {np.int64(i): {"f0_mean": np.float32(110 + 20 * i),
                                               "f0_std": np.float32(20 + 3 * i)}
                                 for i in range(N_SPEAKERS - 1)}  # the last one uses global
        stats.update(f0_mean=np.float64(150.0), f0_std=np.float64(35.0))
    else:
        stats = {"f0_mean": np.float64(145.5), "f0_std": np.float64(31.25)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(stats, path)
    return stats


def checkout(root: Path, h: dict[str, Any], state: dict[str, torch.Tensor], per_speaker: bool,
             separate_quantizer: bool = False) -> tuple[Path, dict[Any, Any]]:
    """Write stats, generator (+ separate quantizer file); return (g_ path, stats)."""
    stats = write_stats(root / h["f0_stats"], per_speaker)
    if separate_quantizer:
        q = {k[len("quantizer."):]: v for k, v in state.items() if k.startswith("quantizer.")}
        state = {k: v for k, v in state.items() if not k.startswith("quantizer.")}
        (root / h["f0_quantizer_path"]).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"generator": q}, root / h["f0_quantizer_path"])
    return write_original(root / "checkpoints" / "tiny", h, state), stats


VARIANTS = {  # name: (quantizer, speakers, per-speaker stats, F0 options)
    "raw": (False, 0, False, {}),
    "quantizer": (True, 0, False, {}),
    "quantizer+multispkr+median": (True, N_SPEAKERS, True, {"f0_median": True}),
    "raw+multispkr+feats+median": (False, N_SPEAKERS, True, {"f0_feats": True, "f0_median": True}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_f0_import_matches_original_forward(tmp_path: Path, variant: str) -> None:
    quantizer, n_spk, per_speaker, options = VARIANTS[variant]
    h = f0_config(quantizer, speakers=n_spk, **options)
    state = original_state(h, n_speakers=n_spk, dur=False, seed=3, gain=GAIN)
    ckpt, stats = checkout(tmp_path, h, state, per_speaker)
    model = load_vocoder(import_vocoder(checkpoint=ckpt, output=tmp_path / "voc"))
    assert model.needs_f0 and len(model.speakers) == n_spk

    f0_hz = f0_contour(4 * sum(DURS))
    frames = torch.repeat_interleave(torch.tensor([UNITS]), torch.tensor(DURS), dim=1)
    for spk in ([None] if not n_spk else [1, N_SPEAKERS - 1]):  # own stats / global stats
        entry = stats.get(spk, stats) if spk is not None else stats
        mean, std = float(entry["f0_mean"]), float(entry["f0_std"])
        f0_in = torch.from_numpy(normalized(f0_hz, mean, std, h["f0_median"]))[None]
        ref = reference_generator(
            state, h, frames, spkr=None if spk is None else torch.tensor([[spk]]),
            f0=f0_in[:, None], f0_stats=torch.tensor([[mean, std]]) if h["f0_feats"] else None)
        wav = model.synthesize(UNITS, DURS, speaker=spk, f0=f0_hz)
        assert wav.shape == (16 * 320,)
        assert np.abs(wav - ref[0, 0].numpy()).max() < 1e-4
        wrong = model.synthesize(UNITS, DURS, speaker=spk, f0=f0_hz[::-1].copy())
        assert np.abs(wrong - ref[0, 0].numpy()).max() > 1e-2  # the F0 path matters
        if quantizer:  # F0 codes at 12.5 Hz must vary for the test to mean something
            assert model.f0.quantizer.encode(f0_in[:, None]).unique().numel() > 1


def test_quantizer_weights_from_separate_file(tmp_path: Path) -> None:
    h = f0_config(True)
    state = original_state(h, dur=False, seed=5, gain=GAIN)
    ckpt, stats = checkout(tmp_path / "repo", h, state, per_speaker=False,
                           separate_quantizer=True)
    model = load_vocoder(import_vocoder(checkpoint=ckpt, output=tmp_path / "voc"))
    f0_hz = f0_contour(64, seed=1)
    f0_in = normalized(f0_hz, float(stats["f0_mean"]), float(stats["f0_std"]), False)
    frames = torch.repeat_interleave(torch.tensor([UNITS]), torch.tensor(DURS), dim=1)
    ref = reference_generator(state, h, frames, f0=torch.from_numpy(f0_in)[None, None])
    assert np.abs(model.synthesize(UNITS, DURS, f0=f0_hz) - ref[0, 0].numpy()).max() < 1e-4

    moved = tmp_path / "elsewhere" / "g_00400000"
    moved.parent.mkdir()
    shutil.move(tmp_path / "repo" / h["f0_quantizer_path"], moved)
    with pytest.raises(InputError, match="f0_quantizer_path .* --f0-quantizer"):
        import_vocoder(checkpoint=ckpt, output=tmp_path / "voc2")
    again = load_vocoder(import_vocoder(checkpoint=ckpt, f0_quantizer=moved,
                                        output=tmp_path / "voc2"))
    np.testing.assert_array_equal(again.synthesize(UNITS, DURS, f0=f0_hz),
                                  model.synthesize(UNITS, DURS, f0=f0_hz))


def test_f0_export_round_trips_in_the_original_format(tmp_path: Path) -> None:
    h = f0_config(True, speakers=N_SPEAKERS, f0_median=True)
    state = original_state(h, n_speakers=N_SPEAKERS, dur=False, seed=7, gain=GAIN)
    ckpt, stats = checkout(tmp_path / "repo", h, state, per_speaker=True)
    first = import_vocoder(checkpoint=ckpt, output=tmp_path / "voc")
    out = export_vocoder(vocoder=first, output=tmp_path / "back")

    back = torch.load(out / "g_00000000", weights_only=True)["generator"]
    assert set(back) == set(state)  # quantizer.* inside, as the original trainer saves it
    for k in state:
        torch.testing.assert_close(back[k], state[k])
    q_file = torch.load(out / "f0_quantizer" / "g_00000000", weights_only=True)["generator"]
    assert set(q_file) == {k[len("quantizer."):] for k in state if k.startswith("quantizer.")}
    config = json.loads((out / "config.json").read_text())
    for key in ("f0", "f0_normalize", "f0_median", "f0_feats", "f0_quantizer", "model_in_dim"):
        assert config[key] == h[key], key
    assert Path(config["f0_quantizer_path"]).is_file() and Path(config["f0_stats"]).is_file()
    saved = torch.load(config["f0_stats"], weights_only=True)
    assert saved["f0_mean"] == 150.0 and saved[1]["f0_mean"] == pytest.approx(130.0)

    again = load_vocoder(import_vocoder(checkpoint=out / "g_00000000", output=tmp_path / "v2"))
    model = load_vocoder(first)
    f0_hz = f0_contour(64, seed=2)
    for spk in (0, 3):
        np.testing.assert_array_equal(again.synthesize(UNITS, DURS, spk, f0=f0_hz),
                                      model.synthesize(UNITS, DURS, spk, f0=f0_hz))


def test_quantizer_vocoder_pads_to_whole_f0_codes(tmp_path: Path) -> None:
    h = f0_config(True)
    state = original_state(h, dur=False, seed=9, gain=GAIN)
    ckpt, stats = checkout(tmp_path, h, state, per_speaker=False)
    model = load_vocoder(import_vocoder(checkpoint=ckpt, output=tmp_path / "voc"))
    durs = [2, 3, 1, 4, 2, 1]  # 13 frames: the original needs a multiple of 4
    f0_hz = f0_contour(4 * 13 + 3)  # a tracker gives a few more values than unit frames
    wav = model.synthesize(UNITS, durs, f0=f0_hz)
    assert wav.shape == (13 * 320,)
    f0_in = normalized(f0_hz[:52], float(stats["f0_mean"]), float(stats["f0_std"]), False)
    f0_pad = np.concatenate([f0_in, np.full(12, f0_in[-1])])  # last frame repeated 3 times
    frames = torch.repeat_interleave(torch.tensor([UNITS]), torch.tensor(durs), dim=1)
    frames = torch.cat([frames, frames[:, -1:].repeat(1, 3)], dim=1)
    ref = reference_generator(state, h, frames, f0=torch.from_numpy(f0_pad)[None, None])
    assert np.abs(wav - ref[0, 0, :13 * 320].numpy()).max() < 1e-4


def test_f0_import_errors_are_clear(tmp_path: Path) -> None:
    h = f0_config(False)
    state = original_state(h, dur=False)
    ckpt = write_original(tmp_path / "nostats", h, state)  # f0_stats file absent
    with pytest.raises(InputError, match="f0_stats .* --f0-stats"):
        import_vocoder(checkpoint=ckpt, output=tmp_path / "voc")
    with pytest.raises(InputError, match="raw F0; drop --f0-quantizer"):
        import_vocoder(checkpoint=ckpt, f0_quantizer=ckpt, output=tmp_path / "voc")
    bad = write_original(tmp_path / "nof0", {**h, "f0": False}, state)
    with pytest.raises(InputError, match="f0_quantizer_path is set but f0 is not"):
        import_vocoder(checkpoint=bad, config=_write(tmp_path / "c.json", {
            **f0_config(True), "f0": False}), output=tmp_path / "voc")
    vq_config = {"f0_vq_params": {}, "f0_encoder_params": {}, "f0_decoder_params": {},
                 "lambda_commit": 0.02, "f0_stats": "x.pth"}
    with pytest.raises(InputError, match="F0 VQ-VAE config"):
        import_vocoder(checkpoint=bad, config=_write(tmp_path / "vq.json", vq_config),
                       output=tmp_path / "voc")
    stats = tmp_path / "stats.pth"
    torch.save([1.0, 2.0], stats)
    with pytest.raises(InputError, match="not the f0_stats dict"):
        import_vocoder(checkpoint=ckpt, f0_stats=stats, output=tmp_path / "voc")


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(json.dumps(config))
    return path
