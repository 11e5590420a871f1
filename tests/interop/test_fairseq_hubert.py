"""fairseq HuBERT .pt -> transformers HubertModel: same features as the reference forward."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spokenlm.common.errors import InputError
from spokenlm.interop.checkpoint import load_fairseq_checkpoint
from spokenlm.interop.fairseq_config import parse_conv_layers
from spokenlm.interop.fairseq_hubert import convert_fairseq_hubert, convert_hubert
from spokenlm.testing.fairseq import (fairseq_normalize, reference_hubert_features,
                                      tiny_fairseq_hubert)
from spokenlm.tokenize.encoders import build_encoder

CONFIGS = {
    "base": {},  # post-LN, group-norm conv front-end
    "large": {"layer_norm_first": True, "extractor_mode": "layer_norm", "conv_bias": True},
}


def hidden_states(model_dir: Path, wav: torch.Tensor) -> tuple[torch.Tensor, ...]:
    from transformers import HubertModel

    model = HubertModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    with torch.no_grad():
        return model(wav, output_hidden_states=True).hidden_states


def assert_matches_reference(ckpt_path: Path, model_dir: Path, wav: torch.Tensor) -> None:
    ckpt = load_fairseq_checkpoint(ckpt_path)
    cfg = ckpt["cfg"]["model"] if ckpt.get("cfg") else ckpt["args"]
    states = hidden_states(model_dir, wav)
    assert len(states) == cfg["encoder_layers"] + 1
    for layer, hf in enumerate(states):
        ref = reference_hubert_features(ckpt["model"], cfg, wav, layer)
        assert hf.shape == ref.shape
        assert (hf - ref).abs().max().item() < 1e-4, f"layer {layer}"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_converted_model_matches_reference_forward(tmp_path: Path, name: str) -> None:
    ckpt = tiny_fairseq_hubert(tmp_path / f"{name}.pt", seed=1, **CONFIGS[name])
    out = convert_fairseq_hubert(ckpt, tmp_path / "hf")
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {
        p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["do_stable_layer_norm"] is CONFIGS[name].get("layer_norm_first", False)
    report = json.loads((out / "spokenlm_conversion.json").read_text())
    assert set(report["dropped_keys"]) == {"label_embs_concat", "final_proj.weight",
                                           "final_proj.bias"}
    wav = torch.randn(2, 6400, generator=torch.Generator().manual_seed(0))
    assert_matches_reference(ckpt, out, wav)


def test_legacy_args_checkpoint(tmp_path: Path) -> None:
    ckpt = tiny_fairseq_hubert(tmp_path / "legacy.pt", cfg_style="args", **CONFIGS["large"])
    out = convert_hubert(checkpoint=ckpt, output=tmp_path / "hf")  # the CLI's function
    assert_matches_reference(ckpt, out, torch.randn(1, 4000))


def test_converted_dir_is_a_spokenlm_hubert_encoder(tmp_path: Path) -> None:
    ckpt = tiny_fairseq_hubert(tmp_path / "base.pt")
    out = convert_fairseq_hubert(ckpt, tmp_path / "hf")
    encoder = build_encoder({"name": "hubert", "path": str(out), "layer": 1})
    assert encoder.options.normalize is False and encoder.dim == 32
    wav = torch.randn(1, 4800)
    fairseq = load_fairseq_checkpoint(ckpt)
    ref = reference_hubert_features(fairseq["model"], fairseq["cfg"]["model"], wav, 1)
    with torch.no_grad():
        assert (encoder(wav) - ref).abs().max().item() < 1e-4


def test_normalize_flag_reaches_the_encoder(tmp_path: Path) -> None:
    ckpt = tiny_fairseq_hubert(tmp_path / "large.pt", normalize=True, **CONFIGS["large"])
    out = convert_fairseq_hubert(ckpt, tmp_path / "hf")
    assert json.loads((out / "preprocessor_config.json").read_text())["do_normalize"] is True
    encoder = build_encoder({"name": "hubert", "path": str(out), "layer": 2})
    assert encoder.options.normalize is True
    wav = 0.1 * torch.randn(1, 4800) + 0.05
    fairseq = load_fairseq_checkpoint(ckpt)
    ref = reference_hubert_features(fairseq["model"], fairseq["cfg"]["model"],
                                    fairseq_normalize(wav), 2)
    with torch.no_grad():  # eps 1e-7 (spokenlm) vs 1e-5 (fairseq) in the normalisation
        assert (encoder(wav) - ref).abs().max().item() < 1e-3


def test_finetuned_ctc_checkpoint(tmp_path: Path) -> None:
    src = tiny_fairseq_hubert(tmp_path / "base.pt")
    ckpt = load_fairseq_checkpoint(src)
    state = {f"w2v_encoder.w2v_model.{k}": v for k, v in ckpt["model"].items()}
    state["w2v_encoder.proj.weight"] = torch.randn(30, 32)
    ctc = {"cfg": {"model": {"_name": "hubert_ctc", "w2v_path": "base.pt",
                             "w2v_args": ckpt["cfg"]}, "task": {"normalize": False}},
           "model": state}
    torch.save(ctc, tmp_path / "ctc.pt")
    out = convert_fairseq_hubert(tmp_path / "ctc.pt", tmp_path / "hf")
    assert_matches_reference(src, out, torch.randn(1, 4000))


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing.pt"):
        convert_fairseq_hubert(tmp_path / "missing.pt", tmp_path / "hf")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a fairseq checkpoint"):
        convert_fairseq_hubert(tmp_path / "other.pt", tmp_path / "hf")
    conformer = tiny_fairseq_hubert(tmp_path / "conf.pt")
    ckpt = torch.load(conformer, weights_only=False)
    ckpt["cfg"]["model"]["layer_type"] = "conformer"
    torch.save(ckpt, conformer)
    with pytest.raises(InputError, match="conformer"):
        convert_fairseq_hubert(conformer, tmp_path / "hf")
    ok = tiny_fairseq_hubert(tmp_path / "ok.pt")
    convert_fairseq_hubert(ok, tmp_path / "hf")
    with pytest.raises(InputError, match="--overwrite"):
        convert_fairseq_hubert(ok, tmp_path / "hf")
    convert_fairseq_hubert(ok, tmp_path / "hf", overwrite=True)


def test_parse_conv_layers_is_safe() -> None:
    default = parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2")
    assert default == [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
    with pytest.raises(InputError, match="conv_feature_layers"):
        parse_conv_layers("__import__('os').getcwd()")
