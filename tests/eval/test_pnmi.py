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
