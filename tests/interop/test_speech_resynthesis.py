"""speech-resynthesis unit HiFi-GAN (g_XXXXXXXX + config.json) <-> spokenlm hifigan.

The checkpoint is written here in the original format with random weights, and the
original ``CodeGenerator`` forward is re-written with functional ops on its state dict
(:mod:`spokenlm.testing.speech_resynthesis`). F0-conditioned generators:
``test_speech_resynthesis_f0.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.common.errors import InputError
from spokenlm.interop.speech_resynthesis import (export_vocoder, import_vocoder,
                                                 original_checkpoint)
from spokenlm.testing.speech_resynthesis import TINY_CONFIG as H
from spokenlm.testing.speech_resynthesis import (original_state, reference_durations,
                                                 reference_generator, write_original)
from spokenlm.vocoder.base import load_vocoder

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


@pytest.mark.parametrize("key", ["lambda_commit", "lambda_commit_code", "embedder_params"])
def test_refuses_unsupported_inputs(tmp_path: Path, key: str) -> None:
    ckpt = write_original(tmp_path / "orig", {**H, key: 0.02}, original_state(H))
    with pytest.raises(InputError, match=key):
        import_vocoder(checkpoint=ckpt, output=tmp_path / "voc")


def test_refuses_mismatched_configs(tmp_path: Path) -> None:
    # raw F0 makes the generator run at 200 Hz: rates must multiply to 80, not 320
    ckpt = write_original(tmp_path / "f0", {**H, "f0": True}, original_state(H))
    with pytest.raises(InputError, match="raw-F0 .* needs 80"):
        import_vocoder(checkpoint=ckpt, output=tmp_path / "voc")
    ckpt = write_original(tmp_path / "wrong", {**H, "upsample_initial_channel": 64},
                          original_state(H))
    with pytest.raises(InputError, match="do not fit"):
        import_vocoder(checkpoint=ckpt, output=tmp_path / "voc")
    with pytest.raises(InputError, match="config"):
        import_vocoder(checkpoint=ckpt, config=tmp_path / "nope.json", output=tmp_path / "voc")


@pytest.mark.parametrize("hop, rates, kernels", [(640, [5, 4, 4, 4, 2], [11, 8, 8, 8, 4]),
                                                 (160, [5, 4, 2, 2, 2], [11, 8, 4, 4, 4])])
def test_other_code_hops_import_at_their_frame_rate(tmp_path: Path, hop: int, rates: list,
                                                    kernels: list) -> None:
    """25 Hz (hop 640, the TWIST/textlesslib mHuBERT vocoder's rate) and 100 Hz (hop 160)
    generators import as vocoders of that frame rate and match the original forward."""
    h = {**H, "code_hop_size": hop, "upsample_rates": rates, "upsample_kernel_sizes": kernels}
    state = original_state(h, seed=2)
    model = load_vocoder(import_vocoder(checkpoint=write_original(tmp_path / "orig", h, state),
                                        output=tmp_path / "voc"))
    assert model.hop_length == hop and model.framing.frame_rate == 16000 / hop
    frames = torch.tensor([[3, 3, 7, 1, 1, 1, 0]])
    with torch.no_grad():
        ours = model.generate(frames)[0]
    ref = reference_generator(state, h, frames)[0, 0]
    assert ours.shape[-1] == 7 * hop and (ours - ref).abs().max() < 1e-4
    _, exported = original_checkpoint(model)
    assert exported["code_hop_size"] == hop


def test_code_hop_that_the_generator_does_not_give_is_refused(tmp_path: Path) -> None:
    h = {**H, "code_hop_size": 640}  # upsample_rates still multiply to 320
    with pytest.raises(InputError, match="code_hop_size=640"):
        import_vocoder(checkpoint=write_original(tmp_path / "orig", h, original_state(h)),
                       output=tmp_path / "voc")
