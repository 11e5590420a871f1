"""Spoken benchmarks built with espeak-ng: the spot-the-word (sWUGGY-style) builder.

A benchmark directory is the format read by :mod:`spokenlm.eval.benchmark`: ``manifest.jsonl``
(the wavs), ``items.jsonl`` (which candidates compete and which is right) and
``config.json``. Real words and pseudo-words are both spoken from phonemes through the same
espeak-ng path, so the only difference between the two sides of a pair is the phoneme
sequence, never the TTS front-end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..audio.load import header_fields
from ..audio.manifest import write_manifest
from ..common.errors import InputError
from ..common.files import read_json, write_json, write_jsonl
from ..common.options import arg, command
from ..common.paths import stored_fields, unique_names
from ..common.progress import log
from .pseudowords import arpabet_to_espeak, make_pseudowords
from .tts import Speaker, jobs_option, speak_many


@dataclass
class SpotTheWordBuildOptions:
    corpus: Path = arg(positional=True, help="synthetic corpus dir (vocabulary.json, speakers.json)")
    output: Path = arg(Path("bench/spot_the_word"), help="benchmark directory to write")
    n_pairs: int = arg(200, help="word / pseudo-word pairs")
    split: str = arg("test", help="speakers of this corpus split speak the pairs (held-out voices)")
    min_phones: int = arg(3, help="shortest word (in phonemes) to use")
    seed: int = arg(0, help="seed for word choice and pseudo-word generation")
    jobs: int = jobs_option()


def _speakers(corpus: Path, split: str) -> list[Speaker]:
    rows = read_json(corpus / "speakers.json")
    speakers = [Speaker(r["id"], r["voice"], r["pitch"], r["rate"], r.get("gender", ""))
                for r in rows if r.get("split") == split]
    if not speakers:
        raise InputError(f"{corpus / 'speakers.json'}: no speaker of split {split!r}; "
                         f"pass --split with one of {sorted({r.get('split') for r in rows})}")
    return speakers


@command("data bench spot-the-word", SpotTheWordBuildOptions)
def build_spot_the_word(opts: SpotTheWordBuildOptions) -> Path:
    """Speak real words of the corpus vocabulary and matched pseudo-words with held-out voices."""
    lexicon: dict[str, list[str]] = read_json(opts.corpus / "vocabulary.json")
    speakers = _speakers(opts.corpus, opts.split)
    triples = make_pseudowords(lexicon, opts.n_pairs, opts.seed, min_phones=opts.min_phones)
    wav_dir = opts.output / "wavs"
    jobs, audio, items = [], [], []
    for i, (word, word_phones, pseudo_phones) in enumerate(triples):
        spk = speakers[i % len(speakers)]
        ids = []
        for kind, text, phones in (("word", word, word_phones),
                                   ("pseudo", "", pseudo_phones)):
            aid = f"{i:05d}_{kind}_{spk.id}"
            jobs.append((arpabet_to_espeak(phones), spk, aid))
            audio.append({"id": aid, "speaker": spk.id,
                          "text": text or None, "phonemes": " ".join(phones)})
            ids.append(aid)
        items.append({"id": f"{i:05d}", "subset": f"{len(word_phones)}_phones",
                      "candidates": ids, "answer": 0, "prompt": None,
                      "texts": [word, " ".join(pseudo_phones)], "speaker": spk.id})
    names = unique_names(row["id"] for row in audio)  # speaker ids come from speakers.json
    for row in audio:
        row["path"] = (wav_dir / f"{names[row['id']]}.wav").resolve()
    paths = {row["id"]: row["path"] for row in audio}
    speak_many([(tts, spk, paths[aid]) for tts, spk, aid in jobs], jobs=opts.jobs,
               desc="speaking word pairs")
    for row in audio:
        row.update(header_fields(row["path"]))
    write_manifest(audio, opts.output / "manifest.jsonl")
    write_jsonl(opts.output / "items.jsonl", items)
    write_json(opts.output / "config.json", {"kind": "spot_the_word",
                                             "options": stored_fields(opts, opts.output
                                                                      / "config.json"),
                                             "speakers": [s.id for s in speakers]})
    log(f"{opts.output}: {len(items)} word/pseudo-word pairs spoken by {len(speakers)} voices")
    return opts.output
