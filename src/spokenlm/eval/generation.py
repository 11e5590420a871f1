"""Generation metrics over ``spokenlm generate`` output (``generations.jsonl``).

Over units (always): auto-BLEU2 and self-BLEU2 of the continuations, their VERT, distinct-n
(n = 1..3), unit entropy (bits, and normalised by log2 K), mean continuation length.
With ``--lm``: unit perplexity of each continuation given its prompt under that reference
unit LM, exp(-sum log p / n) over all continuation units.
With an ASR (``--asr``, default ``auto``: Whisper tiny.en when installed, else pocketsphinx;
and wavs written by generate with a vocoder): the same BLEU/VERT metrics over word
transcripts of the continuations, and with ``--text-lm``:

- PPX (GSLM): perplexity of the continuations' normalised transcripts under the text LM,
  exp(total NLL / total tokens);
- GenPPL as slamkit computes it (``asr_perplexity`` in slp-rl/slamkit
  ``slamkit/metric/generative_metric.py``, with ``get_llm_preplexity`` and ``calc_nll`` of
  ``metric_utils.py`` / ``utils/calculation_utils.py``; config ``config/metric/
  asr_perplexity.yaml``): Whisper transcribes the whole generated audio (vocoded prompt +
  continuation), the text LM scores that text as Whisper wrote it (case and punctuation
  kept, the tokenizer's BOS first), each transcript gives its mean token NLL, and GenPPL =
  exp(mean over transcripts). slamkit uses whisper-large-v3-turbo (transformers pipeline,
  greedy) and Llama-3.2-1B on 3 s prompts; pass ``--asr whisper:DIR`` and ``--text-lm DIR``
  with local copies of those to match it (the default Whisper here is tiny.en with beam 5).
  Empty transcripts are left out (``gen_ppl_n`` counts those scored; slamkit's would be NaN).

All BLEU variants follow :mod:`spokenlm.eval.bleu` (GSLM: bigrams, geometric, no brevity
penalty); VERT = sqrt(self-BLEU2 x auto-BLEU2), lower = more diverse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.constants import MIN_DURATION_S
from ..audio.load import AudioError, load_audio
from ..common.errors import InputError
from ..common.files import read_jsonl, write_json, write_jsonl
from ..common.options import arg, command
from ..common.paths import resolve_path, stored_fields
from ..common.progress import log
from .bleu import distinct_n, entropy, vert
from .judges import asr_option, text_lm_option
from .skips import Skips, fmt, set_or_reason


def sequence_metrics(samples: Sequence[Sequence], n_symbols: int | None = None) -> dict:
    """auto-BLEU2, self-BLEU2, VERT, distinct-1..3, entropy and mean length of sequences;
    a value the samples cannot give is None with a ``<name>_reason``."""
    values = dict(vert(samples))
    for n in (1, 2, 3):
        values[f"distinct_{n}"] = distinct_n(samples, n)
    values.update(entropy(samples, n_symbols))
    values["mean_length"] = float(np.mean([len(s) for s in samples])) if samples else None
    no_tokens = "no sample has a token"
    reasons = {"self_bleu2": "needs at least 2 samples", "auto_bleu2": "no samples",
               "vert": "needs both self-BLEU2 and auto-BLEU2", "entropy_bits": no_tokens,
               "entropy_normalised": no_tokens if not any(len(s) for s in samples) else
               "unknown vocabulary size (pass --n-units or --lm)", "mean_length": "no samples",
               **{f"distinct_{n}": f"no sample has {n} tokens" for n in (1, 2, 3)}}
    out: dict = {}
    for key, value in values.items():
        set_or_reason(out, key, value, reasons[key])
    return out


def unit_perplexity(lm, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]],
                    batch_tokens: int | None = None) -> float:
    """exp(mean NLL) of continuation units given their prompts under a ``UnitLM``."""
    lls = lm.log_likelihood([list(p) + list(c) for p, c in zip(prompts, continuations)],
                            batch_tokens=batch_tokens)
    total, n = 0.0, 0
    for ll, c in zip(lls, continuations):
        if len(c):
            total += float(np.asarray(ll.per_token)[-len(c):].sum())
            n += len(c)
    return math.exp(-total / n) if n else float("nan")


@dataclass
class GenerationEvalOptions:
    generations: Path = arg(positional=True, help="generate output dir (generations.jsonl) or the file")
    lm: Path | None = arg(None, help="reference unit LM dir for unit perplexity")
    n_units: int | None = arg(None, help="unit vocabulary size for normalised entropy "
                                         "(default: the reference LM's)")
    asr: str | None = asr_option(none_skips=True)
    text_lm: Path | None = text_lm_option()
    output: Path = arg(Path("generation.json"), help="metrics JSON to write")


@command("eval generation", GenerationEvalOptions)
def evaluate_generation(opts: GenerationEvalOptions) -> dict:
    """auto-BLEU, self-BLEU, VERT, diversity, unit PPL; with ASR + text LM: PPX, GenPPL."""
    path = opts.generations / "generations.jsonl" if opts.generations.is_dir() else opts.generations
    rows = read_jsonl(path)
    if not rows:
        raise InputError(f"{path}: no generations; run `spokenlm generate` first")
    skips = Skips("generation", "samples")
    rows = [r for r in rows if _has_units(r, skips)]
    skips.require(len(rows), path)
    conts = [list(map(int, r["units"])) for r in rows]
    metrics: dict = {"metric": "generation", "n_samples": len(rows), **skips.report()}
    n_units = opts.n_units
    if opts.lm is not None:
        from ..lm.model import UnitLM

        lm = UnitLM.from_pretrained(opts.lm)
        n_units = n_units or lm.n_units
        set_or_reason(metrics, "unit_perplexity",
                      unit_perplexity(lm, [r.get("prompt_units") or [] for r in rows], conts),
                      "every continuation is empty")
    metrics["units"] = sequence_metrics(conts, n_units)
    if opts.asr not in (None, "none"):
        metrics.update(_transcript_metrics(rows, opts, path))
    metrics["inputs"] = stored_fields(opts, opts.output, drop_none=True)
    write_json(opts.output, metrics)
    u = metrics["units"]
    log(f"generation: unit auto-BLEU2 {fmt(u['auto_bleu2'])}, self-BLEU2 {fmt(u['self_bleu2'])}, "
        f"VERT {fmt(u['vert'])}" + (f", unit PPL {fmt(metrics['unit_perplexity'], '.2f')}"
                                    if "unit_perplexity" in metrics else ""))
    return metrics


def _has_units(row: dict, skips: Skips) -> bool:
    """Whether a generations row has a list of integer ``units`` (else it is skipped)."""
    units = row.get("units")
    if isinstance(units, list) and all(isinstance(u, int) for u in units):
        return True
    skips.add("no integer `units` list", row.get("id", "a row without id"))
    return False


def gen_perplexity(tlm, texts: Sequence[str]) -> float:
    """slamkit's GenPPL over a :class:`~spokenlm.eval.textlm.TextLM`: exp of the mean over
    ``texts`` of each text's mean token NLL (nan when no text has a scored token)."""
    per_text = [nll / n for nll, n in tlm.nll(texts) if n]
    return math.exp(sum(per_text) / len(per_text)) if per_text else float("nan")


def _transcript_metrics(rows: list[dict], opts: GenerationEvalOptions, path: Path) -> dict:
    """BLEU/VERT of transcripts of the generated audio (paths in ``rows`` are relative to
    ``path``, the generations JSONL), and PPX / GenPPL with a text LM."""
    from ..asr import load_asr
    from ..asr.base import normalize_text

    skips = Skips("generation transcripts", "samples")
    usable, conts, fulls = [], [], []
    for r in rows:
        if not (r.get("continuation_path") and r.get("path")):
            skips.add("no generated audio (generate ran without a vocoder)", r.get("id"))
            continue
        # An empty continuation (the LM ended the utterance at once) transcribes to "".
        spoken = r.get("continuation_seconds", 1.0) >= MIN_DURATION_S
        try:
            fulls.append(load_audio(resolve_path(r["path"], path)))
        except AudioError as e:
            skips.add("unreadable audio", e)
            continue
        try:
            conts.append(load_audio(resolve_path(r["continuation_path"], path))
                         if spoken else None)
        except AudioError as e:
            fulls.pop()
            skips.add("unreadable audio", e)
            continue
        usable.append(r)
    if not usable and not skips.counts["unreadable audio"]:  # generated without a vocoder
        reason = f"all {skips.total} samples skipped: {skips.summary()}"
        log(f"generation: transcript metrics skipped: {reason}")
        return {"transcripts": {"skipped": reason, **skips.report()}}
    skips.require(len(usable), path)  # audio named but none readable: an error
    asr = load_asr(opts.asr)
    spoken_idx = [i for i, w in enumerate(conts) if w is not None]
    texts = dict(zip(spoken_idx, asr.transcribe_many([conts[i] for i in spoken_idx],
                                                     desc="asr continuations")))
    if len(spoken_idx) < len(usable):
        log(f"generation: {len(usable) - len(spoken_idx)} continuations shorter than "
            f"{MIN_DURATION_S} s, transcribed as empty")
    cont_text = [texts.get(i, "") for i in range(len(usable))]
    full_raw = asr.transcribe_raw_many(fulls, desc="asr full")
    full_text = [normalize_text(t) for t in full_raw]
    out: dict = {"asr": asr.describe(),
                 "transcripts": {**sequence_metrics([t.split() for t in cont_text]),
                                 "n_samples": len(usable), **skips.report()}}
    if opts.text_lm is not None:
        from .textlm import TextLM

        tlm = TextLM(opts.text_lm)
        set_or_reason(out, "ppx", tlm.perplexity([t for t in cont_text if t]),
                      "every continuation transcript is empty")
        scored = [t for t in full_raw if t]
        set_or_reason(out, "gen_ppl", gen_perplexity(tlm, scored),
                      "every transcript of the generated audio is empty")
        out["gen_ppl_n"] = len(scored)
    write_jsonl(Path(opts.output).with_suffix(".transcripts.jsonl"),
                [{"id": r["id"], "continuation": c, "full": f, "full_raw": fr}
                 for r, c, f, fr in zip(usable, cont_text, full_text, full_raw)])
    return out
