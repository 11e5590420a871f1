from __future__ import annotations

import torch
from torch import nn

from spokenlm.vocoder.duration import DurationPredictor, duration_loss, durations_from_log


def test_rounding_is_at_least_one() -> None:
    log_pred = torch.tensor([-3.0, 0.0, 0.2, torch.log(torch.tensor(4.0)).item(), 3.0])
    d = durations_from_log(log_pred)
    assert d.dtype == torch.int64
    assert d.tolist() == [1, 1, 1, 3, 19]


def test_predictor_learns_a_synthetic_unit_to_duration_mapping() -> None:
    torch.manual_seed(0)
    n_units, dim = 6, 16
    true = torch.tensor([1, 2, 3, 5, 8, 2])  # duration of each unit
    emb = nn.Embedding(n_units, dim)
    model = DurationPredictor(dim, hidden=32, dropout=0.0)
    opt = torch.optim.Adam([*emb.parameters(), *model.parameters()], lr=1e-2)
    units = torch.randint(0, n_units, (16, 12))
    mask = torch.ones_like(units, dtype=torch.bool)
    mask[:, 10:] = False
    first = None
    for _ in range(150):
        loss = duration_loss(model(emb(units)), true[units], mask)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    model.eval()
    pred = durations_from_log(model(emb(units)))
    assert (pred >= 1).all()
    assert (pred[mask] == true[units][mask]).float().mean() > 0.9
