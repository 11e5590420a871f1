"""speech-resynthesis unit HiFi-GAN (g_XXXXXXXX + config.json) <-> spokenlm hifigan.

The checkpoint is written here in the original format with random weights, and the
original ``CodeGenerator`` forward is re-written with functional ops on its state dict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spokenlm.common.errors import InputError
from spokenlm.interop.speech_resynthesis import export_vocoder, import_vocoder
from spokenlm.vocoder.base import load_vocoder

H: dict[str, Any] = {  # a tiny speech-resynthesis config (hubert100_lut.json's fields)
    "resblock": "1", "upsample_rates": [5, 4, 4, 2, 2], "upsample_kernel_sizes": [11, 8, 8, 4, 4],
    "upsample_initial_channel": 32, "resblock_kernel_sizes": [3, 5],
    "resblock_dilation_sizes": [[1, 3], [1, 3]], "num_embeddings": 12, "embedding_dim": 16,
    "model_in_dim": 16, "segment_size": 8960, "code_hop_size": 320, "f0": False,
    "multispkr": False, "sampling_rate": 16000, "num_mels": 80, "n_fft": 1024,
    "dur_prediction_weight": 1.0,
    "dur_predictor_params": {"encoder_embed_dim": 16, "var_pred_hidden_dim": 16,
                             "var_pred_kernel_size": 3, "var_pred_dropout": 0.5},
}


def _wn(g: torch.Generator, prefix: str, shape: tuple[int, ...], state: dict) -> None:
    state[f"{prefix}.weight_v"] = torch.randn(*shape, generator=g)
    state[f"{prefix}.weight_g"] = 0.2 + torch.rand(shape[0], 1, 1, generator=g)
    state[f"{prefix}.bias"] = 0.1 * torch.randn(shape[1] if "ups" in prefix else shape[0],
                                                generator=g)


def original_state(h: dict[str, Any], n_speakers: int = 0, dur: bool = True,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    e, ch = h["embedding_dim"], h["upsample_initial_channel"]
    s: dict[str, torch.Tensor] = {"dict.weight": torch.randn(h["num_embeddings"], e, generator=g)}
    if n_speakers:
        s["spkr.weight"] = torch.randn(n_speakers, e, generator=g)
    _wn(g, "conv_pre", (ch, h["model_in_dim"], 7), s)
    for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
        c_in, c_out = ch // 2 ** i, ch // 2 ** (i + 1)
        _wn(g, f"ups.{i}", (c_in, c_out, k), s)  # ConvTranspose1d weight: (in, out, k)
        for j, (kr, dil) in enumerate(zip(h["resblock_kernel_sizes"],
                                          h["resblock_dilation_sizes"])):
            n = i * len(h["resblock_kernel_sizes"]) + j
            for m in range(len(dil)):
                _wn(g, f"resblocks.{n}.convs1.{m}", (c_out, c_out, kr), s)
                _wn(g, f"resblocks.{n}.convs2.{m}", (c_out, c_out, kr), s)
    _wn(g, "conv_post", (1, ch // 2 ** len(h["upsample_rates"]), 7), s)
    if dur:
        hid = h["dur_predictor_params"]["var_pred_hidden_dim"]
        for name, shape in (("conv1.0", (hid, e, 3)), ("conv2.0", (hid, hid, 3))):
            s[f"dur_predictor.{name}.weight"] = 0.3 * torch.randn(*shape, generator=g)
            s[f"dur_predictor.{name}.bias"] = 0.1 * torch.randn(hid, generator=g)
        for name in ("ln1", "ln2"):
            s[f"dur_predictor.{name}.weight"] = 1 + 0.1 * torch.randn(hid, generator=g)
            s[f"dur_predictor.{name}.bias"] = 0.1 * torch.randn(hid, generator=g)
        s["dur_predictor.proj.weight"] = 0.3 * torch.randn(1, hid, generator=g)
        s["dur_predictor.proj.bias"] = torch.tensor([1.0])
    return s


def write_original(folder: Path, h: dict[str, Any], state: dict[str, torch.Tensor]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"generator": state}, folder / "g_00400000")
    (folder / "config.json").write_text(json.dumps(h))
    return folder / "g_00400000"


@torch.no_grad()
def reference_generator(s: dict[str, torch.Tensor], h: dict[str, Any], code: torch.Tensor,
                        spkr: torch.Tensor | None = None) -> torch.Tensor:
    """speech-resynthesis ``CodeGenerator.forward(code=, spkr=)``: (1, F) -> (1, 1, F * 320)."""
    def w(p: str) -> torch.Tensor:
        v, g = s[f"{p}.weight_v"], s[f"{p}.weight_g"]
        return g * v / v.pow(2).sum(dim=(1, 2), keepdim=True).sqrt()

    x = s["dict.weight"][code].transpose(1, 2)
    if spkr is not None:
        x = torch.cat([x, s["spkr.weight"][spkr][:, :, None].expand(-1, -1, x.shape[-1])], 1)
    x = F.conv1d(x, w("conv_pre"), s["conv_pre.bias"], padding=3)
    nk = len(h["resblock_kernel_sizes"])
    for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
        x = F.conv_transpose1d(F.leaky_relu(x, 0.1), w(f"ups.{i}"), s[f"ups.{i}.bias"], u,
                               padding=(k - u) // 2)
        xs = 0
        for j, (kr, dil) in enumerate(zip(h["resblock_kernel_sizes"],
                                          h["resblock_dilation_sizes"])):
            y, p = x, f"resblocks.{i * nk + j}"
            for m, d in enumerate(dil):
                t = F.conv1d(F.leaky_relu(y, 0.1), w(f"{p}.convs1.{m}"), s[f"{p}.convs1.{m}.bias"],
                             dilation=d, padding=(kr * d - d) // 2)
                t = F.conv1d(F.leaky_relu(t, 0.1), w(f"{p}.convs2.{m}"), s[f"{p}.convs2.{m}.bias"],
                             padding=(kr - 1) // 2)
                y = t + y
            xs = xs + y
        x = xs / nk
    return torch.tanh(F.conv1d(F.leaky_relu(x), w("conv_post"), s["conv_post.bias"], padding=3))


@torch.no_grad()
def reference_durations(s: dict[str, torch.Tensor], code: torch.Tensor) -> torch.Tensor:
    """``VariancePredictor`` on the unit embeddings -> clamp(round(exp(log d) - 1), 1)."""
    x = s["dict.weight"][code]
    for conv, ln in (("conv1.0", "ln1"), ("conv2.0", "ln2")):
        x = F.relu(F.conv1d(x.transpose(1, 2), s[f"dur_predictor.{conv}.weight"],
                            s[f"dur_predictor.{conv}.bias"], padding=1)).transpose(1, 2)
        x = F.layer_norm(x, x.shape[-1:], s[f"dur_predictor.{ln}.weight"],
                         s[f"dur_predictor.{ln}.bias"])
    log_d = F.linear(x, s["dur_predictor.proj.weight"], s["dur_predictor.proj.bias"])[..., 0]
    return torch.clamp(torch.round(torch.exp(log_d) - 1).long(), min=1)


UNITS = [3, 7, 1, 11, 0, 5]


def test_import_matches_original_forward_and_duration(tmp_path: Path) -> None:
    state = original_state(H)
    out = import_vocoder(checkpoint=write_original(tmp_path / "orig", H, state),
                         output=tmp_path / "voc")
    model = load_vocoder(out)
    code = torch.tensor([UNITS])
    dur = reference_durations(state, code)
    frames = torch.repeat_interleave(code, dur[0], dim=1)
    with torch.no_grad():
        assert (model.generate(frames)[0] - reference_generator(state, H, frames)[0, 0]
                ).abs().max() < 1e-5
    wav = model.synthesize(UNITS)  # durations from the imported predictor
    np.testing.assert_allclose(wav, reference_generator(state, H, frames)[0, 0].numpy(),
                               atol=1e-5)


@pytest.mark.parametrize("plain_weights", [False, True])
def test_multispeaker_without_duration_round_trips(tmp_path: Path, plain_weights: bool) -> None:
    h = {**H, "multispkr": "from_input_file", "model_in_dim": 32}
    h.pop("dur_predictor_params")
    state = original_state(h, n_speakers=5, dur=False, seed=1)
    saved = dict(state)
    if plain_weights:  # a generator saved after remove_weight_norm()
        for key in [k for k in saved if k.endswith("weight_v")]:
            p = key[: -len(".weight_v")]
            v, g = saved.pop(f"{p}.weight_v"), saved.pop(f"{p}.weight_g")
            saved[f"{p}.weight"] = g * v / v.pow(2).sum(dim=(1, 2), keepdim=True).sqrt()
    out = import_vocoder(checkpoint=write_original(tmp_path / "orig", h, saved),
                         output=tmp_path / "voc")
    model = load_vocoder(out)
    assert model.duration is None and model.speakers == ["0", "1", "2", "3", "4"]
    frames = torch.tensor([[2, 2, 9, 9, 9, 4]])
    with torch.no_grad():
        got = model.generate(frames, torch.tensor([3]))[0]
    assert (got - reference_generator(state, h, frames, torch.tensor([3]))[0, 0]).abs().max() < 1e-5

    exported = export_vocoder(vocoder=out, output=tmp_path / "back")
    back = torch.load(exported / "g_00000000", weights_only=True)["generator"]
    config = json.loads((exported / "config.json").read_text())
    assert config["multispkr"] and config["model_in_dim"] == 32
    assert set(back) == set(state)

    def effective(sd: dict[str, torch.Tensor], k: str) -> torch.Tensor:  # weight-norm product
        if not k.endswith(("weight_g", "weight_v")):
            return sd[k]
        v, g = sd[k[:-1] + "v"], sd[k[:-1] + "g"]
        return g * v / v.pow(2).sum(dim=(1, 2), keepdim=True).sqrt()

    for k in state:  # exact g / v when they were saved; the same product otherwise
        torch.testing.assert_close(effective(back, k) if plain_weights else back[k],
                                   effective(state, k) if plain_weights else state[k],
                                   rtol=1e-5, atol=1e-6)


def test_refuses_f0_and_mismatched_configs(tmp_path: Path) -> None:
    ckpt = write_original(tmp_path / "f0", {**H, "f0": True}, original_state(H))
    with pytest.raises(InputError, match="F0"):
        import_vocoder(checkpoint=ckpt, output=tmp_path / "voc")
    ckpt = write_original(tmp_path / "wrong", {**H, "upsample_initial_channel": 64},
                          original_state(H))
    with pytest.raises(InputError, match="do not fit"):
        import_vocoder(checkpoint=ckpt, output=tmp_path / "voc")
    with pytest.raises(InputError, match="config"):
        import_vocoder(checkpoint=ckpt, config=tmp_path / "nope.json", output=tmp_path / "voc")
