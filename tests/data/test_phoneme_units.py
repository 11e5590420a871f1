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


def test_alignment_frames_from_intervals() -> None:
    from spokenlm.data.phoneme_units import alignment_frames
    row = {"intervals": [[0.0, 0.04, "SIL"], [0.04, 0.1, "AH"], [0.1, 0.14, "D"]]}
    assert alignment_frames(row) == ["sil", "sil", "AH", "AH", "AH", "D", "D"]
    assert alignment_frames(ALIGN[0]) == ALIGN[0]["phones"]


def test_phoneme_units_cli(tmp_path: Path) -> None:
    import json

    import numpy as np
    import pytest

    from spokenlm.cli.main import main
    from spokenlm.common.errors import InputError
    from spokenlm.data.phoneme_units import PhonemeUnitsOptions, phoneme_units
    from spokenlm.tokenize.pack import load_packed

    frames = ["sil"] * 3 + ["ð"] * 4 + ["ə"] * 3 + ["d"] * 5 + ["ɑː"] * 6 + ["ɡ"] * 4
    ali = tmp_path / "ali.jsonl"
    ali.write_text("".join(json.dumps({"id": f"u{i}", "phones": frames}) + "\n"
                           for i in range(6)))
    text = tmp_path / "text.txt"
    text.write_text("the dog\n\nthe dog the dog\n")
    out = tmp_path / "pu"
    assert main(["data", "phoneme-units", str(ali), "--text", str(text),
                 "--output", str(out)]) == 0
    inv = json.loads((out / "inventory.json").read_text())["phones"]
    assert inv[0] == "sil" and set(inv) == {"sil", "ð", "ə", "d", "ɑː", "ɡ"}
    speech = [json.loads(line) for line in (out / "speech.jsonl").read_text().splitlines()]
    assert speech[0]["units"] == [inv.index(p) for p in frames]
    rows = [json.loads(line) for line in (out / "text.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["line-000001", "line-000003"]
    # every phone seen >= 5 times with one duration: the sampled durations are exactly those
    expect = [inv.index(p) for p in ["ð"] * 4 + ["ə"] * 3 + ["d"] * 5 + ["ɑː"] * 6 + ["ɡ"] * 4]
    assert rows[0]["units"] == expect and rows[1]["units"] == expect * 2
    tokens, offsets, meta = load_packed(out / "text")
    assert meta["n_units"] == len(inv) and np.asarray(tokens[offsets[0]:offsets[1]]).tolist() == expect
    assert main(["data", "phoneme-units", str(tmp_path / "missing.jsonl")]) == 1
    with pytest.raises(InputError, match="spokenlm asr align"):
        phoneme_units(PhonemeUnitsOptions(tmp_path / "missing.jsonl"))
