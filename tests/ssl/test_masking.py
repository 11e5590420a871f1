from __future__ import annotations

import torch

from spokenlm.ssl.masking import mask_runs, span_mask


def test_span_mask_runs_proportion_and_padding() -> None:
    mask = span_mask([500, 400, 300], mask_prob=0.65, span=10, seed=3)
    assert mask.shape == (3, 500) and mask.dtype == torch.bool
    assert not mask[1, 400:].any() and not mask[2, 300:].any()
    for row, n in zip(mask, [500, 400, 300]):
        runs = mask_runs(row[:n])
        assert runs and min(runs) >= 10  # every masked run is at least one full span
        share = float(row[:n].float().mean())
        assert 0.35 < share < 0.65  # overlap keeps the share below mask_prob (HuBERT ~0.49)


def test_span_mask_deterministic_and_seed_dependent() -> None:
    a = span_mask([200, 150], seed=(0, 5))
    assert torch.equal(a, span_mask([200, 150], seed=(0, 5)))
    assert not torch.equal(a, span_mask([200, 150], seed=(0, 6)))


def test_span_mask_short_and_zero() -> None:
    assert not span_mask([50], mask_prob=0.0).any()
    short = span_mask([4], span=10)  # shorter than a span: masks what there is
    assert short.all()
