"""TWIST (OPT, LLaMA) and Slam (Qwen2) checkpoints as released load as UnitLMs with their own
unit <-> token conventions, match a reference forward of the original model, generate,
and continue training with `lm train --init-from`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.lm.model import UnitLM
from spokenlm.lm.train import train_lm
from spokenlm.testing.lm import write_packed_units
from spokenlm.testing.released import save_tiny_slam, save_tiny_twist

UNITS = [[3, 7, 1, 11, 0, 5, 5, 2], [19, 4, 4, 8]]


def reference_loglik(model, tokens: list[int]) -> np.ndarray:
    """Per-token log-probs of tokens[1:] under the original HF model (one sequence)."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([tokens])).logits[0, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(tokens[1:])[:, None])[:, 0] \
        .numpy()


@pytest.mark.parametrize("family", ["opt", "llama"])
def test_twist_loads_with_offset_and_no_bos(tmp_path: Path, family: str) -> None:
    path, ref = save_tiny_twist(tmp_path / "twist", family, n_units=20, offset=4)
    lm = UnitLM.from_pretrained(path)
    assert (lm.release, lm.n_units, lm.unit_offset, lm.add_bos) == ("twist", 20, 4, False)
    assert lm.to_tokens([0, 5]) == [4, 9]  # textlesslib: offset + units, nothing prepended
    for seq, got in zip(UNITS, lm.log_likelihood(UNITS)):
        want = reference_loglik(ref, [4 + u for u in seq])
        np.testing.assert_allclose(got.per_token, want, atol=1e-5)
    new = lm.generate([UNITS[0]], max_new_tokens=6, temperature=0.0, stop_at_eos=False)[0]
    assert len(new) == 6 and all(0 <= u < 20 for u in new)
    with torch.no_grad():  # greedy over unit tokens = argmax of the original's unit logits
        logits = ref(input_ids=torch.tensor([[4 + u for u in UNITS[0]]])).logits[0, -1]
    assert new[0] == int(logits[4:24].argmax())


def test_slam_loads_from_slamkit_layout(tmp_path: Path) -> None:
    path, ref = save_tiny_slam(tmp_path / "slam", n_units=20)
    lm = UnitLM.from_pretrained(path)
    assert (lm.release, lm.n_units, lm.unit_offset) == ("slam", 20, 2)
    assert (lm.bos_id, lm.eos_id, lm.pad_id, lm.add_bos) == (1, 1, 0, True)
    # slamkit tokenises "<S> units <S>" and scores every token after the first
    for seq, got in zip(UNITS, lm.log_likelihood(UNITS, add_eos=True)):
        want = reference_loglik(ref, [1] + [u + 2 for u in seq] + [1])
        np.testing.assert_allclose(got.per_token, want, atol=1e-5)


@pytest.mark.parametrize("make", ["twist-opt", "twist-llama", "slam"])
def test_continued_training_keeps_the_convention(tmp_path: Path, make: str) -> None:
    if make == "slam":
        src, _ = save_tiny_slam(tmp_path / "src", n_units=20)
    else:
        src, _ = save_tiny_twist(tmp_path / "src", make.split("-")[1], n_units=20)
    before = UnitLM.from_pretrained(src)
    prefix = write_packed_units(tmp_path / "data" / "units",
                                [UNITS[i % 2] * 3 for i in range(12)], n_units=20)
    final = train_lm(units=prefix, output=tmp_path / "run", init_from=src, max_steps=2,
                     batch_size=2, seq_len=16, device="cpu", precision="fp32",
                     valid_fraction=0.2)
    meta = json.loads((final / "spokenlm_lm.json").read_text())
    assert (meta["unit_offset"], meta["add_bos"]) == (before.unit_offset, before.add_bos)
    after = UnitLM.from_pretrained(final)
    assert after.to_tokens([0, 1]) == before.to_tokens([0, 1])
    assert after.vocab_size == before.vocab_size
