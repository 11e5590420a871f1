"""The report's listening sections.

- A/B: each source utterance next to its resynthesis (players, one spectrogram figure on
  a shared colour scale, and the ASR transcript of both against the reference text, from
  ``eval resynthesis``'s ``*.transcripts.jsonl``).
- Continuations: the spoken prompt (the first ``--prompt-seconds`` of the source, what the
  LM was given), the continuation alone and the full generated audio as separate players;
  the spectrogram of the full audio marks where the prompt ends; the ASR transcript of
  the continuation (``eval generation --asr``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio.constants import SAMPLE_RATE
from .report_collect import Run, load_json, read_rows, resolve
from .report_html import Page, esc, figure, missing, short
from .report_plots import spectrograms
from .report_stats import word_error_rate


def _load(path: Path | None, start: float = 0.0, duration: float | None = None
          ) -> np.ndarray | None:
    """16 kHz mono audio of ``path`` (only ``duration`` s from ``start`` s when given, so a
    segment of an hour-long file is read alone); None when unreadable."""
    if path is None:
        return None
    import soundfile as sf
    import soxr

    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            first = max(0, int(round(start * sr)))
            n = -1 if duration is None else max(0, int(round(duration * sr)))
            f.seek(min(first, f.frames))
            wav = f.read(n, dtype="float32", always_2d=True).mean(axis=1)
    except (OSError, RuntimeError, ValueError, sf.LibsndfileError):
        return None
    if sr != SAMPLE_RATE and wav.size:
        wav = soxr.resample(wav, sr, SAMPLE_RATE).astype(np.float32)
    return wav


def _segment(row: dict, prefix: str = "source_") -> tuple[float, float | None] | None:
    """(start, duration) of the source segment a row names (``source_start`` /
    ``source_duration``, copied from a manifest of long files), else None."""
    start = row.get(f"{prefix}start")
    if not isinstance(start, (int, float)):
        return None
    dur = row.get(f"{prefix}duration")
    return float(start), float(dur) if isinstance(dur, (int, float)) else None


def _transcripts(run: Run, metric: str, ids: set[str]) -> tuple[str | None, dict[str, dict]]:
    """(description, rows by id) of the ``metric`` result whose transcripts cover the most
    of ``ids``; (None, {}) when no result has transcripts of these utterances."""
    best: tuple[int, str | None, dict[str, dict]] = (0, None, {})
    for result in run.results_of(metric):
        side = result.sidecar(".transcripts.jsonl")
        if side is None:
            continue
        rows = {r.get("id"): r for r in read_rows(side)}
        hit = len(ids & set(rows))
        if hit > best[0]:
            asr = short(result.data.get("asr", "?"))
            best = (hit, f"ASR {asr} ({run.rel(side)})", rows)
    return best[1], best[2]


def _asr_line(label: str, hyp: str | None, ref: str | None) -> str:
    if hyp is None:
        return ""
    wer = word_error_rate(ref, hyp)
    tag = f" <span class='wer'>WER {wer:.2f}</span>" if wer is not None else ""
    return f"<div class='asr'>{esc(label)}: “{esc(hyp)}”{tag}</div>"


def _player(page: Page, title: str, path: Path | None, seconds: float | None = None) -> str:
    dur = f" ({seconds:.2f} s)" if seconds else ""
    return f"<div class='player'><b>{esc(title)}{dur}</b>{page.audio(path, title)}</div>"


def _transcripts_note(asr: str | None, tail: str, what: str, why: str, command: str) -> str:
    """A listening section's transcript line: the ASR that wrote them (``tail`` ends the
    sentence), or, with none, what is missing and the command that makes them."""
    if asr:
        return f"<p class='note'>Transcripts: {esc(asr)}{tail}</p>"
    return missing(what, why, command)


def ab_section(run: Run, page: Page, max_examples: int) -> str:
    if not run.resynth:
        return missing("A/B listening", "no resynthesis in this run (no resynth.jsonl)",
                       _resynth_command(run))
    out = []
    for folder in run.resynth:
        rows = read_rows(folder / "resynth.jsonl")
        shown = rows[:max_examples]
        asr, trans = _transcripts(run, "resynthesis", {r.get("id") for r in shown})
        out.append(f"<h3>{esc(run.rel(folder))}</h3><p class='note'>{len(rows)} utterances "
                   f"resynthesised from their units; {len(shown)} shown. Spectrograms share "
                   f"one colour scale per pair.</p>")
        out.append(_transcripts_note(
            asr, "; WER of each against the reference text.", "ASR transcripts",
            "no `eval resynthesis` result covers these utterances",
            f"spokenlm eval resynthesis {folder} --output "
            f"{run.root / 'eval' / 'resynthesis.json'}"))
        for r in shown:
            out.append(_ab_card(run, page, folder, r, trans.get(r.get("id"))))
    return "".join(out)


def _ab_card(run: Run, page: Page, folder: Path, row: dict, trans: dict | None) -> str:
    src = resolve(row.get("source"), folder, run.root)
    out = resolve(row.get("path"), folder, run.root)
    ref = row.get("text") or (trans or {}).get("text")
    seg = _segment(row)
    a, b = _load(src, *(seg or (0.0, None))), _load(out)
    cols = []
    for title, path, wav, key in (("source", src, a, "source"),
                                  ("resynthesis", out, b, "resynth")):
        secs = len(wav) / SAMPLE_RATE if wav is not None else None
        if key == "source" and seg is not None and wav is not None:  # a cut of a long file
            player = (f"<div class='player'><b>source (segment at {seg[0]:.2f} s, {secs:.2f} s)"
                      f"</b>{page.audio_clip(wav, SAMPLE_RATE, title)}</div>")
        else:
            player = _player(page, title, path, secs)
        cols.append(f"<div>{player}{_asr_line('ASR', (trans or {}).get(key), ref)}</div>")
    fig = ""
    panels = [(t, w, SAMPLE_RATE) for t, w in (("source", a), ("resynthesis", b)) if w is not None]
    if panels:
        fig = figure(spectrograms(panels), f"spectrograms of {row.get('id')}")
    return (f"<div class='card'><div class='head'>{esc(row.get('id'))}</div>"
            f"<div class='ref'>reference: {esc(ref or '(no reference text)')}</div>"
            f"<div class='ab'>{''.join(cols)}</div>{fig}</div>")


def continuations_section(run: Run, page: Page, max_examples: int) -> str:
    if not run.generate:
        return missing("continuations", "no spoken continuations in this run (no "
                       "generations.jsonl)", _generate_command(run))
    out = []
    for folder in run.generate:
        rows = read_rows(folder / "generations.jsonl")
        shown = rows[:max_examples]
        settings = _settings(folder / "generations.settings.json")
        asr, trans = _transcripts(run, "generation", {r.get("id") for r in shown})
        cut = settings.get("prompt_seconds")
        out.append(f"<h3>{esc(run.rel(folder))}</h3><p class='note'>{len(rows)} continuations; "
                   f"{len(shown)} shown. Prompt: the first {cut if cut is not None else '?'} s "
                   f"of each source utterance; sampling: temperature "
                   f"{settings.get('temperature', '?')}, top-k {settings.get('top_k', '?')}, "
                   f"at most {settings.get('max_new_tokens', '?')} new units.</p>")
        out.append(_transcripts_note(
            asr, ".", "ASR transcripts of the continuations",
            "no `eval generation --asr` result covers these continuations",
            f"spokenlm eval generation {folder} --asr pocketsphinx "
            f"--output {run.root / 'eval' / 'generation.json'}"))
        for r in shown:
            out.append(_continuation_card(run, page, folder, r, trans.get(r.get("id")), cut))
    return "".join(out)


def _continuation_card(run: Run, page: Page, folder: Path, row: dict, trans: dict | None,
                       cut: float | None) -> str:
    full = resolve(row.get("path"), folder, run.root)
    cont = resolve(row.get("continuation_path"), folder, run.root)
    src = resolve(row.get("source"), folder, run.root)
    head = (f"<div class='card'><div class='head'>{esc(row.get('id'))}</div>"
            f"<div class='ref'>source text (the prompt is its beginning): "
            f"{esc(row.get('text') or '(none)')}</div>")
    if full is None and cont is None:
        return head + ("<div class='gone'>units only: generate ran without a vocoder, or its "
                       "wav files are gone</div></div>")
    seg = _segment(row) or (0.0, None)
    source = _load(src, seg[0], cut if cut else seg[1])
    if source is not None and cut:
        clip = source
        prompt = (f"<div class='player'><b>prompt (source, first {len(clip) / SAMPLE_RATE:.2f} "
                  f"s)</b>{page.audio_clip(clip, SAMPLE_RATE, 'prompt')}</div>")
    else:
        prompt = _player(page, "prompt (source)", src)
    wav = _load(full)
    players = [prompt, _player(page, "continuation", cont, row.get("continuation_seconds")),
               _player(page, "full: prompt + continuation", full,
                       len(wav) / SAMPLE_RATE if wav is not None else None)]
    fig = ""
    if wav is not None:
        mark = float(row.get("prompt_seconds") or 0.0)
        marks = [(mark, f"prompt ends {mark:.2f} s")] if mark > 0 else []
        fig = figure(spectrograms([("full audio: vocoded prompt | continuation", wav,
                                    SAMPLE_RATE)], marks=marks),
                     f"spectrogram of {row.get('id')}")
    asr = ""
    if trans:
        asr = (f"<div class='asr'>ASR of the continuation: “{esc(trans.get('continuation'))}”"
               f"</div><div class='asr'>ASR of the full audio: “{esc(trans.get('full'))}”"
               f"</div>")
    return head + f"<div class='three'>{''.join(players)}</div>{fig}{asr}</div>"


def _settings(path: Path) -> dict:
    data = load_json(path)
    return data if isinstance(data, dict) else {}


def _pieces(run: Run) -> tuple[str, str, str, str]:
    corpus = run.corpus / "test.jsonl" if run.corpus else "<test manifest.jsonl>"
    tok = run.tokenizer or "<tokenizer dir>"
    return (str(corpus), str(tok), str(run.vocoder or "<vocoder dir>"),
            str(run.lm or "<unit LM dir>"))


def _resynth_command(run: Run) -> str:
    corpus, tok, voc, _ = _pieces(run)
    return (f"spokenlm resynth {corpus} --tokenizer {tok} --vocoder {voc} "
            f"--output {run.root / 'resynth'} --limit 8")


def _generate_command(run: Run) -> str:
    corpus, tok, voc, lm = _pieces(run)
    return (f"spokenlm generate {corpus} --tokenizer {tok} --lm {lm} --vocoder {voc} "
            f"--output {run.root / 'generate'} --limit 8")
