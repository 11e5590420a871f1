from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spokenlm.common.errors import ArtifactError
from spokenlm.lm import SIZES, LMConfig, UnitLM, build_llama_config
from spokenlm.testing.lm import save_tiny_unit_lm, tiny_unit_lm


def _logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def test_build_llama_config_vocab_and_specials() -> None:
    cfg = build_llama_config(50, LMConfig.named("tiny"))
    assert cfg.vocab_size == 53
    assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (50, 51, 52)
    lm = tiny_unit_lm(50)
    assert (lm.bos_id, lm.eos_id, lm.pad_id, lm.unit_offset) == (50, 51, 52, 0)


def test_named_sizes_and_param_count() -> None:
    lm = tiny_unit_lm(20)
    assert SIZES["tiny"].n_params(23) == sum(p.numel() for p in lm.model.parameters())
    assert 80e6 < SIZES["base"].n_params(503) < 130e6
    assert 0.9e9 < SIZES["1b"].n_params(503) < 1.3e9
    assert LMConfig.named("small", n_layers=2, hidden=None).n_layers == 2
    with pytest.raises(ValueError, match="choose one of"):
        LMConfig.named("huge")


def test_save_load_roundtrip_and_plain_hf_loading(tmp_path) -> None:
    from transformers import AutoModelForCausalLM

    lm = tiny_unit_lm(20, seed=3)
    lm.tokenizer = "/some/tokenizer"
    path = lm.save_pretrained(tmp_path / "lm")
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "spokenlm_lm.json"} <= names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    meta = json.loads((path / "spokenlm_lm.json").read_text())
    assert meta == {"n_units": 20, "unit_offset": 0, "bos_id": 20, "eos_id": 21, "pad_id": 22,
                    "tokenizer": "/some/tokenizer", "frame_rate": None, "add_bos": True}
    ids = [20, 1, 2, 3, 19]
    loaded = UnitLM.from_pretrained(path)
    assert torch.equal(_logits(loaded.model, ids), _logits(lm.model, ids))
    assert loaded.metadata() == lm.metadata()
    hf = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    assert torch.equal(_logits(hf, ids), _logits(lm.model, ids))
    # overwriting an existing dir replaces it atomically
    tiny_unit_lm(20, seed=4).save_pretrained(path)
    assert not torch.equal(_logits(UnitLM.from_pretrained(path).model, ids),
                           _logits(lm.model, ids))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm"]


def test_missing_metadata_is_a_clear_error(tmp_path) -> None:
    path = save_tiny_unit_lm(tmp_path / "lm")
    (path / "spokenlm_lm.json").unlink()
    with pytest.raises(ArtifactError, match="spokenlm_lm.json"):
        UnitLM.from_pretrained(path)
    with pytest.raises(ArtifactError, match="not found"):
        UnitLM.from_pretrained(tmp_path / "nope")


def test_vocab_too_small_for_units(tmp_path) -> None:
    path = save_tiny_unit_lm(tmp_path / "lm", n_units=20)
    meta = json.loads((path / "spokenlm_lm.json").read_text())
    meta.update(n_units=100, bos_id=100, eos_id=101, pad_id=102)
    (path / "spokenlm_lm.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="mismatched vocabularies.*103.*23"):
        UnitLM.from_pretrained(path)


def test_check_tokenizer_names_both_sizes(tmp_path) -> None:
    lm = tiny_unit_lm(20)
    lm.check_tokenizer(20)
    with pytest.raises(ArtifactError, match="50 units.*20 units"):
        lm.check_tokenizer(50)
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "config.json").write_text(json.dumps({"n_units": 50}))
    with pytest.raises(ArtifactError, match=str(tok)):
        lm.check_tokenizer(tok)


def test_to_tokens_and_back() -> None:
    lm = tiny_unit_lm(20)
    assert lm.to_tokens([0, 5, 19]) == [20, 0, 5, 19]
    assert lm.to_tokens([3], add_bos=False, add_eos=True) == [3, 21]
    assert lm.to_units([20, 0, 5, 21, 22]) == [0, 5]
    with pytest.raises(ValueError, match="outside"):
        lm.to_tokens([20])
    assert np.array_equal(lm.to_tokens(np.array([1, 2]), add_bos=False), [1, 2])
