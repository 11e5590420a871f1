"""benchmarks/demo_rescore.py: a finished demo run rescored on larger sets of its corpus."""

from __future__ import annotations

import json
from pathlib import Path

from spokenlm.pipeline.demo import demo

TINY = dict(n_utterances=36, n_speakers=5, voice_pairs=0, n_units=16, lm_size="tiny",
            lm_steps=5, lm_batch_size=4, lm_seq_len=64, vocoder_steps=2, vocoder_size="tiny",
            n_prompts=1, n_resynth=1, n_pairs=4, seed=1)


def test_rescore_builds_sets_once_and_scores_the_run(load_script, tmp_path: Path) -> None:
    script = load_script("demo_rescore")
    run = tmp_path / "run"
    demo(output=run, **TINY)
    sets = tmp_path / "sets"
    (row,) = script.main([str(run), "--n-pairs", "6", "--sets", str(sets)])
    assert (row["seed"], row["n_pairs"], row["voice_pairs"]) == (1, 6, 0)
    assert 0.0 <= row["spot_the_word"] <= 1.0 and 0.0 <= row["acceptability"] <= 1.0
    built = sets / "corpus_s1_u36_k5"
    items = [json.loads(line) for line in (built / "spot_the_word_6" / "items.jsonl").open()]
    assert len(items) == 6
    scored = json.loads((sets / "run" / "spot_the_word_6.json").read_text())
    assert scored["n_items"] == 6 and scored["accuracy_sum"] == row["spot_the_word"]
    mtime = (built / "acceptability_6" / "items.jsonl").stat().st_mtime_ns
    (again,) = script.main([str(run), "--n-pairs", "6", "--sets", str(sets)])  # sets reused
    assert again == row
    assert (built / "acceptability_6" / "items.jsonl").stat().st_mtime_ns == mtime
