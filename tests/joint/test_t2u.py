from __future__ import annotations

from pathlib import Path

import torch

from spokenlm.common.files import read_jsonl
from spokenlm.joint.t2u import T2UConfig, T2UModel, length_regulate
from spokenlm.joint.t2u_train import aligned_durations, even_durations, train_t2u


def tiny_t2u() -> T2UModel:
    torch.manual_seed(0)
    return T2UModel(T2UConfig(phones=["sil", "a", "b", "c"], n_units=7, hidden=16, heads=2,
                              ffn=32, encoder_layers=1, decoder_layers=1))


def test_length_regulator_repeats_states() -> None:
    h = torch.arange(6.0).view(1, 3, 2)
    out, n = length_regulate(h, torch.tensor([[2, 0, 1]]))
    assert int(n[0]) == 3
    assert torch.equal(out[0], torch.tensor([[0.0, 1.0], [0.0, 1.0], [4.0, 5.0]]))


def test_durations_at_least_one_and_output_length_is_their_sum() -> None:
    model = tiny_t2u()
    with torch.no_grad():
        model.dur_out.bias.fill_(-5.0)  # predicts ~0 frames: must still give 1
    out = model.generate([["a", "b"], ["c", "a", "b", "a"]])
    for units, dur in out:
        assert (dur >= 1).all()
        assert len(units) == int(dur.sum())
        assert units.min() >= 0 and units.max() < 7
    assert len(out[0][1]) == 4 and len(out[1][1]) == 6  # sil at both ends


def test_duration_helpers_sum_to_frames() -> None:
    assert even_durations(3, 10).sum() == 10
    phones, d = aligned_durations([[0.0, 0.1, "sil"], [0.1, 0.3, "a"], [0.3, 0.41, "sil"]], 20)
    assert phones == ["sil", "a", "sil"] and d.tolist() == [5, 10, 5]


def test_t2u_save_load_round_trip(tmp_path: Path) -> None:
    model = tiny_t2u().eval()
    loaded = T2UModel.from_pretrained(model.save_pretrained(tmp_path / "t2u"))
    assert loaded.config == model.config
    a, b = model.generate([["a", "b", "c"]]), loaded.generate([["a", "b", "c"]])
    assert (a[0][0] == b[0][0]).all()


def test_t2u_train_with_alignments(corpus: dict, tmp_path: Path) -> None:
    from spokenlm.ssl.targets import TargetSpec, make_targets

    _, (units,) = make_targets([corpus["manifest"]], tmp_path / "targets",
                               TargetSpec("mfcc", n_clusters=5, device="cpu"))
    final = train_t2u(manifest=corpus["manifest"], output=tmp_path / "run", units=units,
                      alignments=corpus["alignments"], hidden=16, layers=1, max_steps=3,
                      batch_size=4, warmup_steps=1, device="cpu", log_every=1)
    model = T2UModel.from_pretrained(final)
    assert model.config.n_units == 5 and "sil" in model.config.phones
    assert len(read_jsonl(tmp_path / "run/log.jsonl")) == 3
