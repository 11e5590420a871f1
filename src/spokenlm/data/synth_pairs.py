"""Same-content pairs for a synthetic corpus: training sentences spoken again by another
training voice (``spokenlm data synth --pairs N``), for the correspondence autoencoder of
``spokenlm tokenize train --pairs`` (:mod:`spokenlm.tokenize.correspondence`).

Writes ``pairs.jsonl``, an audio manifest whose rows are the new recordings (wavs under
``pairs/<speaker>/``) with ``same_as``: the id of the ``train.jsonl`` row they repeat. Only
training voices speak, so valid and test voices stay unheard by every stage. The draw is
seeded separately from the corpus, so adding pairs to a corpus leaves it unchanged.
"""

from __future__ import annotations

import random
from pathlib import Path

from ..audio.manifest import write_manifest
from ..common.errors import InputError
from ..common.paths import unique_names
from ..common.progress import log
from .tts import Speaker, speak_many

PAIRS_NAME = "pairs.jsonl"


def speak_pairs(out: Path, rows: list[dict], speakers: list[Speaker], splits: dict[str, str],
                n_pairs: int, seed: int, jobs: int) -> Path:
    """Speak ``n_pairs`` training rows (``rows`` as :func:`~spokenlm.data.synth.synth_corpus`
    builds them: ``_spoken`` text, ``speaker``, ``split``) again, each with a training voice
    other than its own drawn at random; write ``out/pairs.jsonl``."""
    from .synth import _manifest_row, add_phonemes

    voices = [s for s in speakers if splits[s.id] == "train"]
    if len(voices) < 2:
        raise InputError(f"--pairs {n_pairs}: needs at least 2 training speakers, the corpus "
                         f"has {len(voices)}; raise --n-speakers or pass --pairs 0")
    train = [r for r in rows if r["split"] == "train"]
    rng = random.Random(f"pairs-{seed}")
    chosen = sorted(rng.sample(range(len(train)), min(n_pairs, len(train))))
    folders = unique_names(s.id for s in voices)
    pairs = []
    for i in chosen:
        row = train[i]
        voice = rng.choice([s for s in voices if s.id != row["speaker"]])
        uid = f"{row['id']}_as_{voice.id}"
        pairs.append({"id": uid, "path": (out / "pairs" / folders[voice.id] / f"{uid}.wav").resolve(),
                      "speaker": voice.id, "text": row["text"], "split": "train",
                      "same_as": row["id"], "_spoken": row["_spoken"], "_speaker": voice})
    add_phonemes(pairs)
    speak_many([(p["_spoken"], p["_speaker"], Path(p["path"])) for p in pairs], jobs=jobs,
               desc="synthesising pairs")
    path = out / PAIRS_NAME
    write_manifest([{**_manifest_row(p), "same_as": p["same_as"]} for p in pairs], path)
    log(f"{path}: {len(pairs)} training sentences spoken again by another training voice")
    return path
