from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spokenlm.common.files import write_jsonl
from spokenlm.eval.pnmi import evaluate_pnmi, frame_labels, frame_units, pnmi_scores


def test_perfect_clustering_has_pnmi_one() -> None:
    phones = np.random.default_rng(0).integers(0, 6, 5000)
    s = pnmi_scores(phones + 10, phones.astype(str))  # a relabelled copy
    assert s["pnmi"] == pytest.approx(1.0)
    assert s["phone_purity"] == pytest.approx(1.0) and s["cluster_purity"] == pytest.approx(1.0)


def test_random_clustering_has_pnmi_near_zero() -> None:
    rng = np.random.default_rng(1)
    s = pnmi_scores(rng.integers(0, 20, 50_000), rng.integers(0, 8, 50_000))
    assert s["pnmi"] < 0.01


def test_hand_computed_purities() -> None:
    # unit 0: phones a,a,b ; unit 1: phone b
    s = pnmi_scores([0, 0, 0, 1], ["a", "a", "b", "b"])
    assert s["phone_purity"] == pytest.approx((2 + 1) / 4)  # per unit, dominant phone
    assert s["cluster_purity"] == pytest.approx((2 + 1) / 4)  # per phone, dominant unit
    # I = H(y) - H(y|z) with H(y)=ln2, H(y|z) = 3/4 * H(2/3, 1/3)
    h = -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))
    assert s["pnmi"] == pytest.approx((np.log(2) - 0.75 * h) / np.log(2))


def test_frame_labels_at_frame_centres() -> None:
    # frame centres at 12.5 ms + 20 ms * i
    assert frame_labels([[0, 0.05, "a"], [0.05, 0.1, "b"]], 6) == ["a", "a", "b", "b", "b", None]
    assert frame_units({"units": [3, 4], "durations": [2, 1]}).tolist() == [3, 3, 4]


def test_pnmi_command(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "u.jsonl", [{"id": "x", "units": [1, 2], "durations": [3, 2]},
                                       {"id": "y", "units": [1], "durations": [2]}])
    write_jsonl(tmp_path / "l.jsonl", [{"id": "x", "intervals": [[0, 0.06, "A"],
                                                                 [0.06, 0.1, "B"]]}])
    m = evaluate_pnmi(units=tmp_path / "u.jsonl", labels=tmp_path / "l.jsonl",
                      output=tmp_path / "p.json")
    assert m["pnmi"] == pytest.approx(1.0) and m["n_frames"] == 5
    assert m["n_utterances_without_labels"] == 1 and (tmp_path / "p.json").exists()


def _aligned_corpus(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """Two utterances as an MFA TextGrid folder, the equivalent labels JSONL and CTM, and
    random 50 Hz units for them."""
    from spokenlm.testing.alignments import ctm_lines, write_mfa_textgrid

    phones = {"a": [(0.10, 0.30, "HH"), (0.30, 0.52, "AH0"), (0.52, 0.60, "sp"),
                    (0.60, 0.86, "T"), (0.86, 1.04, "spn")],
              "b": [(0.00, 0.18, "T"), (0.18, 0.44, "AH1"), (0.44, 0.70, "HH")]}
    # the same, normalised: blanks/sp/spn -> SIL, stress stripped
    norm = {"a": [(0.0, 0.10, "SIL"), (0.10, 0.30, "HH"), (0.30, 0.52, "AH"),
                  (0.52, 0.60, "SIL"), (0.60, 0.86, "T"), (0.86, 1.04, "SIL"),
                  (1.04, 1.2, "SIL")],
            "b": [(0.00, 0.18, "T"), (0.18, 0.44, "AH"), (0.44, 0.70, "HH"),
                  (0.70, 0.8, "SIL")]}
    durations = {"a": 1.2, "b": 0.8}
    for uid, ph in phones.items():
        write_mfa_textgrid(tmp_path / "mfa" / f"spk_{uid}" / f"{uid}.TextGrid", ph,
                           [(ph[0][0], ph[-1][1], "word")], duration=durations[uid])
    write_jsonl(tmp_path / "labels.jsonl", [{"id": u, "intervals": [list(iv) for iv in ivs]}
                                            for u, ivs in norm.items()])
    (tmp_path / "phones.ctm").write_text("\n".join(
        line for u, ivs in norm.items() for line in ctm_lines(u, ivs)) + "\n")
    rng = np.random.default_rng(0)
    write_jsonl(tmp_path / "units.jsonl", [
        {"id": u, "units": rng.integers(0, 5, int(d * 50)).tolist()}
        for u, d in durations.items()])
    return tmp_path / "mfa", tmp_path / "labels.jsonl", tmp_path / "phones.ctm", \
        tmp_path / "units.jsonl"


def test_pnmi_from_textgrid_folder_and_ctm_equals_jsonl(tmp_path: Path) -> None:
    mfa, jsonl, ctm, units = _aligned_corpus(tmp_path)
    keys = ("pnmi", "phone_purity", "cluster_purity", "n_frames", "n_phones", "n_utterances")
    runs = {}
    for name, labels in (("textgrid", mfa), ("jsonl", jsonl), ("ctm", ctm)):
        for ignore in ([], ["SIL"], ["sil"]):  # `sil` means SIL once labels are normalised
            m = evaluate_pnmi(units=units, labels=labels, ignore=ignore, tier="phones",
                              output=tmp_path / f"{name}.json")
            runs[name, tuple(ignore)] = {k: m[k] for k in keys}
        assert m["labels_format"] == {"textgrid": "textgrid_dir"}.get(name, name)
    base = runs["jsonl", ()]
    assert base["n_frames"] == 100 and base["n_phones"] == 4 and base["n_utterances"] == 2
    for (name, ignore), r in runs.items():
        want = base if not ignore else runs["jsonl", ("SIL",)]
        assert r == pytest.approx(want), (name, ignore)
    assert runs["jsonl", ("SIL",)]["n_phones"] == 3


def test_pnmi_missing_tier_is_an_error(tmp_path: Path) -> None:
    from spokenlm.common.errors import InputError

    mfa, _, _, units = _aligned_corpus(tmp_path)
    with pytest.raises(InputError, match=r"a.TextGrid: no tier 'segments' \(tiers: 'words', "
                                         r"'phones'\); pass --tier"):
        evaluate_pnmi(units=units, labels=mfa, tier="segments", output=tmp_path / "p.json")
