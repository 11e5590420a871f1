"""``spokenlm generate`` writes each continuation under a safe distinct name as soon as it is
done, and a rerun after a failure resumes with the continuations an uninterrupted run gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from spokenlm.common.files import read_jsonl, write_jsonl
from spokenlm.pipeline import generate as generate_module
from spokenlm.pipeline.generate import generate
from spokenlm.pipeline.index import read_index

IDS = ["../../escaped", "a/b", "a.continuation", "a", "A"]


def _run(manifest: Path, out: Path, tokenizer_dir: Path, lm_dir: Path, vocoder_dir: Path
         ) -> list[dict]:
    generate(prompt=manifest, tokenizer=tokenizer_dir, lm=lm_dir, vocoder=vocoder_dir,
             output=out, prompt_seconds=0.2, max_new_tokens=4, batch_size=2,
             samples_per_prompt=1, seed=3)
    return read_index(out / "generations.jsonl")


def test_generate_is_safe_and_resumes_like_an_uninterrupted_run(
        tmp_path: Path, wavs: list[Path], tokenizer_dir: Path, lm_dir: Path, vocoder_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"id": uid, "path": str(wav)}
                                                  for uid, wav in zip(IDS, wavs)])
    full = _run(manifest, tmp_path / "full", tokenizer_dir, lm_dir, vocoder_dir)
    assert [r["id"] for r in full] == IDS
    files = [Path(r[k]) for r in full for k in ("path", "continuation_path")]
    assert len({str(p).casefold() for p in files}) == 2 * len(IDS)  # "a.continuation" too
    assert all(p.parent == tmp_path / "full" and p.exists() for p in files)
    assert {p.parent for p in tmp_path.rglob("*.wav")} == {tmp_path / "full", wavs[0].parent}

    real, calls = generate_module._speak, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("the vocoder ran out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(generate_module, "_speak", failing)
    out = tmp_path / "resumed"
    with pytest.raises(RuntimeError):
        _run(manifest, out, tokenizer_dir, lm_dir, vocoder_dir)
    assert [r["id"] for r in read_jsonl(out / "generations.jsonl")] == IDS[:3]

    calls.clear()
    monkeypatch.setattr(generate_module, "_speak", lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed = _run(manifest, out, tokenizer_dir, lm_dir, vocoder_dir)
    assert len(calls) == len(IDS) - 3  # the three finished continuations were kept
    strip = ("path", "continuation_path")
    assert ([{k: v for k, v in r.items() if k not in strip} for r in resumed]
            == [{k: v for k, v in r.items() if k not in strip} for r in full])
