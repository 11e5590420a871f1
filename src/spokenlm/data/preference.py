"""SpokenSwag-style preference pairs for DPO, spoken with espeak-ng
(``spokenlm data bench build --generate preference``).

What Slam does (Maimon et al. 2025, section 4.4; slp-rl/slamkit): SpokenSwag speaks SWAG,
taking the context sentence as the prompt, the true ending as the chosen continuation and
a randomly drawn wrong ending of the same item as the rejected one; each row is spoken by one
of four voices (two male, two female, US and UK), the same voice for its three audios; rows
whose ``prompt_text + " " + chosen_text`` repeats itself (auto-BLEU over word bigrams, the
share of bigrams that occur elsewhere in the text, not below 0.3) are left out of DPO
training (slamkit's repetition filter).

What spokenlm follows, and where it differs:

- the stories are spokenlm's grammar stories (:func:`~spokenlm.data.grammar.generate_stories`)
  or a user's text (``--text``: documents separated by blank lines, split into sentences);
  the prompt is the story so far (its first ``j`` sentences, ``j`` drawn from 1..K-1), the
  chosen continuation its next sentence;
- the rejected continuation comes from ``rejected_source`` (items take the sources in turn):
  ``other_story``, the sentence at the same position of another story (as a SWAG wrong
  ending: fluent and grammatical, but about other people and things); ``shuffled``, the
  chosen sentence's words in a random order; ``ungrammatical``, the chosen sentence with one
  agreement broken (grammar stories; two adjacent words swapped when it has none);
- espeak-ng voices instead of Kokoro: the built-in table, or the ``--split`` speakers of a
  corpus, ``train`` by default since preference pairs are training data; one voice for the
  three audios of a row, as in SpokenSwag;
- every row records its ``auto_bleu2``; ``--max-auto-bleu 0.3`` leaves out repetitive rows
  before speaking, as slamkit's filter (off by default: a story that keeps naming its cast
  repeats bigrams by design).

Layout of the output folder (a spokenlm benchmark dir, see :mod:`spokenlm.eval.benchmark`)::

    wavs/<id>.wav    16 kHz mono, ids <item>_<speaker>_{prompt,chosen,rejected}
    manifest.jsonl   every wav: id, path, duration, sample_rate, num_channels, speaker, text
    pairs.jsonl      one row per pair, for a DPO trainer: {"id", "prompt", "chosen",
                     "rejected" (audio ids of manifest.jsonl), "prompt_text", "chosen_text",
                     "rejected_text", "rejected_source", "speaker", "auto_bleu2", "story"}
    items.jsonl      the same pairs as cloze items (candidates [chosen, rejected], answer 0,
                     subset = rejected_source): ``spokenlm eval story-cloze`` on the folder
                     says how often an LM prefers the chosen continuation
    config.json      {"kind": "preference", "source", "speakers", "options", ...}

A hook for on-policy data: ``rejected_source`` names where a rejected continuation came from,
and nothing downstream depends on it being one of the three above. Text items with
``{"prompt", "chosen", "rejected", "rejected_source"}`` (e.g. transcribed LM samples) build
the same folder with ``spokenlm data bench build items.jsonl``; a model-sampled continuation kept
as audio is one more manifest row whose id a pairs row names as ``rejected``, with
``rejected_source: "model:<lm dir>"``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from ..common.errors import InputError
from .grammar import Sentence, Story, generate_stories
from .text_split import read_documents, split_sentences

REJECTED_SOURCES = ("other_story", "shuffled", "ungrammatical")
#: slamkit's repetition filter: auto-BLEU over word bigrams, rows at or above 0.3 left out.
SLAM_MAX_AUTO_BLEU = 0.3
_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


def auto_bleu(text: str, n: int = 2) -> float:
    """Share of the word ``n``-grams of ``text`` that occur elsewhere in it (0: none repeat;
    words and punctuation marks are tokens, lowercased)."""
    tokens = _TOKEN.findall(text.lower())
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    counts: dict[tuple[str, ...], int] = {}
    for g in grams:
        counts[g] = counts.get(g, 0) + 1
    return sum(counts[g] > 1 for g in grams) / len(grams)


def _check_sources(rejected: Sequence[str], grammar: bool) -> tuple[str, ...]:
    rejected = tuple(rejected)
    bad = [r for r in rejected if r not in REJECTED_SOURCES]
    if not rejected or bad:
        raise InputError(f"rejected={list(rejected)}: choose from {list(REJECTED_SOURCES)}")
    if "ungrammatical" in rejected and not grammar:
        raise InputError("--rejected ungrammatical needs grammar stories (their agreements); "
                         "with --text use other_story and/or shuffled")
    return rejected


def _shuffled(words: list[str], rng: random.Random) -> str | None:
    if len(set(words)) < 2:
        return None
    order = list(words)
    while order == words:
        rng.shuffle(order)
    return " ".join(order)


def _ungrammatical(s: Sentence, rng: random.Random) -> str | None:
    agreements = [a for a in s.agreements if a.alternative != s.tokens[a.target]]
    if agreements:
        return s.violate(rng.choice(agreements)).text
    return s.swap_adjacent(rng)


def preference_items(stories: Sequence[Sequence[str]], n: int, seed: int = 0,
                     rejected: Sequence[str] = ("other_story",),
                     parsed: Sequence[Sequence[Sentence]] | None = None,
                     joiner: str = " ") -> list[dict]:
    """Up to ``n`` text items ``{"prompt", "chosen", "rejected", "rejected_source", "story",
    "subset"}`` from ``stories`` (each a list of sentence texts; stories of one sentence are
    passed over). ``parsed``, the grammar's sentences of the same stories, makes
    ``ungrammatical`` possible; ``joiner`` joins the prompt's sentences."""
    rejected = _check_sources(rejected, parsed is not None)
    usable = [i for i, st in enumerate(stories) if len(st) >= 2]
    if "other_story" in rejected and len(usable) < 2:
        raise InputError(f"{len(usable)} story(ies) of two or more sentences: other_story "
                         f"needs two; add stories or use --rejected shuffled")
    rng = random.Random(seed)
    out = []
    for i in usable[:n]:
        story = stories[i]
        j = rng.randint(1, len(story) - 1)
        chosen = story[j]
        source = rejected[len(out) % len(rejected)]
        text = None
        if source == "shuffled":
            text = _shuffled(chosen.split(), rng)
            source = source if text is not None else "other_story"
        elif source == "ungrammatical":
            text = _ungrammatical(parsed[i][j], rng)
            source = source if text is not None else "other_story"
        if text is None:  # other_story (or a sentence too uniform to shuffle)
            others = [k for k in usable if k != i] or [k for k in range(len(stories)) if k != i]
            donor = stories[rng.choice(others)]
            text = donor[min(j, len(donor) - 1)]
        if text == chosen:
            continue
        out.append({"prompt": joiner.join(story[:j]), "chosen": chosen, "rejected": text,
                    "rejected_source": source, "story": i, "subset": source})
    if not out:
        raise InputError("no preference pair could be made from these stories")
    return out


def preference_stories(n: int, sentences_per_story: int, seed: int = 0) -> list[Story]:
    """The grammar stories :func:`grammar_preference_items` draws its ``n`` items from: one
    more than ``n``, so the last item also has another story to take a wrong continuation
    from (seeded apart from ``data synth --stories``, whose stories are training text)."""
    return generate_stories(n + 1, sentences_per_story, seed=seed + 15_485_863)


def grammar_preference_items(n: int, seed: int = 0, sentences_per_story: int = 4,
                             rejected: Sequence[str] = ("other_story",)) -> list[dict]:
    """``n`` preference items from the grammar stories of :func:`preference_stories`."""
    if n < 1 or sentences_per_story < 2:
        raise InputError(f"n_items={n}, sentences_per_story={sentences_per_story}: need at "
                         f"least one item and two sentences a story (a prompt and its next)")
    stories = preference_stories(n, sentences_per_story, seed)
    texts = [[s.text for s in st.sentences] for st in stories]
    return preference_items(texts, n, seed, rejected,
                            parsed=[st.sentences for st in stories], joiner=". ")


def text_preference_items(text: str, n: int, seed: int = 0,
                          rejected: Sequence[str] = ("other_story",), *,
                          source: str = "text") -> list[dict]:
    """Up to ``n`` preference items from a user's text: documents separated by blank lines
    (or ``<|endoftext|>``), each split into sentences."""
    stories = [split_sentences(" ".join(lines)) for lines in read_documents(text, "blank")]
    if not any(len(st) >= 2 for st in stories):
        raise InputError(f"{source}: no document of two or more sentences; separate stories "
                         f"with blank lines")
    return preference_items(stories, n, seed, rejected)


def keep_diverse(items: list[dict], max_auto_bleu: float | None) -> list[dict]:
    """Items whose ``prompt + " " + chosen`` has auto-BLEU below ``max_auto_bleu`` (all when
    None), as slamkit filters SpokenSwag."""
    if max_auto_bleu is None:
        return items
    kept = [it for it in items if auto_bleu(f"{it['prompt']} {it['chosen']}") < max_auto_bleu]
    if not kept:
        raise InputError(f"max_auto_bleu={max_auto_bleu} leaves none of {len(items)} pairs; "
                         f"raise it or drop --max-auto-bleu")
    return kept


def pair_rows(out_items: list[dict], items: list[dict]) -> list[dict]:
    """``pairs.jsonl`` rows of the spoken items (see the module doc); ``out_items`` are the
    rows of ``items.jsonl``, each naming its text item by ``group``."""
    rows = []
    for it in out_items:
        src = items[it["group"]]
        prompt_text, chosen_text, rejected_text = it["texts"]
        rows.append({"id": it["id"], "prompt": it["prompt"], "chosen": it["candidates"][0],
                     "rejected": it["candidates"][1], "prompt_text": prompt_text,
                     "chosen_text": chosen_text, "rejected_text": rejected_text,
                     "rejected_source": src.get("rejected_source", "given"),
                     "speaker": it["speaker"],
                     "auto_bleu2": round(auto_bleu(f"{prompt_text} {chosen_text}"), 4),
                     "story": src.get("story", it["group"])})
    return rows
