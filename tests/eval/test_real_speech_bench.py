"""benchmarks/real_speech.py: the held-out split, the table and the cache guard on tiny inputs
(the recipe itself needs ../shared/data/real and runs by hand)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from spokenlm.common.files import write_jsonl

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "real_speech.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("real_speech_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]
    sys.path.remove(str(SCRIPT.parent))


def _rows() -> list[dict]:
    rows = [{"id": f"LJ001-{i:04d}", "corpus": "ljspeech", "speaker": "LJ", "duration": 5.0}
            for i in range(20)]
    for speaker, n in (("fa", 5), ("mb", 2), ("mc", 4)):
        rows += [{"id": f"an{i}-{speaker}-b", "corpus": "an4", "split": "test",
                  "speaker": speaker, "duration": 2.0} for i in range(n)]
    rows += [{"id": f"an{i}-tr-b", "corpus": "an4", "split": "train", "speaker": "tr",
              "duration": 2.0} for i in range(6)]
    return rows


def test_split_holds_out_spread_lj_and_round_robin_an4_test(bench) -> None:
    train, held = bench.split_rows(_rows(), n_lj=4, n_an4=7, seed=0)
    ids = {r["id"] for r in held}
    assert len(train) + len(held) == len(_rows()) and not ids & {r["id"] for r in train}
    assert sorted(i for i in ids if i.startswith("LJ")) == \
        ["LJ001-0000", "LJ001-0006", "LJ001-0013", "LJ001-0019"]
    an4 = [r for r in held if r["corpus"] == "an4"]
    per = {s: sum(r["speaker"] == s for r in an4) for s in ("fa", "mb", "mc")}
    assert per == {"fa": 3, "mb": 2, "mc": 2}  # round-robin until mb runs out
    assert all(r.get("split") == "test" for r in an4)
    assert bench.split_rows(_rows(), 4, 7, seed=0) == (train, held)  # deterministic
    _, every = bench.split_rows(_rows(), n_lj=0, n_an4=0, seed=0)
    assert len(every) == 11 and all(r["corpus"] == "an4" for r in every)


def test_units_rate_gives_bits_per_second(bench, tmp_path) -> None:
    path = write_jsonl(tmp_path / "u.jsonl", [
        {"id": "a", "units": [1, 2, 3, 4], "durations": [10, 20, 10, 10], "frame_rate": 25},
        {"id": "b", "units": [5, 6], "durations": [25, 25], "frame_rate": 25}])
    got = bench.units_rate(path, valid_loss=2.0)
    assert got["units_per_s"] == pytest.approx(6 / 4.0)  # 100 frames at 25 Hz
    assert got["valid_bits_per_s"] == pytest.approx(2.0 * 1.5 / math.log(2))
    assert bench.units_rate(path, None)["valid_bits_per_s"] is None


def _asr(wer: float) -> dict:
    return {f"{a}/{c}": {"wer": wer, "cer": wer / 2, "speaker_similarity": {"mean": 0.5}}
            for a in ("whisper", "pocketsphinx") for c in ("ljspeech", "an4")}


def test_table_has_one_line_per_row_and_the_source_audio(bench) -> None:
    row = {"config": "mfcc-50hz-k50", "vocoder": "fast", "asr": _asr(0.25),
           "pnmi": {"pnmi": 0.3125, "phone_purity": 0.5},
           "abx": {"units": {"within": 0.1, "across": None}, "features": {"within": 0.05,
                                                                          "across": 0.2}},
           "lm": {"valid_bits_per_s": 123.4}}
    hifi = {**row, "vocoder": "hifigan-small", "lm": None}
    md = bench.table([row, hifi], _asr(0.125), ["whisper", "pocketsphinx"],
                     pocketsphinx_clips=6)
    lines = md.splitlines()
    assert len(lines) == 5 and all(line.count("|") == lines[0].count("|") for line in lines)
    assert "pocketsphinx WER (LJ / AN4, 6 + 6 clips)" in lines[0]
    assert "whisper WER (LJ / AN4)" in lines[0]
    assert lines[2].startswith("| mfcc-50hz-k50 | fast | 0.25 / 0.25 | 0.12 / 0.12 |")
    assert "| 0.312 | 0.500 | 0.100 / - | 0.050 / 0.200 | 123 |" in lines[2]
    assert lines[3].endswith("| - |") and "hifigan-small" in lines[3]
    assert lines[4].startswith("| source audio | - | 0.12 / 0.12 |")


def test_settings_guard_refuses_a_folder_made_otherwise(bench, tmp_path) -> None:
    args = type("A", (), {k: 1 for k in bench.SETTINGS})()
    args.root = tmp_path / "real"
    bench.check_settings(tmp_path / "out", args)
    bench.check_settings(tmp_path / "out", args)  # same settings: reused
    args.vocoder_steps = 2
    with pytest.raises(SystemExit, match="vocoder_steps"):
        bench.check_settings(tmp_path / "out", args)


def test_skipped_with_a_message_without_the_data(bench, tmp_path, capsys) -> None:
    lines = bench.main(["--root", str(tmp_path / "absent"), "--output", str(tmp_path / "o"),
                        "--no-record"])
    assert "skipped" in lines[0] and not (tmp_path / "o").exists()
    assert json.loads(capsys.readouterr().out.strip())["bench"] == "real_speech"
