from __future__ import annotations

from pathlib import Path

from spokenlm.data.phoneme_units import (DurationModel, phone_inventory, phones_to_units,
                                         speech_phoneme_units, text_to_phoneme_units)

ALIGN = [{"id": "u", "phones": ["sil", "a", "a", "b"],
          "intervals": [[0.0, 0.02, "sil"], [0.02, 0.1, "a"], [0.1, 0.2, "b"]]}] * 5


def test_fit_and_fallback(tmp_path: Path) -> None:
    model = DurationModel.fit(ALIGN)
    assert model.distribution("a")[0].tolist() == [4]
    assert model.distribution("b")[0].tolist() == [5]
    assert model.distribution("zz")[0].tolist() == [4, 5]  # unseen: pooled over phones
    model.save(tmp_path / "d.json")
    assert DurationModel.load(tmp_path / "d.json").phones == model.phones
    assert DurationModel().mean("x") > 2  # no alignments: global default


def test_durations_deterministic_by_seed() -> None:
    model = DurationModel()
    phones = ["a", "b", "c"] * 10
    a = model.sample(phones, seed=1)
    assert (a == model.sample(phones, seed=1)).all()
    assert not (a == model.sample(phones, seed=2)).all()


def test_text_to_units() -> None:
    inv = phone_inventory([["ð", "ə", "d", "ɑː", "ɡ"]])
    units, phones = text_to_phoneme_units("the dog", DurationModel(), inv, seed=0)
    assert phones == ["ð", "ə", "d", "ɑː", "ɡ"]
    again, _ = text_to_phoneme_units("the dog", DurationModel(), inv, seed=0)
    assert units == again and len(units) > len(phones)
    assert phones_to_units(["ə", "d"], [2, 3], inv) == [inv.index("ə")] * 2 + [inv.index("d")] * 3
    assert speech_phoneme_units({"phones": ["sil", "d"]}, inv) == [0, inv.index("d")]
