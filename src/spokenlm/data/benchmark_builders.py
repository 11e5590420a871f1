"""Text items -> spoken benchmark directories, and generators of text items.

Item kinds (one JSON object per line of the input file):

- minimal pair: ``{"good": "the dog runs", "bad": "the dog run", "subset": "..."}``
  (acceptability / sBLIMP-style: the LM should prefer ``good``);
- cloze: ``{"prompt": "...", "endings": ["...", "..."], "answer": 0, "subset": "..."}``
  (story cloze: the likelihood of each ending given the spoken prompt);
- word pair: ``{"word": "dog", "pseudo": ["D", "AA", "G"]}``: a spelling is spoken with
  espeak-ng's letter-to-sound rules, a list of ARPAbet phones is spoken from phonemes;
- preference pair: ``{"prompt": "...", "chosen": "...", "rejected": "...",
  "rejected_source": "..."}`` (DPO data; the folder also gets ``pairs.jsonl``, see
  :mod:`spokenlm.data.preference`).

Generators (``--generate``):

- ``acceptability``: pairs from spokenlm's grammar; subsets ``subject_verb`` (agreement
  broken with :meth:`Sentence.violate`, also across relative clauses),
  ``det_noun`` ("every dogs"), ``article`` ("a apple" / "an dog") and ``word_order``
  (two adjacent words swapped). Each measures sensitivity to one kind of syntax.
- ``story_cloze``: three sentences about one subject; the first two are the spoken
  prompt. Subset ``tsc`` (topic, as TWIST's tStoryCloze): the wrong ending is another
  story's last sentence, so picking the right one needs only the topic. Subset ``ssc``
  (entity continuity, harder, in the spirit of sStoryCloze): the wrong ending is the real
  one with its subject replaced by another subject of the same number, so both endings
  are equally grammatical and only keeping track of who the story is about tells them
  apart.
- ``spot_the_word``: real words and Wuggy-style pseudo-words (phonemes).
- ``preference``: SpokenSwag-style prompt / chosen / rejected continuations of grammar
  stories (or of the stories of ``--text FILE``), spoken by the corpus's train voices; see
  :mod:`spokenlm.data.preference`.

The output is the directory :class:`spokenlm.eval.benchmark.Benchmark` reads; with
``--voices-per-item k`` every item is spoken by k voices (k items sharing a ``group``),
which word ABX (``spokenlm eval abx --benchmark``) needs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path


from ..audio.load import header_fields
from ..audio.manifest import write_manifest
from ..common.errors import InputError
from ..common.files import read_json, read_jsonl, write_json, write_jsonl
from ..common.options import arg, command
from ..common.paths import store_path, stored_fields, unique_names
from ..common.progress import log
from .grammar import Sentence, generate_parsed
from .pseudowords import arpabet_to_espeak, make_pseudowords
from .tts import Speaker, jobs_option, speak_many, speaker_table

SUBSETS = ("subject_verb", "det_noun", "article", "word_order")


def _bad_version(s: Sentence, subset: str, rng: random.Random) -> str | None:
    """An ungrammatical variant of ``s`` of kind ``subset``, or None if it has none."""
    toks = list(s.tokens)
    if subset in ("subject_verb", "det_noun"):
        kind = "subject-verb" if subset == "subject_verb" else "det-noun"
        agr = [a for a in s.agreements if a.kind == kind]
        return s.violate(rng.choice(agr)).text if agr else None
    if subset == "article":
        idx = [i for i, t in enumerate(toks) if t in ("a", "an")]
        if not idx:
            return None
        i = rng.choice(idx)
        toks[i] = "an" if toks[i] == "a" else "a"
        return " ".join(toks)
    if subset == "word_order":
        return s.swap_adjacent(rng)
    raise ValueError(f"unknown subset {subset!r}; choose from {SUBSETS}")


def acceptability_pairs(n: int, seed: int = 0, subsets: tuple[str, ...] = SUBSETS) -> list[dict]:
    """``n`` minimal pairs ``{"good", "bad", "subset"}``, subsets in turn, deterministic.

    Candidate sentences come from a pool that grows (in seeded chunks) until every subset
    has found its sentences, so rare phenomena (a/an) do not run out.
    """
    rng = random.Random(seed)
    chunk = max(6 * n, 300)
    pool: list[Sentence] = []
    out, used = [], set()
    for k in range(n):
        subset = subsets[k % len(subsets)]
        found, start = False, 0
        while not found:
            if start >= len(pool):
                if len(pool) >= 50 * chunk:
                    raise InputError(f"could not make {n} acceptability pairs of subset "
                                     f"{subset!r} from {len(pool)} sentences; ask for fewer")
                pool += generate_parsed(chunk, seed=seed + 7919 + 104_729 * (len(pool) // chunk))
            for s in pool[start:]:
                start += 1
                if s.text in used:
                    continue
                bad = _bad_version(s, subset, rng)
                if bad is not None and bad != s.text:
                    used.add(s.text)
                    out.append({"good": s.text, "bad": bad, "subset": subset})
                    found = True
                    break
    return out


def _subject(s: Sentence) -> tuple[int, str] | None:
    """(head index, feature) of a simple clause's subject, when it agrees with a verb."""
    if s.shape not in ("intransitive", "transitive", "copula"):
        return None
    sv = [a for a in s.agreements if a.kind == "subject-verb"]
    if not sv or s.tokens[0] == "i":
        return None
    head = min(a.controller for a in sv)
    span = s.tokens[:head + 1]
    if "that" in span or "who" in span or any(a.target <= head for a in sv):
        return None  # the first agreeing noun is inside a clause: not the main subject
    feature = next(a.feature for a in sv if a.controller == head)
    return head, feature


def _with_subject(s: Sentence, head: int, subject: str) -> str:
    return " ".join([subject, *s.tokens[head + 1:]])


def story_cloze_items(n: int, seed: int = 0) -> list[dict]:
    """``n`` story cloze items (half ``tsc``, half ``ssc``); see the module docstring."""
    rng = random.Random(seed)
    pool = [(s, *sub) for s in generate_parsed(max(12 * n, 60), seed=seed + 104729)
            if (sub := _subject(s)) is not None]
    by_feature: dict[str, list[tuple[Sentence, int]]] = {}
    subjects: dict[str, list[str]] = {}
    for s, head, feature in pool:
        by_feature.setdefault(feature, []).append((s, head))
        subj = " ".join(s.tokens[:head + 1])
        if subj not in subjects.setdefault(feature, []):
            subjects[feature].append(subj)
    stories = []
    for k in range(n + 1):
        feature = rng.choice(sorted(f for f in by_feature if len(subjects[f]) > 1))
        subject = rng.choice(subjects[feature])
        sents = rng.sample(by_feature[feature], 3)
        stories.append((subject, feature, [_with_subject(s, h, subject) for s, h in sents],
                        sents[2]))
    out = []
    for k in range(n):
        subject, feature, texts, (last, head) = stories[k]
        if k % 2 == 0:
            wrong = stories[k + 1][2][2]
            subset = "tsc"
        else:
            other = rng.choice([x for x in subjects[feature] if x != subject])
            wrong = _with_subject(last, head, other)
            subset = "ssc"
        answer = rng.randrange(2)
        endings = [wrong, wrong]
        endings[answer] = texts[2]
        out.append({"prompt": ". ".join(texts[:2]), "endings": endings, "answer": answer,
                    "subset": subset})
    return out


def word_pair_items(lexicon: dict[str, list[str]], n: int, seed: int = 0) -> list[dict]:
    """``n`` word / pseudo-word items from ``{word: ARPAbet phones}``."""
    return [{"word": wp, "pseudo": pp, "text": w, "subset": f"{len(wp)}_phones"}
            for w, wp, pp in make_pseudowords(lexicon, n, seed)]


def _kind(item: dict) -> str:
    if "prompt" in item and "chosen" in item and "rejected" in item:
        return "preference"
    if "good" in item and "bad" in item:
        return "acceptability"
    if "prompt" in item and "endings" in item:
        return "cloze"
    if "word" in item and "pseudo" in item:
        return "spot_the_word"
    raise InputError(f"item {item}: needs good/bad, prompt/endings/answer, word/pseudo, or "
                     f"prompt/chosen/rejected")


def _tts_input(value: str | list[str], sentence: bool) -> tuple[str, str]:
    """(espeak-ng input, transcript) of a spelling, a sentence or a list of phones."""
    if isinstance(value, list):
        return arpabet_to_espeak(value), " ".join(value)
    text = value.strip()
    return (text if not sentence or text[-1:] in ".?!" else text + "."), text


def build_spoken_benchmark(items: list[dict], output: Path, speakers: list[Speaker], *,
                           voices_per_item: int = 1, jobs: int = 2, source: str = "") -> Path:
    """Speak text items into a benchmark directory (wavs/, manifest, items, config)."""
    if not items:
        raise InputError("no items to speak")
    kinds = {_kind(it) for it in items}
    if len(kinds) > 1:
        raise InputError(f"items mix kinds {sorted(kinds)}; build one benchmark per kind")
    kind = kinds.pop()
    if voices_per_item > len(speakers):
        raise InputError(f"voices_per_item={voices_per_item} but only {len(speakers)} voices")
    output = Path(output)
    jobs_, audio, out_items = [], [], []
    for i, item in enumerate(items):
        roles = ({"good": item["good"], "bad": item["bad"]} if kind == "acceptability" else
                 {"word": item["word"], "pseudo": item["pseudo"]} if kind == "spot_the_word"
                 else {r: item[r] for r in ("prompt", "chosen", "rejected")}
                 if kind == "preference"
                 else {"prompt": item["prompt"],
                       **{f"end{j}": e for j, e in enumerate(item["endings"])}})
        for v in range(voices_per_item):
            spk = speakers[(i + v) % len(speakers)]
            ids = {}
            for role, value in roles.items():
                aid = f"{i:05d}_{spk.id}_{role}"
                tts, text = _tts_input(value, sentence=kind != "spot_the_word")
                jobs_.append((tts, spk, aid))
                row = {"id": aid, "speaker": spk.id, "text": text}
                if isinstance(value, list):
                    row["phonemes"] = " ".join(value)
                audio.append(row)
                ids[role] = aid
            cands = [a for r, a in ids.items() if r != "prompt"]
            out_items.append({"id": f"{i:05d}_{spk.id}", "group": i,
                              "subset": item.get("subset", "all"), "candidates": cands,
                              "answer": int(item.get("answer", 0)),
                              "prompt": ids.get("prompt"), "speaker": spk.id,
                              "texts": [a["text"] for a in audio[-len(roles):]]})
    names = unique_names(row["id"] for row in audio)  # speaker ids come from speakers.json
    for row in audio:
        row["path"] = (output / "wavs" / f"{names[row['id']]}.wav").resolve()
    paths = {row["id"]: row["path"] for row in audio}
    speak_many([(tts, spk, paths[aid]) for tts, spk, aid in jobs_], jobs=jobs,
               desc=f"speaking {kind} items")
    for row in audio:
        row.update(header_fields(row["path"]))
    write_manifest(audio, output / "manifest.jsonl")
    if kind == "preference":
        from .preference import pair_rows

        write_jsonl(output / "pairs.jsonl", pair_rows(out_items, items))
    write_jsonl(output / "items.jsonl", out_items)
    write_json(output / "config.json", {"kind": kind, "source": source,
                                        "speakers": [s.id for s in speakers],
                                        "voices_per_item": voices_per_item})
    log(f"{output}: {len(out_items)} {kind} items, {len(audio)} wavs")
    return output


@dataclass
class BenchBuildOptions:
    items: Path | None = arg(None, positional=True, help="text items JSONL (see --help of "
                             "spokenlm.data.benchmark_builders); or use --generate")
    generate: str | None = arg(None, help="built-in items: acceptability, story_cloze, "
                                          "spot_the_word, preference (DPO pairs)")
    output: Path = arg(Path("bench/custom"), help="benchmark directory to write")
    n_items: int = arg(200, help="items to generate (with --generate)")
    corpus: Path | None = arg(None, help="synthetic corpus dir: its --split speakers speak "
                                         "(and its vocabulary feeds spot_the_word)")
    split: str | None = arg(None, help="speakers of this corpus split (default: test; train "
                            "for --generate preference, which is training data)")
    n_voices: int = arg(4, help="without --corpus: voices from the built-in table")
    voices_per_item: int = arg(1, help="voices speaking each item (>1 for word ABX)")
    seed: int = arg(0, help="seed for item generation")
    jobs: int = jobs_option()
    text: Path | None = arg(None, help="--generate preference: stories from this UTF-8 text "
                            "(separated by blank lines) instead of the grammar's")
    sentences_per_story: int = arg(4, help="--generate preference: sentences of each grammar "
                                   "story (the prompt is the first 1..K-1)")
    rejected: list[str] = arg(["other_story"], help="--generate preference: where rejected "
                              "continuations come from, in turn: other_story, shuffled, "
                              "ungrammatical")
    max_auto_bleu: float | None = arg(None, help="--generate preference: leave out pairs whose "
                                      "prompt+chosen auto-BLEU (bigrams) is at least this "
                                      "(Slam: 0.3)")


@command("data bench build", BenchBuildOptions)
def build_benchmark(opts: BenchBuildOptions) -> Path:
    """Speak text minimal pairs, cloze items, word or preference pairs into a benchmark dir."""
    if opts.text is not None and (opts.generate != "preference" or opts.items is not None):
        raise InputError("--text is read by --generate preference only (without an items "
                         "file); for other items pass a JSONL file")
    if opts.items is not None:
        items = read_jsonl(opts.items)
        source = store_path(opts.items, opts.output / "config.json")
    elif opts.generate == "acceptability":
        items, source = acceptability_pairs(opts.n_items, opts.seed), "grammar"
    elif opts.generate == "story_cloze":
        items, source = story_cloze_items(opts.n_items, opts.seed), "grammar"
    elif opts.generate == "spot_the_word":
        from .vocabulary import vocabulary

        lexicon = (read_json(opts.corpus / "vocabulary.json") if opts.corpus is not None
                   else vocabulary().lexicon())
        items, source = word_pair_items(lexicon, opts.n_items, opts.seed), "pseudowords"
    elif opts.generate == "preference":
        items, source = _preference_items(opts)
    else:
        raise InputError("pass a text items JSONL or --generate acceptability|story_cloze|"
                         f"spot_the_word|preference (got --generate {opts.generate!r})")
    if opts.max_auto_bleu is not None:
        from .preference import keep_diverse

        if any(_kind(it) != "preference" for it in items):
            raise InputError("--max-auto-bleu filters preference pairs only")
        items = keep_diverse(items, opts.max_auto_bleu)
    preference = bool(items) and {_kind(it) for it in items} == {"preference"}
    opts = replace(opts, split=opts.split or ("train" if preference else "test"))
    if opts.corpus is not None:
        from .spoken_benchmark import _speakers

        speakers = _speakers(opts.corpus, opts.split)
    else:
        speakers = speaker_table(opts.n_voices)
    out = build_spoken_benchmark(items, opts.output, speakers,
                                 voices_per_item=opts.voices_per_item, jobs=opts.jobs,
                                 source=source)
    cfg = read_json(out / "config.json")
    write_json(out / "config.json", {**cfg, "options": stored_fields(opts, out / "config.json")})
    return out


def _preference_items(opts: BenchBuildOptions) -> tuple[list[dict], str]:
    """Preference text items of ``--generate preference`` and their source."""
    from .preference import grammar_preference_items, text_preference_items
    from .text_split import read_text

    if opts.text is not None:
        items = text_preference_items(read_text(opts.text), opts.n_items, opts.seed,
                                      opts.rejected, source=str(opts.text))
        return items, store_path(opts.text, opts.output / "config.json")
    return grammar_preference_items(opts.n_items, opts.seed, opts.sentences_per_story,
                                    opts.rejected), "grammar stories"
