"""``spokenlm eval cross-modal``: an interleaved speech-text LM across modalities.

Reads a story cloze benchmark whose every wav carries its text (``spokenlm data bench
build --generate story_cloze``: a spoken prompt, spoken endings, the right one marked), so each
prompt and ending exists in both modalities, and reports:

- **cross-modal story cloze** in the four directions ``text->speech`` (written prompt,
  spoken endings), ``speech->text``, and the single-modality ``speech->speech`` (sSC/tSC as a
  speech LM sees it) and ``text->text``: an item is right when the right ending gets the
  highest log-likelihood given the prompt (summed and per token), as slamkit's
  ``cm_storycloze`` (SIMS) scores it with the ending's modality only. Sequences are those
  of training: ``BOS [A] prompt [B] ending`` (one marker when A = B); only the ending's
  tokens are scored, never the markers.
- **continuation** in each direction: the per-token NLL of the right ending given the
  prompt, next to the same ending with no prompt (``BOS [B] ending``); ``gain`` = how many
  nats per token the prompt in the other modality is worth (0: the model does not carry
  meaning across).
- **generation** for the first ``--n-generate`` items: ``speech->text`` and
  ``text->speech`` continuations sampled with the other modality's tokens banned (as
  SpiritLM generates), written to ``<output>.samples.jsonl``; the generated text is scored by
  the original text LM (its perplexity: how fluent the text continuing the speech is),
  the generated units by their diversity (auto-BLEU2, distinct-n).
- **text perplexity before and after**: the text-only perplexity of ``--text`` (default:
  the sentences of the benchmark's prompts and right endings) under the text LM the
  interleaved LM was warm-started from (before: ``BOS text`` with its own BOS) and under the
  interleaved LM reading ``BOS [TEXT] text`` (after), over the same text tokens (both read
  by the interleaved LM's copy of the text tokenizer), so a user sees what interleaved
  training cost the text ability.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..common.errors import InputError
from ..common.files import write_json, write_jsonl
from ..common.options import arg, command
from ..common.paths import store_path
from ..common.progress import log, progress
from ..lm.interleave import text_span_ids
from ..lm.interleaved_model import InterleavedLM
from ..lm.interleaved_score import sample_restricted, score_suffixes
from ..lm.sampling import SamplingOptions
from ..lm.text_codec import TextCodec
from .benchmark import Benchmark, accuracy, encode_audio
from .generation import sequence_metrics
from .skips import Skips, fmt, set_or_reason

DIRECTIONS = ("text->speech", "speech->text", "speech->speech", "text->text")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass
class CrossModalOptions:
    benchmark: Path = arg(positional=True, help="story cloze benchmark dir whose wavs carry "
                          "their text (spokenlm data bench build --generate story_cloze)")
    tokenizer: Path = arg(help="speech tokenizer dir (the units of the LM)")
    lm: Path = arg(help="interleaved LM dir (`spokenlm lm train --interleave` final/)")
    output: Path = arg(Path("cross_modal.json"), help="metrics JSON to write (and "
                       "<output>.items.jsonl, <output>.samples.jsonl)")
    text_lm: Path | None = arg(None, help="the text LM before interleaved training (default: "
                               "the one the interleaved LM records)")
    text: Path | None = arg(None, help="text for the text-only perplexity (one sentence a "
                            "line, or a JSONL/corpus with text); default: the benchmark's "
                            "prompts and right endings")
    n_generate: int = arg(8, help="items continued by sampling, speech->text and "
                          "text->speech (0: none)")
    # The sampling settings this command exposes, with help in its own words (tokens of
    # either modality); defaults from SamplingOptions but the shorter continuations.
    max_new_tokens: int = arg(60, help="longest sampled continuation (tokens)")
    temperature: float = arg(SamplingOptions.temperature, help="sampling temperature (0: "
                             "greedy)")
    top_k: int = arg(SamplingOptions.top_k, help="sample among the k most likely tokens "
                     "(0: all)")
    seed: int = arg(SamplingOptions.seed, help="seed of the sampling")
    batch_tokens: int | None = arg(None, help="token budget per LM forward (default: by "
                                   "device)")

    @property
    def sampling(self) -> SamplingOptions:
        """The draws of ``--n-generate``: these flags, the rest as SamplingOptions has them
        (EOS ends a continuation; no top-p, no repetition penalty)."""
        return SamplingOptions(max_new_tokens=self.max_new_tokens,
                               temperature=self.temperature, top_k=self.top_k, seed=self.seed)


@command("eval cross-modal", CrossModalOptions)
def evaluate_cross_modal(opts: CrossModalOptions) -> dict:
    """Cross-modal story cloze, continuation and text perplexity of an interleaved LM.

    Also samples speech->text and text->speech continuations; the text perplexity is
    reported before and after interleaved training."""
    from ..tokenize.tokenizer import SpeechTokenizer

    sampling = opts.sampling  # a bad --temperature, --top-k, ... fails before any work
    lm = InterleavedLM.from_pretrained(opts.lm)
    tokenizer = SpeechTokenizer.from_pretrained(opts.tokenizer)
    lm.check_tokenizer(tokenizer.n_units)
    bench = Benchmark.load(opts.benchmark)
    items, skips = _usable_items(bench, tokenizer)
    skips.require(len(items), bench.root)
    seqs = _Sequences(lm)
    scored, cloze = cross_modal_cloze(lm, items, opts.batch_tokens)
    metrics = {"metric": "cross_modal", "n_items": len(items), "cloze": cloze,
               "continuation": continuation_nll(lm, items, opts.batch_tokens)}
    text_lm = opts.text_lm or (Path(lm.text_lm) if lm.text_lm else None)
    judge = _TextLMScore(text_lm, lm.codec)
    samples, metrics["generation"] = _generation(items[: opts.n_generate], seqs, opts,
                                                 sampling, judge)
    texts = _texts(opts, items)
    metrics["text_perplexity"] = _text_perplexity(texts, seqs, judge, opts.batch_tokens)
    metrics.update(skips.report())
    metrics["inputs"] = {k: store_path(v, opts.output) for k, v in (
        ("benchmark", opts.benchmark), ("tokenizer", opts.tokenizer), ("lm", opts.lm),
        ("text_lm", text_lm), ("text", opts.text))}
    write_json(opts.output, metrics)
    write_jsonl(Path(opts.output).with_suffix(".items.jsonl"), scored)
    write_jsonl(Path(opts.output).with_suffix(".samples.jsonl"), samples)
    ppl = metrics["text_perplexity"]
    log("cross-modal cloze (sum): " + ", ".join(
        f"{d} {metrics['cloze'][d]['accuracy_sum']:.3f}" for d in DIRECTIONS)
        + f"; text perplexity {fmt(ppl['before'], '.2f')} before, {fmt(ppl['after'], '.2f')}"
        f" after -> {opts.output}")
    return metrics


def _usable_items(bench: Benchmark, tokenizer: object) -> tuple[list[dict], Skips]:
    """Items with a prompt, two or more endings, and text and units for every wav:
    ``{"id", "subset", "answer", "prompt": (text, units), "endings": [(text, units)]}``."""
    if not bench.items or not all(it.get("prompt") for it in bench.items):
        raise InputError(f"{bench.root}: items without a prompt (a {bench.kind} benchmark); "
                         f"cross-modal evaluation needs story cloze items, build them with "
                         f"`spokenlm data bench build --generate story_cloze`")
    skips = Skips("cross-modal", "items")
    needed = {a for it in bench.items for a in [it["prompt"], *it["candidates"]]}
    untexted = {a for a in needed if not (bench.audio[a].get("text") or "").strip()}
    failed: dict[str, str] = {}
    units = encode_audio({a: bench.audio[a] for a in sorted(needed - untexted)}, tokenizer,
                         desc=f"tokenize {bench.root.name}", failed=failed)
    items = []
    for it in bench.items:
        ids = [it["prompt"], *it["candidates"]]
        if any(a in untexted for a in ids):
            skips.add("a wav without text", next(a for a in ids if a in untexted))
        elif any(a not in units for a in ids):
            miss = next(a for a in ids if a not in units)
            skips.add("unreadable audio", failed.get(miss, miss))
        elif any(not units[a] for a in ids):
            skips.add("a wav with no units", next(a for a in ids if not units[a]))
        else:
            def both(a: str) -> tuple[str, list[int]]:
                return bench.audio[a]["text"].strip(), units[a]

            items.append({"id": it["id"], "subset": it.get("subset", "all"),
                          "answer": int(it.get("answer", 0)), "prompt": both(it["prompt"]),
                          "endings": [both(a) for a in it["candidates"]]})
    return items, skips


class _Sequences:
    """Token sequences of prompts and endings in either modality (as in training)."""

    def __init__(self, lm: InterleavedLM) -> None:
        self.lm, self.vocab, self.codec = lm, lm.vocab, lm.codec

    def body(self, modality: str, content: tuple[str, list[int]], first: bool) -> list[int]:
        if modality == "speech":
            return [u + self.vocab.unit_offset for u in content[1]]
        return text_span_ids(self.codec, [content[0]], first=first)

    def pair(self, a: str, b: str, prompt: tuple | None, ending: tuple) -> tuple[list[int], int]:
        """(``BOS [A] prompt [B] ending``, tokens of the ending) -- no prompt: ``BOS [B]
        ending``."""
        head = [self.vocab.bos_id]
        if prompt is not None:
            head += [self.vocab.marker(a), *self.body(a, prompt, first=True)]
        if prompt is None or a != b:
            head.append(self.vocab.marker(b))
        end = self.body(b, ending, first=prompt is None)
        return head + end, len(end)

    def score(self, pairs: list[tuple[list[int], int]], batch_tokens: int | None
              ) -> list[np.ndarray]:
        return score_suffixes(self.lm.model, [s for s, _ in pairs], [n for _, n in pairs],
                              self.vocab.pad_id, batch_tokens)


def _modalities(direction: str) -> tuple[str, str]:
    a, b = direction.split("->")
    return a, b


def cross_modal_cloze(lm: InterleavedLM, items: list[dict], batch_tokens: int | None = None
                      ) -> tuple[list[dict], dict]:
    """(per-item scores, accuracy per direction) of cloze ``items``: ``{"id", "subset",
    "answer", "prompt": (text, units), "endings": [(text, units), ...]}``."""
    seqs = _Sequences(lm)
    scored = [{"id": it["id"], "subset": it["subset"], "answer": it["answer"]} for it in items]
    cloze = {}
    for direction in progress(DIRECTIONS, desc="cross-modal cloze", unit="direction"):
        a, b = _modalities(direction)
        pairs = [seqs.pair(a, b, it["prompt"], e) for it in items for e in it["endings"]]
        lps = iter(seqs.score(pairs, batch_tokens))
        rows = []
        for it, row in zip(items, scored):
            lp = [next(lps) for _ in it["endings"]]
            row[direction] = {"ll_sum": [float(x.sum()) for x in lp],
                              "ll_mean": [float(x.mean()) for x in lp]}
            rows.append({"subset": it["subset"], "answer": it["answer"], **row[direction]})
        cloze[direction] = accuracy(rows)
    return scored, cloze


def continuation_nll(lm: InterleavedLM, items: list[dict], batch_tokens: int | None = None
                     ) -> dict:
    """NLL per token of the right ending of each item with and without its prompt, per
    direction (items as :func:`cross_modal_cloze` takes them)."""
    seqs, out = _Sequences(lm), {}
    for direction in DIRECTIONS:
        a, b = _modalities(direction)
        alone = seqs.score([seqs.pair(a, b, None, it["endings"][it["answer"]]) for it in items],
                           batch_tokens)
        given = [seqs.pair(a, b, it["prompt"], it["endings"][it["answer"]]) for it in items]
        with_prompt = seqs.score(given, batch_tokens)
        n = sum(len(x) for x in with_prompt)
        nll_given = -sum(float(x.sum()) for x in with_prompt) / max(n, 1)
        nll_alone = -sum(float(x.sum()) for x in alone) / max(1, sum(len(x) for x in alone))
        out[direction] = {"nll_given_prompt": nll_given, "nll_without_prompt": nll_alone,
                          "gain": nll_alone - nll_given, "n_tokens": n}
    return out


def _generation(items: list[dict], seqs: _Sequences, opts: CrossModalOptions,
                sampling: SamplingOptions, judge: _TextLMScore) -> tuple[list[dict], dict]:
    """Sampled speech->text and text->speech continuations (every draw from one generator
    seeded with ``sampling.seed``) and their metrics."""
    vocab, lm = seqs.vocab, seqs.lm
    allowed = {"text": lm.text_allowed(),
               "speech": list(range(vocab.unit_offset, vocab.unit_offset + vocab.n_units))}
    generator = torch.Generator(device=lm.device).manual_seed(sampling.seed)
    samples: list[dict] = []
    for direction in ("speech->text", "text->speech"):
        a, b = _modalities(direction)
        for it in progress(items, desc=f"generate {direction}", unit="item"):
            prompt = [vocab.bos_id, vocab.marker(a), *seqs.body(a, it["prompt"], first=True),
                      vocab.marker(b)]
            new = sample_restricted(lm.model, prompt, allowed[b], vocab.eos_id, sampling,
                                    generator=generator)
            row = {"id": it["id"], "direction": direction, "prompt_text": it["prompt"][0],
                   "reference": it["endings"][it["answer"]][0]}
            if b == "text":
                row.update(text=lm.codec.decode(new), tokens=new)
            else:
                row["units"] = [t - vocab.unit_offset for t in new]
            samples.append(row)
    texts = [s["text"] for s in samples if s["direction"] == "speech->text"]
    units = [s["units"] for s in samples if s["direction"] == "text->speech"]
    metrics: dict = {"n_items": len(items), "samples": str(Path(opts.output).with_suffix(
        ".samples.jsonl").name)}
    if not items:
        return samples, metrics
    to_text = sequence_metrics([t.split() for t in texts])
    spoken = [t for t in texts if t.strip()]
    ppl = math.exp(judge.nll(spoken, opts.batch_tokens)[0]) \
        if judge.available and spoken else None
    set_or_reason(to_text, "text_lm_perplexity", ppl, judge.missing if not judge.available
                  else "every generated text is empty")
    metrics["speech->text"] = to_text
    metrics["text->speech"] = sequence_metrics(units, vocab.n_units)
    return samples, metrics


class _TextLMScore:
    """The text LM before interleaved training, loaded once when needed; it scores text with
    the interleaved LM's tokenizer (``codec``), so both perplexities count the same tokens:
    ``BOS t..`` with the text LM's own BOS (no BOS: the first token is context only)."""

    def __init__(self, path: Path | None, codec: TextCodec) -> None:
        self.path, self.codec, self._model = path, codec, None
        self.available = path is not None and Path(path).exists()
        self.missing = ("no text LM recorded (pass --text-lm)" if path is None
                        else f"{path} not found (pass --text-lm)")

    def nll(self, texts: list[str], batch_tokens: int | None = None) -> tuple[float, int]:
        """(mean NLL per token, tokens scored) of ``texts``."""
        from ..lm.twist import load_text_lm

        if not self.available:
            raise InputError(f"{self.path}: {self.missing}")
        if self._model is None:
            own = TextCodec.load(self.path)
            if own.fingerprint() != self.codec.fingerprint():
                raise InputError(f"{self.path}: its tokenizer is not the interleaved LM's; "
                                 f"pass the text LM it was warm-started from as --text-lm")
            self._model = load_text_lm(self.path).eval()
        bos = self._model.config.bos_token_id
        seqs = [([bos] if bos is not None else []) + ids
                for ids in (self.codec.encode(t) for t in texts)]
        seqs = [q for q in seqs if len(q) >= 2]
        lps = score_suffixes(self._model, seqs, [len(q) - 1 for q in seqs], pad_id=0,
                             batch_tokens=batch_tokens)
        n = sum(len(x) for x in lps)
        return (-sum(float(x.sum()) for x in lps) / n if n else float("nan")), n


def _texts(opts: CrossModalOptions, items: list[dict]) -> list[str]:
    """``--text``, or the sentences of the prompts and right endings (split at ".", "!",
    "?", which are dropped: transcripts carry none), each once."""
    if opts.text is not None:
        from ..lm.text_lm import read_text

        return read_text(opts.text)
    texts = [it["prompt"][0] for it in items] + [it["endings"][it["answer"]][0] for it in items]
    sentences = (s.strip().rstrip(".!?").strip() for t in texts for s in _SENTENCE.split(t))
    return list(dict.fromkeys(s for s in sentences if s))


def _text_perplexity(texts: list[str], seqs: _Sequences, judge: _TextLMScore,
                     batch_tokens: int | None) -> dict:
    """Text-only perplexity under the text LM (before) and the interleaved LM (after)."""
    pairs = [([seqs.vocab.bos_id, seqs.vocab.text_id, *ids], len(ids))
             for ids in (seqs.codec.encode(t) for t in texts) if ids]
    lps = seqs.score(pairs, batch_tokens)
    n = sum(len(x) for x in lps)
    after = math.exp(-sum(float(x.sum()) for x in lps) / n) if n else None
    out = {"n_texts": len(texts), "n_tokens_after": n}
    set_or_reason(out, "after", after, "no text token")
    before, n_before = None, 0
    if judge.available:
        nll, n_before = judge.nll(texts, batch_tokens)
        before = math.exp(nll) if n_before else None
    set_or_reason(out, "before", before, judge.missing if not judge.available
                  else "no text token")
    out["n_tokens_before"] = n_before
    ratio = out["after"] / out["before"] if out["after"] and out["before"] else None
    set_or_reason(out, "ratio", ratio, "needs both perplexities")
    return out
