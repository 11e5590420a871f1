"""The synthetic corpus: sentences from spokenlm's grammar spoken by espeak-ng voices.

Layout of the output folder (see docs/architecture.md)::

    wavs/<speaker>/<id>.wav     16 kHz mono PCM16
    train.jsonl valid.jsonl test.jsonl all.jsonl     audio manifests (with text, phonemes)
    speakers.json    voice, pitch, rate and split of every speaker
    vocabulary.json  word -> ARPAbet phones (every word the grammar can use)
    config.json      the options that made the corpus
    pairs.jsonl      with --pairs N: N training sentences spoken again by another training
                     voice (wavs in pairs/), each row's ``same_as`` the id it repeats

Splits are by speaker: valid and test speakers never speak in train, so every metric on
valid/test measures generalisation to new voices (12 speakers -> 9 train, 1 valid, 2 test).
Utterances go to speakers in turn, so each speaker has about the same number.
Deterministic in ``seed``; a killed run resumes (wavs already written are kept) when
called again with the same options, and manifests are written last.

Two other sources of text make a corpus of documents (an sTinyStories-style corpus):
``--text FILE`` speaks a user's text and ``--stories N`` speaks N stories of the grammar
(:func:`~spokenlm.data.grammar.generate_stories`); see :mod:`spokenlm.data.synth_documents`.
Their splits are by document *and* speaker: a document's utterances all go to one split,
spoken by that split's speakers (the same speaker split as a grammar corpus made with the
same ``--n-speakers`` and ``--seed``), so valid/test text and voices are both unseen in train.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from .. import __version__
from ..audio.constants import SAMPLE_RATE
from ..audio.load import header_fields
from ..audio.manifest import write_manifest
from ..common.errors import InputError
from ..common.files import read_json, write_json
from ..common.options import arg, command
from ..common.paths import unique_names
from ..common.progress import log
from .grammar import generate_parsed
from .phonemes import espeak_binary, phonemize_batch
from .tts import SPEAKERS, Speaker, jobs_option, speak, speak_many, speaker_table
from .vocabulary import vocabulary

__all__ = ["SynthOptions", "synth_corpus", "split_speakers", "speak", "speaker_table",
           "SPEAKERS", "Speaker"]

SPLITS = ("train", "valid", "test")
#: Options that make a corpus of grammar sentences (recorded in its config.json).
_GRAMMAR_OPTIONS = ("n_utterances", "n_speakers", "n_valid_speakers", "n_test_speakers", "seed")
#: Options that make a corpus of documents (--text, --stories), in its config.json.
_DOCUMENT_OPTIONS = ("n_speakers", "n_valid_speakers", "n_test_speakers", "seed", "split_by",
                     "max_words", "max_seconds", "valid_fraction", "test_fraction", "voice_per")
_TEXT_OPTIONS = ("documents",)
_STORY_OPTIONS = ("stories", "sentences_per_story")
#: Config entries a rerun may change and still resume (the text is checked by its hash).
_UNCHECKED = ("spokenlm_version", "text", "pairs")


@dataclass
class SynthOptions:
    output: Path = arg(Path("data/synthetic"), positional=True, help="corpus folder to write")
    n_utterances: int = arg(1200, help="number of utterances (distinct grammar sentences; "
                            "not read with --text/--stories)")
    n_speakers: int = arg(12, help="number of espeak-ng speakers (voice, pitch, rate)")
    n_valid_speakers: int = arg(1, help="held-out speakers for the valid split")
    n_test_speakers: int = arg(2, help="held-out speakers for the test split")
    seed: int = arg(0, help="seed for sentences (or stories), speaker and document splits")
    jobs: int = jobs_option()
    text: Path | None = arg(None, help="speak this UTF-8 text file instead of grammar "
                            "sentences (documents: see --documents)")
    stories: int | None = arg(None, help="speak this many grammar stories instead of single "
                              "sentences (one document per story)")
    sentences_per_story: int = arg(5, help="with --stories: sentences in each story")
    split_by: Literal["line", "sentence", "document"] = arg(
        "sentence", help="with --text/--stories: an utterance per line, per sentence, or a "
        "document's sentences packed up to the length limit")
    documents: Literal["blank", "line"] = arg(
        "blank", help="with --text: documents are separated by blank lines (or a line "
        "<|endoftext|>), or each line is one")
    max_words: int = arg(40, help="with --text/--stories: longest utterance in words; longer "
                         "text is cut at sentence, then clause, then word boundaries")
    max_seconds: float = arg(20.0, help="with --text/--stories: longest utterance in seconds "
                             "(turned into words at the slowest voice's rate)")
    valid_fraction: float = arg(0.05, help="with --text/--stories: share of documents held "
                                "out for valid (0: none)")
    test_fraction: float = arg(0.05, help="with --text/--stories: share of documents held out "
                               "for test (0: none)")
    pairs: int = arg(0, help="also speak this many training sentences again, each by another "
                     "training voice (pairs.jsonl, for `tokenize train --pairs`; grammar "
                     "corpora only)")
    voice_per: Literal["utterance", "document"] = arg(
        "utterance", help="with --text/--stories: a split's speakers take turns per "
        "utterance, or per document (one voice reads a whole story)")


def split_speakers(speakers: list[Speaker], n_valid: int, n_test: int,
                   seed: int) -> dict[str, str]:
    """speaker id -> split; valid and test speakers are drawn by ``seed`` and held out."""
    if n_valid < 1 or n_test < 1 or len(speakers) < n_valid + n_test + 1:
        raise InputError(f"n_speakers={len(speakers)} with n_valid_speakers={n_valid} and "
                         f"n_test_speakers={n_test}: need at least one of each and one train "
                         f"speaker; raise --n-speakers")
    order = [s.id for s in speakers]
    random.Random(seed).shuffle(order)
    split = {sid: "test" for sid in order[:n_test]}
    split.update({sid: "valid" for sid in order[n_test:n_test + n_valid]})
    split.update({sid: "train" for sid in order[n_test + n_valid:]})
    return {s.id: split[s.id] for s in speakers}


@command("data synth", SynthOptions)
def synth_corpus(opts: SynthOptions) -> Path:
    """Make a multi-speaker English corpus with espeak-ng: wavs, manifests per split."""
    espeak_binary()
    out = opts.output
    if opts.pairs < 0:
        raise InputError(f"--pairs {opts.pairs}: must be 0 (none) or more")
    if opts.text is not None or opts.stories is not None:
        if opts.pairs:
            raise InputError("--pairs: for grammar corpora only (their sentences); drop "
                             "--pairs or --text/--stories")
        from .synth_documents import synth_documents

        return synth_documents(opts)
    _check_grammar_only(opts)
    if opts.n_utterances < 1:
        raise InputError(f"n_utterances={opts.n_utterances}: must be at least 1")
    check_config(out, {**{k: getattr(opts, k) for k in _GRAMMAR_OPTIONS},
                       **({"pairs": opts.pairs} if opts.pairs else {})})
    speakers = speaker_table(opts.n_speakers)
    splits = split_speakers(speakers, opts.n_valid_speakers, opts.n_test_speakers, opts.seed)
    vocab = vocabulary()
    write_json(out / "vocabulary.json", vocab.lexicon())
    write_json(out / "speakers.json", [{**s.to_dict(), "split": splits[s.id]} for s in speakers])

    sentences = generate_parsed(opts.n_utterances, opts.seed)
    uids = [f"{speakers[i % len(speakers)].id}_{i:05d}" for i in range(len(sentences))]
    names, folders = unique_names(uids), unique_names(s.id for s in speakers)
    rows = []
    for i, (sent, uid) in enumerate(zip(sentences, uids)):
        spk = speakers[i % len(speakers)]
        path = out / "wavs" / folders[spk.id] / f"{names[uid]}.wav"
        rows.append({"id": uid, "path": path.resolve(),
                     "speaker": spk.id, "text": sent.text, "split": splits[spk.id],
                     "_spoken": sent.spoken, "_speaker": spk})
    add_phonemes(rows)

    manifest_rows = speak_rows(rows, out, opts.jobs)
    if opts.pairs:
        from .synth_pairs import speak_pairs

        speak_pairs(out, rows, speakers, splits, opts.pairs, opts.seed, opts.jobs)
    hours = sum(r["duration"] for r in manifest_rows) / 3600
    log(f"{out}: {len(rows)} utterances, {hours:.2f} h, {len(speakers)} speakers "
        f"({', '.join(f'{s}: {sum(v == s for v in splits.values())}' for s in SPLITS)})")
    return out


def add_phonemes(rows: list[dict]) -> None:
    """Set each row's ``phonemes`` from its ``text``, in the language of its ``_speaker``'s
    voice (one espeak-ng call per language)."""
    by_language: dict[str, list[dict]] = {}
    for row in rows:
        by_language.setdefault(row["_speaker"].language, []).append(row)
    for language, group in by_language.items():
        for row, phones in zip(group, phonemize_batch([r["text"] for r in group], language)):
            row["phonemes"] = phones


def speak_rows(rows: list[dict], out: Path, jobs: int) -> list[dict]:
    """Speak every row not yet spoken (a rerun keeps the wavs there), then write the split
    manifests and ``all.jsonl``; returns the manifest rows."""
    for stale in (out / "wavs").rglob(".*.tmp") if (out / "wavs").exists() else ():
        stale.unlink()  # left by a killed run: atomic writes never got renamed
    n_done = sum(Path(r["path"]).exists() for r in rows)
    if n_done:
        log(f"{out}: resuming, {n_done}/{len(rows)} wavs already written")
    speak_many([(r["_spoken"], r["_speaker"], Path(r["path"])) for r in rows], jobs=jobs,
               desc="synthesising speech")

    manifest_rows = [_manifest_row(r) for r in rows]
    for split in SPLITS:
        write_manifest([r for r in manifest_rows if r["split"] == split], out / f"{split}.jsonl")
    write_manifest(manifest_rows, out / "all.jsonl")
    return manifest_rows


def _manifest_row(row: dict) -> dict:
    header = header_fields(row["path"])
    return {"id": row["id"], "path": row["path"], **header,
            "duration": round(header["duration"], 4),
            "speaker": row["speaker"], "text": row["text"], "phonemes": row["phonemes"],
            "split": row["split"], **{k: row[k] for k in ("document", "position") if k in row}}


def _check_grammar_only(opts: SynthOptions) -> None:
    """Refuse document options (--split-by, ...) without --text or --stories."""
    doc_only = set(_DOCUMENT_OPTIONS + _TEXT_OPTIONS + _STORY_OPTIONS) - set(_GRAMMAR_OPTIONS)
    given = [f"--{f.name.replace('_', '-')}" for f in fields(opts)
             if f.name in doc_only and getattr(opts, f.name) != f.default]
    if given:
        raise InputError(f"{' '.join(given)}: used only with --text FILE or --stories N; pass "
                         f"one of them or drop the option")


def check_config(out: Path, config: dict) -> None:
    """Write config.json, or check a corpus already there was made with the same options."""
    config = {**config, "sample_rate": SAMPLE_RATE, "spokenlm_version": __version__}
    path = out / "config.json"
    if path.exists():
        old = read_json(path)
        diff = sorted(k for k in config if k not in _UNCHECKED and old.get(k) != config[k])
        if diff:
            raise InputError(f"{out}: holds a corpus made with other options "
                             f"({', '.join(f'{k}={old.get(k)!r}' for k in diff)}); pass another "
                             f"--output or delete the folder")
        return
    write_json(path, config)
