"""``lm train --input-noise``: random units in the input, targets unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from spokenlm.common.errors import InputError
from spokenlm.lm.train import noised_units, train_lm
from spokenlm.testing.lm import repetitive_corpus, write_packed_units

TINY = dict(size="tiny", seq_len=32, batch_size=4, lr=3e-3, warmup_steps=2, log_every=2,
            eval_every=4, eval_batches=2, max_steps=8, save_every=4)


def test_only_units_are_replaced_at_the_share_asked() -> None:
    lo, hi, bos, eos = 0, 50, 50, 51
    x = torch.randint(lo, hi, (64, 200))
    x[:, 0], x[:, 100] = bos, eos
    g = torch.Generator().manual_seed(0)
    y = noised_units(x, 0.2, lo, hi, g)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(y[:, 0], x[:, 0]) and torch.equal(y[:, 100], x[:, 100])
    assert ((y >= lo) & (y < hi))[:, 1:100].all()
    changed = (y != x).float().mean().item()  # 0.2 drawn, 1/50 of them the same unit again
    assert 0.2 * 0.98 * 0.9 < changed < 0.2 * 0.98 * 1.1
    assert torch.equal(noised_units(x, 0.0, lo, hi, g), x)
    offset = noised_units(x + 10, 1.0, 10, 60, torch.Generator().manual_seed(1))
    assert (offset[:, 1:100] >= 10).all() and (offset[:, 1:100] < 60).all()


@pytest.fixture()
def units(tmp_path: Path) -> Path:
    return write_packed_units(tmp_path / "train", repetitive_corpus(40, n_units=12), 12)


def test_training_with_noise_is_deterministic_and_differs(tmp_path: Path, units: Path) -> None:
    a = train_lm(units=units, output=tmp_path / "a", input_noise=0.3, **TINY)
    b = train_lm(units=units, output=tmp_path / "b", input_noise=0.3, **TINY)
    c = train_lm(units=units, output=tmp_path / "c", **TINY)
    wa, wb, wc = (load_file(p / "model.safetensors") for p in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    options = json.loads((tmp_path / "a" / "options.json").read_text())
    assert options["input_noise"] == 0.3


@pytest.mark.parametrize("share", [-0.1, 1.0])
def test_bad_share_is_refused(tmp_path: Path, units: Path, share: float) -> None:
    with pytest.raises(InputError, match="--input-noise"):
        train_lm(units=units, output=tmp_path / "r", input_noise=share, **TINY)
