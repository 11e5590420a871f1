"""Pseudo-words for the spot-the-word (sWUGGY) metric, in the spirit of Wuggy.

Each real word (ARPAbet phones) is split into syllables of onset, nucleus and coda
(maximal onset principle). A pseudo-word replaces some of these segments with segments of
the same type and length seen at the same place (first / middle / last syllable) in the
lexicon, keeping only onset-nucleus and nucleus-coda pairs the lexicon has, so it has the
word's phoneme count, syllable count and English phonotactics. Anything that is a CMUdict
pronunciation is rejected.

:func:`arpabet_to_espeak` writes phones as espeak-ng phoneme input (``[[d|'A:|g]]``), so a
word and its pseudo-word are spoken the same way, from phonemes.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from ..common.errors import InputError
from .phonemes import cmudict_pronunciations, strip_stress

VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
#: Consonant clusters English allows at the start of a syllable (besides single consonants).
ONSETS = frozenset(tuple(o.split()) for o in """P R|P L|B R|B L|T R|D R|K R|K L|G R|G L|F R
|F L|TH R|SH R|S P|S T|S K|S M|S N|S L|S W|T W|D W|K W|G W|P Y|B Y|F Y|K Y|M Y|HH Y|V Y
|TH W|S P R|S P L|S T R|S K R|S K W|S K Y|S P Y""".replace("\n", "").split("|"))
#: ARPAbet -> espeak-ng (English) phoneme mnemonics; AH and ER depend on stress.
ESPEAK = {
    "AA": "A:", "AE": "a", "AH": "V", "AO": "O:", "AW": "aU", "AY": "aI", "EH": "E",
    "ER": "3:", "EY": "eI", "IH": "I", "IY": "i:", "OW": "oU", "OY": "OI", "UH": "U",
    "UW": "u:", "B": "b", "CH": "tS", "D": "d", "DH": "D", "F": "f", "G": "g", "HH": "h",
    "JH": "dZ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "N", "P": "p", "R": "r",
    "S": "s", "SH": "S", "T": "t", "TH": "T", "V": "v", "W": "w", "Y": "j", "Z": "z",
    "ZH": "Z",
}
_UNSTRESSED = {"AH": "@", "ER": "3"}

Syllable = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # onset, nucleus, coda
_TYPES = ("onset", "nucleus", "coda")


def syllabify(phones: Sequence[str]) -> list[Syllable]:
    """Split ARPAbet phones (stress optional) into (onset, nucleus, coda) syllables."""
    phones = strip_stress(phones)
    vowels = [i for i, p in enumerate(phones) if p in VOWELS]
    if not vowels:
        raise InputError(f"phones {' '.join(phones)!r} have no vowel; cannot syllabify")
    starts = [0]
    for prev, nxt in zip(vowels, vowels[1:]):
        cluster = phones[prev + 1:nxt]
        split = len(cluster)  # the longest legal onset goes to the next syllable
        for k in range(len(cluster)):
            tail = tuple(cluster[k:])
            if len(tail) == 1 and tail[0] != "NG" or tail in ONSETS:
                split = k
                break
        starts.append(prev + 1 + split)
    bounds = starts + [len(phones)]
    out = []
    for (a, b), v in zip(zip(bounds, bounds[1:]), vowels):
        out.append((tuple(phones[a:v]), (phones[v],), tuple(phones[v + 1:b])))
    return out


def _place(j: int, n: int) -> str:
    return "mono" if n == 1 else "first" if j == 0 else "last" if j == n - 1 else "middle"


class _Stats:
    """Segments by (type, place, length) and the onset-nucleus / nucleus-coda pairs seen."""

    def __init__(self, lexicon: Iterable[Sequence[str]]) -> None:
        self.segments: dict[tuple[str, str, int], set[tuple[str, ...]]] = defaultdict(set)
        self.pairs: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
        for phones in lexicon:
            try:
                sylls = syllabify(phones)
            except InputError:
                continue
            for j, syl in enumerate(sylls):
                place = _place(j, len(sylls))
                for kind, seg in zip(_TYPES, syl):
                    self.segments[(kind, place, len(seg))].add(seg)
                self.pairs.add((syl[0], syl[1]))
                self.pairs.add((syl[1], syl[2]))

    def legal(self, sylls: list[Syllable]) -> bool:
        return all((s[0], s[1]) in self.pairs and (s[1], s[2]) in self.pairs for s in sylls)


def _candidate(sylls: list[Syllable], stats: _Stats, rng: random.Random) -> list[Syllable]:
    """Replace about a third of the segments (at least one) by same-shape lexicon segments."""
    slots = [(j, t) for j in range(len(sylls)) for t in range(3)]
    n_change = max(1, math.ceil(len(slots) / 3))
    out = [list(s) for s in sylls]
    for j, t in rng.sample(slots, n_change):
        seg = sylls[j][t]
        pool = sorted(stats.segments.get((_TYPES[t], _place(j, len(sylls)), len(seg)), ()))
        pool = [s for s in pool if s != seg]
        if pool:
            out[j][t] = rng.choice(pool)
    return [tuple(s) for s in out]  # type: ignore[misc]


def pseudoword(phones: Sequence[str], stats: _Stats, rng: random.Random,
               forbidden: set[tuple[str, ...]], tries: int = 200) -> list[str] | None:
    """One pseudo-word for ``phones``, or None when none was found in ``tries``."""
    sylls = syllabify(phones)
    for attempt in range(tries):
        cand = _candidate(sylls, stats, rng)
        flat = tuple(p for syl in cand for seg in syl for p in seg)
        if flat in forbidden or (attempt < tries // 2 and not stats.legal(cand)):
            continue
        return list(flat)
    return None


def make_pseudowords(words_with_phonemes: Mapping[str, Sequence[str]] | Iterable[
                         tuple[str, Sequence[str]]], n: int, seed: int = 0, *,
                     lexicon: Iterable[Sequence[str]] | None = None,
                     min_phones: int = 3) -> list[tuple[str, list[str], list[str]]]:
    """``n`` (word, word_phones, pseudo_phones) triples, deterministic in ``seed``.

    Words are drawn from ``words_with_phonemes`` (those with at least ``min_phones``
    phones); segment statistics come from ``lexicon`` (default: the same words). Pseudo
    phones have the word's length and syllable count, and are neither a CMUdict word nor
    another pseudo-word.
    """
    items = dict(words_with_phonemes)
    words = sorted(w for w, p in items.items() if len(p) >= min_phones
                   and any(strip_stress([x])[0] in VOWELS for x in p))
    if n > len(words):
        raise InputError(f"asked for {n} pseudo-words but only {len(words)} words have "
                         f"{min_phones}+ phones; pass more words or a smaller n")
    stats = _Stats(lexicon if lexicon is not None else items.values())
    forbidden = set(cmudict_pronunciations()) | {tuple(strip_stress(p)) for p in items.values()}
    rng = random.Random(seed)
    rng.shuffle(words)
    out = []
    for word in words:
        phones = strip_stress(items[word])
        pseudo = pseudoword(phones, stats, rng, forbidden)
        if pseudo is None:
            continue
        forbidden.add(tuple(pseudo))
        out.append((word, phones, pseudo))
        if len(out) == n:
            return out
    raise InputError(f"made only {len(out)} of {n} pseudo-words; pass more words")


def arpabet_to_espeak(phones: Sequence[str]) -> str:
    """ARPAbet phones as espeak-ng phoneme input, e.g. ``D AO1 G`` -> ``[[d|'O:|g]]``.

    Stress digits are used when present (1 primary, 2 secondary); without them the first
    vowel gets primary stress. Phonemes are separated by ``|`` so ``T SH`` is not read as
    ``CH``.
    """
    has_stress = any(p[-1:].isdigit() for p in phones)
    out, first = [], True
    for raw in phones:
        base, digit = raw.rstrip("012"), raw[len(raw.rstrip("012")):]
        if base not in ESPEAK:
            raise InputError(f"{raw!r} is not an ARPAbet phone (in {' '.join(phones)!r})")
        if base in VOWELS:
            level = digit if has_stress else ("1" if first else "0")
            first = False
            mark = {"1": "'", "2": ","}.get(level, "")
            sym = ESPEAK[base] if level in ("1", "2") else _UNSTRESSED.get(base, ESPEAK[base])
            out.append(mark + sym)
        else:
            out.append(ESPEAK[base])
    return "[[" + "|".join(out) + "]]"
