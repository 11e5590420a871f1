"""`spokenlm report`: the page of a run built step by step with the CLI stages (tiny real
artifacts), sections that say what is missing, embedded and linked audio, two runs
compared, refusals; and (when Chromium is installed) the page rendered in a real browser."""

from __future__ import annotations

import json
import re
import shutil
from html import escape
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from spokenlm.cli.main import main as cli
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_json, write_json, write_jsonl
from spokenlm.pipeline.report import report
from spokenlm.pipeline.report_collect import collect_run
from spokenlm.pipeline.report_plots import log_spectrogram
from spokenlm.pipeline.report_stats import binomial_ci95, chance_level, unit_stats
from spokenlm.testing.audio import write_test_manifest, write_wav_folder
from spokenlm.testing.browser import check_page, find_chromium

TEXTS = ["the dog runs", "a cat sleeps", "birds sing loudly", "the sun is warm"]
N_UNITS = 8


def build_run(root: Path, seed: int = 0) -> Path:
    """A run made stage by stage through the library (tiny settings): tokenizer, units,
    unit LM, fast vocoder, resynthesis, continuations and a spot-the-word evaluation, in
    folder names of its own (``tok/``, ``voc/``, ``gen/``), not the demo's."""
    from spokenlm.eval.pnmi import evaluate_pnmi
    from spokenlm.eval.resynthesis import evaluate_resynthesis
    from spokenlm.eval.spot_the_word import spot_the_word
    from spokenlm.lm.train import train_lm
    from spokenlm.pipeline.generate import generate
    from spokenlm.pipeline.resynth import resynth
    from spokenlm.tokenize.run import tokenize_manifest
    from spokenlm.tokenize.train import train_tokenizer
    from spokenlm.vocoder.train import train_vocoder

    wavs = write_wav_folder(root / "corpus" / "wavs", n=4, seed=seed, seconds=(0.6, 0.9))
    for split in ("train", "valid", "test"):
        write_test_manifest(root / "corpus" / f"{split}.jsonl", wavs, text=TEXTS,
                            speaker=["a", "b", "a", "b"])
    train_tokenizer(manifest=root / "corpus" / "train.jsonl", output=root / "tok",
                    n_units=N_UNITS, seed=seed)
    for split in ("train", "valid"):
        tokenize_manifest(manifest=root / "corpus" / f"{split}.jsonl", tokenizer=root / "tok",
                          output=root / "units" / f"{split}.jsonl")
    train_lm(units=root / "units" / "train.jsonl", valid_units=root / "units" / "valid.jsonl",
             output=root / "lm", size="tiny", max_steps=4, batch_size=2, seq_len=16,
             eval_every=2, log_every=1, seed=seed, tokenizer=root / "tok")
    train_vocoder(units=root / "units" / "train.jsonl", output=root / "voc", type="fast",
                  size="tiny", max_steps=3, log_every=1, batch_size=2, seed=seed)
    resynth(input=root / "corpus" / "test.jsonl", tokenizer=root / "tok",
            vocoder=root / "voc" / "final", output=root / "resynth", limit=2)
    generate(prompt=root / "corpus" / "test.jsonl", tokenizer=root / "tok",
             lm=root / "lm" / "final", vocoder=root / "voc" / "final", output=root / "gen",
             limit=2, prompt_seconds=0.3, max_new_tokens=12, seed=seed)
    bench = root / "bench" / "words"
    rows = [{"id": p.stem, "path": str(p), "duration": 0.7} for p in wavs]
    write_jsonl(bench / "manifest.jsonl", rows)
    write_jsonl(bench / "items.jsonl", [
        {"id": f"pair{i}", "subset": f"{3 + i % 2}_phones", "candidates": [a["id"], b["id"]],
         "answer": 0, "prompt": None} for i, (a, b) in enumerate(zip(rows, rows[1:] + rows[:1]))])
    write_json(bench / "config.json", {"kind": "spot_the_word"})
    spot_the_word(benchmark=bench, tokenizer=root / "tok", lm=root / "lm" / "final",
                  output=root / "eval" / "spot_the_word.json")
    write_jsonl(root / "eval" / "alignments.jsonl", [  # two "phones" per utterance
        {"id": r["id"], "intervals": [[0.0, 0.35, "AH"], [0.35, r["duration"], "B"]]}
        for r in rows])
    evaluate_pnmi(units=root / "units" / "train.jsonl", labels=root / "eval" / "alignments.jsonl",
                  output=root / "eval" / "pnmi.json")
    evaluate_resynthesis(resynth=root / "resynth", asr="pocketsphinx", speaker_encoder="none",
                         output=root / "eval" / "resynthesis.json")
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("report") / "cli_run")


@pytest.fixture(scope="module")
def page(run: Path) -> str:
    return report(runs=[run]).read_text()


def _srcs(html: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}[^>]* src='([^']*)'", html)


def test_collector_finds_the_stages_by_content(run: Path) -> None:
    found = collect_run(run)
    assert found.tokenizer == run / "tok" and found.corpus == run / "corpus"
    assert [t.kind for t in found.training] == ["unit LM", "vocoder"]
    assert found.resynth == [run / "resynth"] and found.generate == [run / "gen"]
    assert sorted(r.metric for r in found.results) == ["pnmi", "resynthesis", "spot_the_word"]
    assert {u.name for u in found.units} == {"train.jsonl", "valid.jsonl"}


def test_report_of_a_cli_run_has_every_section(run: Path, page: str) -> None:
    for anchor in ("metrics", "evals", "ab", "continuations", "training", "units", "run"):
        assert f"<section id='{anchor}'>" in page
    # metrics as a table (not JSON), numbers from the artifacts, chance beside accuracy
    lm = read_json(run / "lm" / "metrics.json")
    assert re.search(rf"valid loss \(nats / token\)</td><td class='num'>{lm['valid_loss']:.3f}",
                     page)
    stw = read_json(run / "eval" / "spot_the_word.json")
    assert f"spot-the-word accuracy (sum)</td><td class='num'>{stw['accuracy_sum']:.3f}" in page
    assert "chance 0.500" in page and "{&quot;" not in page
    for subset in stw["subsets"]:  # per-subset table
        assert f"<td>{subset}</td>" in page
    pnmi = read_json(run / "eval" / "pnmi.json")
    assert f"PNMI</td><td class='num'>{pnmi['pnmi']:.3f}" in page
    assert "PNMI accuracy" not in page  # not mistaken for a benchmark
    assert "resynthesis WER (ASR: pocketsphinx)" in page and "source audio, same ASR" in page
    # A/B: source and resynthesis players per utterance, one spectrogram figure each
    ab = page.split("<section id='ab'>")[1].split("</section>")[0]
    assert ab.count("class='card'") == 2 and ab.count("<audio") == 4
    assert ab.count("<img") == 2 and "reference: the dog runs" in ab
    trans = [json.loads(line) for line in open(run / "eval" / "resynthesis.transcripts.jsonl")]
    assert ab.count("<div class='asr'>ASR: ") == 4  # both sides of both pairs, with WER
    assert f"ASR: “{escape(trans[0]['source'])}”" in ab
    # continuations: prompt, continuation and full audio apart, the prompt end marked
    gens = page.split("<section id='continuations'>")[1].split("</section>")[0]
    assert gens.count("class='card'") == 2 and gens.count("<audio") == 6
    assert "prompt (source, first 0.30 s)" in gens and "continuation" in gens
    # training curves, unit histogram with the silence unit, k-means, versions, device
    assert "unit LM training curves" in page and "vocoder losses" in page
    assert "silence unit" in page and "inertia_per_frame" in page
    assert "torch" in page and "transformers" in page and "accelerator" in page


def test_linked_audio_resolves_from_the_page(run: Path, page: str, tmp_path: Path) -> None:
    srcs = _srcs(page, "audio")
    linked = [s for s in srcs if not s.startswith("data:")]
    assert len(linked) == 8  # 2 x 2 A/B + 2 x (continuation, full); prompts are cut clips
    assert all((run / unquote(s)).is_file() for s in linked)
    assert all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,"))
               for s in _srcs(page, "img"))
    elsewhere = report(runs=[run], output=tmp_path / "pages" / "r.html")
    html = elsewhere.read_text()
    assert all((elsewhere.parent / unquote(s)).resolve().is_file()
               for s in _srcs(html, "audio") if not s.startswith("data:"))


def test_embed_puts_the_audio_in_the_page(run: Path, tmp_path: Path) -> None:
    out = report(runs=[run], output=tmp_path / "portable.html", embed=True)
    srcs = _srcs(out.read_text(), "audio")
    assert len(srcs) == 10 and all(s.startswith("data:audio/wav;base64,") for s in srcs)


def test_missing_pieces_are_named_with_their_command(tmp_path: Path, run: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(run / "corpus", partial / "corpus")
    shutil.copytree(run / "tok", partial / "tokenizer")
    html = report(runs=[partial]).read_text()
    for command in ("spokenlm resynth", "spokenlm generate", "spokenlm eval all",
                    "spokenlm lm train", "spokenlm vocoder train", "spokenlm tokenize run"):
        assert command in html, command
    assert "no timings.json" in html and "<audio" not in html


def test_imported_models_are_reported_without_training_logs(
        tmp_path: Path, tokenizer_dir: Path, lm_dir: Path, vocoder_dir: Path) -> None:
    imported = tmp_path / "imported"
    for src, name in ((tokenizer_dir, "tokenizer"), (lm_dir, "lm"), (vocoder_dir, "hifigan")):
        shutil.copytree(src, imported / name)
    found = collect_run(imported)
    assert (found.tokenizer, found.lm, found.vocoder) == (
        imported / "tokenizer", imported / "lm", imported / "hifigan")
    html = report(runs=[imported]).read_text()
    assert "lm has no training log (imported, or trained elsewhere)" in html
    assert "hifigan (type fast) has no training log" in html
    assert "has no kmeans_stats.json" in html
    assert f"--lm {imported / 'lm'} --vocoder {imported / 'hifigan'}" in html  # generate cmd


def test_two_runs_compared_from_the_cli(run: Path, tmp_path: Path) -> None:
    from spokenlm.lm.train import train_lm

    other = tmp_path / "other_run"  # the same stages, its LM trained again with another seed
    shutil.copytree(run, other, ignore=lambda folder, names: ["lm"] if folder == str(run) else [])
    train_lm(units=other / "units" / "train.jsonl", valid_units=other / "units" / "valid.jsonl",
             output=other / "lm", size="tiny", max_steps=3, batch_size=2, seq_len=16,
             eval_every=3, log_every=1, seed=1, tokenizer=other / "tok")
    out = tmp_path / "compare.html"
    assert cli(["report", str(run), str(other), "--output", str(out)]) == 0
    html = out.read_text()
    table = html.split("<section id='compare'>")[1].split("</section>")[0]
    assert "<th>cli_run</th><th>other_run</th>" in table
    a, b = (read_json(r / "lm" / "metrics.json")["valid_loss"] for r in (run, other))
    assert re.search(rf"valid loss \(nats / token\) <span class='note'>[^<]*</span></td>"
                     rf"<td class='num'[^>]*>{a:.3f}</td><td class='num'[^>]*>{b:.3f}</td>", table)
    assert "overlaid unit LM losses" in html
    assert "<section id='r0-ab'>" in html and "<section id='r1-ab'>" in html


def test_refusals(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(InputError, match="needed with several|no --output"):
        report(runs=[run, run])
    with pytest.raises(InputError, match="not an .html file"):
        report(runs=[run], output=tmp_path / "r.txt")
    precious = tmp_path / "notes.html"
    precious.write_text("<html>my notes</html>")
    with pytest.raises(InputError, match="not a spokenlm report"):
        report(runs=[run], output=precious)
    assert precious.read_text() == "<html>my notes</html>"
    assert cli(["report", str(tmp_path / "nope")]) == 1
    assert "not a directory" in capsys.readouterr().err


def test_unit_statistics_and_benchmark_scale(tmp_path: Path) -> None:
    rows = [{"id": "a", "units": [0, 3, 1, 0], "durations": [5, 1, 2, 4]},
            {"id": "b", "units": [0, 2, 0], "durations": [3, 1, 6]}]
    write_jsonl(tmp_path / "u.jsonl", rows)
    s = unit_stats(tmp_path / "u.jsonl", n_units=5)
    assert s.silence == 0 and s.silence_share == 1.0 and s.used == 4
    write_jsonl(tmp_path / "v.jsonl", [{"id": "a", "units": [1, 2]}, {"id": "b", "units": [3, 4]}])
    assert unit_stats(tmp_path / "v.jsonl").silence is None  # no unit dominates the edges
    assert s.tokens.tolist() == [4, 1, 1, 1, 0] and s.frames.tolist() == [18, 2, 1, 1, 0]
    p = np.array([4, 1, 1, 1]) / 7
    assert s.entropy_bits() == pytest.approx(float(-(p * np.log2(p)).sum()))
    assert chance_level([{"ll_sum": [0, 1]}, {"ll_sum": [0, 1, 2, 3]}]) == pytest.approx(0.375)
    low, high = binomial_ci95(0.5, 100)
    assert low == pytest.approx(0.404, abs=1e-3) and high == pytest.approx(0.596, abs=1e-3)
    assert binomial_ci95(0.0, 4)[0] == 0.0 and binomial_ci95(0.0, 4)[1] > 0.4
    spec = log_spectrogram(np.random.default_rng(0).standard_normal(16000), 16000)
    assert spec.shape == (257, 98)


requires_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="headless Chromium not installed: run `make browser` "
    "(Debian package chromium) to render the report in a real browser")


@requires_chromium
@pytest.mark.parametrize("embed", [False, True], ids=["linked", "embedded"])
def test_report_renders_in_chromium(run: Path, tmp_path: Path, embed: bool) -> None:
    out = report(runs=[run], output=tmp_path / "r.html" if embed else None, embed=embed)
    found = check_page(out)
    assert found["pending"] == 0
    assert len(found["audio"]) == 10
    for audio in found["audio"]:
        assert audio["error"] is None and audio["duration"] > 0, audio
    assert len(found["images"]) >= 8
    for image in found["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image


@requires_chromium
def test_comparison_renders_in_chromium(run: Path, tmp_path: Path) -> None:
    other = tmp_path / "copy_run"
    shutil.copytree(run, other)
    out = report(runs=[run, other], output=tmp_path / "compare.html")
    found = check_page(out)
    assert found["pending"] == 0 and len(found["audio"]) == 20
    assert all(a["duration"] > 0 for a in found["audio"])
    assert all(i["complete"] and i["width"] > 0 for i in found["images"])
    assert [s["id"] for s in found["sections"]][:2] == ["compare", "losses"]
