"""A spoken corpus of documents: a user's text (``data synth --text``) or grammar stories
(``data synth --stories``), spoken by the built-in voices.

Layout of the output folder (as a grammar corpus, see :mod:`spokenlm.data.synth`)::

    wavs/<speaker>/<id>.wav     16 kHz mono PCM16; id = <doc|story><document>_<position>
    train.jsonl valid.jsonl test.jsonl all.jsonl     rows: id, path, duration, sample_rate,
                     num_channels, speaker, text, phonemes, split, document, position
    speakers.json    voice, pitch, rate and split of every speaker
    vocabulary.json  word -> ARPAbet phones (the text's words that CMUdict knows; for
                     stories the grammar's whole vocabulary)
    skipped.jsonl    utterances left out and why (only when there are any)
    config.json      the options that made the corpus (and the text file's sha256)

``document`` is the index of the document in the text (or of the story), ``position`` the
index of the utterance in its document, so a reader can put a story back together. Documents
are split train/valid/test by ``valid_fraction``/``test_fraction`` (seeded), and each split's
documents are spoken by that split's speakers only. ``text`` is the utterance as written
(stories: lowercase words without punctuation, as in a grammar corpus); the TTS reads it
with its punctuation, for intonation.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from pathlib import Path

from ..common.errors import InputError
from ..common.files import write_json, write_jsonl
from ..common.paths import store_path, unique_names
from ..common.progress import log
from .grammar import generate_stories
from .phonemes import cmudict_phonemes, phonemize_batch
from .synth import (_DOCUMENT_OPTIONS, _STORY_OPTIONS, _TEXT_OPTIONS, SPLITS, SynthOptions,
                    check_config, speak_rows, split_speakers)
from .text_split import read_documents, read_text, segment, speakable, words_for_seconds
from .tts import PAD_S, Speaker, speaker_table
from .vocabulary import vocabulary

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def split_documents(n: int, valid_fraction: float, test_fraction: float, seed: int,
                    source: str) -> list[str]:
    """The split of each of ``n`` documents: ``round(fraction * n)`` (at least one when the
    fraction is above 0) for valid and test, drawn by ``seed``; the rest train."""
    for name, f in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0 <= f < 1:
            raise InputError(f"{name}={f}: must be in [0, 1)")
    n_test = max(1, round(test_fraction * n)) if test_fraction > 0 else 0
    n_valid = max(1, round(valid_fraction * n)) if valid_fraction > 0 else 0
    if n - n_test - n_valid < 1:
        raise InputError(f"{source}: {n} document(s) cannot give {n_valid} valid, {n_test} "
                         f"test and at least one train document; add documents (separated "
                         f"by blank lines, or --documents line) or pass --valid-fraction 0 "
                         f"--test-fraction 0")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    split = ["train"] * n
    for i in order[:n_test]:
        split[i] = "test"
    for i in order[n_test:n_test + n_valid]:
        split[i] = "valid"
    return split


def synth_documents(opts: SynthOptions) -> Path:
    """``data synth`` with ``--text`` or ``--stories``; see the module doc."""
    if opts.text is not None and opts.stories is not None:
        raise InputError("--text and --stories both given; make one corpus from each")
    out = opts.output
    speakers = speaker_table(opts.n_speakers)
    spk_split = split_speakers(speakers, opts.n_valid_speakers, opts.n_test_speakers, opts.seed)
    if opts.max_words < 1 or opts.max_seconds <= 2 * PAD_S:
        raise InputError(f"max_words={opts.max_words}, max_seconds={opts.max_seconds}: need "
                         f"at least 1 word and more than {2 * PAD_S} s")
    limit = min(opts.max_words, words_for_seconds(opts.max_seconds,
                                                  min(s.rate for s in speakers), PAD_S))
    config = {k: getattr(opts, k) for k in _DOCUMENT_OPTIONS}
    docs, source, prefix = _documents(opts, limit, config)
    skipped = [{"document": d, "text": u, "reason": "nothing to speak (no letter or digit)"}
               for d, doc in enumerate(docs) for u, _ in doc if not speakable(u)]
    kept = [(d, [(u, t) for u, t in doc if speakable(u)]) for d, doc in enumerate(docs)]
    kept = [(d, doc) for d, doc in kept if doc]
    if not kept:
        raise InputError(f"{source}: no text to speak; pass a file with words in it")
    doc_split = split_documents(len(kept), opts.valid_fraction, opts.test_fraction, opts.seed,
                                source)
    rows = _rows(kept, doc_split, speakers, spk_split, opts, prefix)
    skipped += _add_phonemes(rows)
    rows = [r for r in rows if "phonemes" in r]
    if not rows:
        raise InputError(f"{source}: espeak-ng found nothing to speak in any utterance")
    check_config(out, config)
    write_json(out / "vocabulary.json", vocabulary().lexicon() if opts.stories is not None
               else _lexicon(r["text"] for r in rows))
    write_json(out / "speakers.json", [{**s.to_dict(), "split": spk_split[s.id]}
                                       for s in speakers])
    if skipped:
        write_jsonl(out / "skipped.jsonl", skipped)
        log(f"{out}: {len(skipped)} utterance(s) left out, listed in skipped.jsonl")
    manifest_rows = speak_rows(rows, out, opts.jobs)
    hours = sum(r["duration"] for r in manifest_rows) / 3600
    counts = {s: sum(v == s for v in doc_split) for s in SPLITS}
    log(f"{out}: {len(rows)} utterances from {len(kept)} documents "
        f"({', '.join(f'{s}: {n}' for s, n in counts.items())}), {hours:.2f} h, "
        f"{len(speakers)} speakers, at most {limit} words an utterance")
    return out


def _documents(opts: SynthOptions, limit: int, config: dict
               ) -> tuple[list[list[tuple[str, str]]], str, str]:
    """The documents as lists of (text to speak, transcript), where they come from (for
    messages), and the id prefix; records the source's options in ``config``."""
    if opts.text is not None:
        raw = read_text(opts.text)
        config.update({k: getattr(opts, k) for k in _TEXT_OPTIONS},
                      text=store_path(opts.text, opts.output / "config.json"),
                      text_sha256=hashlib.sha256(raw.encode()).hexdigest())
        docs = [[(u, u) for u in segment(lines, opts.split_by, limit)]
                for lines in read_documents(raw, opts.documents)]
        return docs, str(opts.text), "doc"
    if opts.stories < 1 or opts.sentences_per_story < 1:
        raise InputError(f"--stories {opts.stories} --sentences-per-story "
                         f"{opts.sentences_per_story}: both must be at least 1")
    config.update({k: getattr(opts, k) for k in _STORY_OPTIONS})
    stories = generate_stories(opts.stories, opts.sentences_per_story, opts.seed)
    docs = [[(u, " ".join(u.replace(".", " ").split()))  # transcripts as a grammar corpus's
             for u in segment([s.spoken for s in st.sentences], opts.split_by, limit,
                              sentences=True)] for st in stories]
    return docs, f"--stories {opts.stories}", "story"


def _rows(docs: list[tuple[int, list[tuple[str, str]]]], doc_split: list[str],
          speakers: list[Speaker], spk_split: dict[str, str], opts: SynthOptions,
          prefix: str) -> list[dict]:
    """A row per utterance; each split's speakers take turns (per utterance or document)."""
    voices = {s: [spk for spk in speakers if spk_split[spk.id] == s] for s in SPLITS}
    turn = dict.fromkeys(SPLITS, 0)
    uids = [f"{prefix}{d:05d}_{k:03d}" for d, doc in docs for k in range(len(doc))]
    names, folders = unique_names(uids), unique_names(s.id for s in speakers)
    rows, it = [], iter(uids)
    for (d, doc), split in zip(docs, doc_split):
        for k, (spoken, text) in enumerate(doc):
            spk = voices[split][turn[split] % len(voices[split])]
            if opts.voice_per == "utterance":
                turn[split] += 1
            uid = next(it)
            path = opts.output / "wavs" / folders[spk.id] / f"{names[uid]}.wav"
            rows.append({"id": uid, "path": path.resolve(), "speaker": spk.id,
                         "text": text, "split": split, "document": d, "position": k,
                         "_spoken": spoken.replace("[[", "[ ["), "_speaker": spk})
        if opts.voice_per == "document":
            turn[split] += 1
    return rows


def _add_phonemes(rows: list[dict]) -> list[dict]:
    """Set each row's ``phonemes`` (espeak-ng, by voice language); a row espeak-ng finds
    nothing to say in is left without and returned as a skip record."""
    skipped = []
    by_language: dict[str, list[dict]] = {}
    for row in rows:
        by_language.setdefault(row["_speaker"].language, []).append(row)
    for language, group in by_language.items():
        try:
            phones = phonemize_batch([r["text"] for r in group], language)
        except InputError:  # one bad utterance: redo them one by one, leaving it out
            phones = []
            for r in group:
                try:
                    phones.append(phonemize_batch([r["text"]], language)[0])
                except InputError as e:
                    phones.append(None)
                    skipped.append({"document": r["document"], "text": r["text"],
                                    "reason": str(e)})
        for row, p in zip(group, phones):
            if p is not None:
                row["phonemes"] = p
    return skipped


def _lexicon(texts: Iterable[str]) -> dict[str, list[str]]:
    """word -> ARPAbet phones for the words of ``texts`` that CMUdict knows, sorted."""
    words = {w for t in texts for w in _WORD.findall(t.lower())}
    return {w: p for w in sorted(words) if (p := cmudict_phonemes(w)) is not None}
