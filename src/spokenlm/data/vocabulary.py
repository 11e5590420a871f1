"""The English vocabulary of spokenlm's sentence generator: a curated list of common words.

Nouns carry singular and plural forms and a semantic class (person, animal, thing, place),
verbs their base, third-person-singular and past forms and what they take as object.
Every surface form is checked against CMUdict, which also gives its phonemes (ARPAbet,
stress stripped); a lexeme with a form missing from CMUdict is dropped.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .phonemes import cmudict_phonemes

# Nouns: "sg" (regular plural) or "sg:pl".
PERSONS = """man:men woman:women child:children boy girl baby teacher doctor farmer student king
queen friend neighbor driver singer painter baker nurse soldier sailor writer player artist
cook pilot guest stranger brother sister mother father uncle lawyer dancer hunter actor
captain prince princess wife:wives"""
ANIMALS = """dog cat bird horse cow mouse:mice rabbit fox bear wolf:wolves lion tiger duck goat pig
frog snake monkey owl donkey turtle chicken spider bee whale"""
THINGS = """book ball box car cup chair table door window hat coat shoe key letter apple cake
bottle bag lamp clock phone picture flower tree stone song story boat train bike map pen
pencil basket blanket bowl plate spoon knife:knives candle ring shell leaf:leaves egg orange
banana sandwich umbrella newspaper drum guitar kite wheel rope ticket gift bell toy cookie
card glass mirror pillow bucket feather coin jacket shirt watch"""
PLACES = """house garden park school kitchen forest river city village street room field lake
beach market library shop farm station bridge hill road office castle island mountain yard
hall barn"""

# Verbs: "base" (regular) or "base:past" (irregular or doubled past); object class after "/".
TRANSITIVE = """see:saw/any like/any find:found/any want/thing carry/thing hold:held/thing
take:took/thing bring:brought/thing buy:bought/thing sell:sold/thing drop:dropped/thing
catch:caught/any chase/animate follow/animate help/animate call/animate visit/animate
watch/any love/any hate/any push/any pull/thing paint/thing draw:drew/thing wash/thing
clean/thing fix/thing make:made/thing read:read/thing keep:kept/thing hide:hid/any
throw:threw/thing kick/thing touch/any meet:met/animate know:knew/animate teach:taught/animate
feed:fed/animate greet/animate remember/any forget:forgot/any need/thing use/thing
lose:lost/thing move/thing lift/thing hear:heard/animate admire/any miss/animate
thank/animate ask/animate protect/any borrow/thing share/thing choose:chose/thing
fill/thing open/thing"""
INTRANSITIVE = """run:ran sleep:slept sing:sang dance laugh cry smile jump walk swim:swam wait
sit:sat stand:stood talk play rest work arrive leave:left fall:fell shout whisper listen climb
travel wake:woke hurry return disappear fly:flew sneeze shiver wander relax cough yawn"""

ADJ_ANY = """big small old young red blue green yellow black white brown tall short quiet loud
new tiny huge strange famous pretty wild little beautiful lovely gray"""
ADJ_ANIMATE = """happy sad kind brave clever lazy busy tired hungry angry friendly gentle strong
proud lucky careful curious nervous polite rich poor shy silly sleepy honest calm"""
ADJ_THING = """warm cold bright dark clean dirty heavy light soft hard wet dry empty round sharp
sweet broken golden wooden"""

#: Before the verb ("the dog often runs").
ADV_FREQUENCY = "often always never sometimes usually rarely"
#: After the verb phrase ("the dog runs quickly").
ADV_MANNER = """quickly slowly quietly loudly happily sadly carefully suddenly again together
early late outside gently proudly calmly nervously politely badly well soon"""

NAMES = """anna john mary david sarah peter lucy tom emma james kate paul linda mark alice sam
rose jack nina ben maria oliver sophie henry laura"""

DET_SG = "the a this that every each one my your his her our their"
DET_PL = "the these those some many two three four five several my your our their"
PREP_PLACE = "in near behind beside by across"
PREP_THING = "on under near behind beside with"
#: (word, person/number feature) for subject pronouns, and the object forms.
PRONOUNS = [("i", "non-3sg"), ("you", "non-3sg"), ("he", "3sg"), ("she", "3sg"),
            ("it", "3sg"), ("we", "non-3sg"), ("they", "non-3sg")]
OBJECT_PRONOUNS = "me you him her it us them"
FUNCTION_WORDS = """and but because while when that who does do did is are was were where what
not an"""


@dataclass(frozen=True)
class Noun:
    sg: str
    pl: str
    kind: str  # "person" | "animal" | "thing" | "place"

    def form(self, number: str) -> str:
        return self.sg if number == "sg" else self.pl

    @property
    def animate(self) -> bool:
        return self.kind in ("person", "animal")


@dataclass(frozen=True)
class Verb:
    base: str
    s3: str  # third person singular present
    past: str
    obj: str | None  # None: intransitive; else "any" | "animate" | "thing"

    def present(self, feature: str) -> str:
        """``feature`` is "3sg" or "non-3sg"."""
        return self.s3 if feature == "3sg" else self.base


def plural(word: str) -> str:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def third_singular(verb: str) -> str:
    if verb.endswith(("s", "x", "z", "ch", "sh", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def regular_past(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


@dataclass(frozen=True)
class Vocabulary:
    """All lexemes the grammar uses, each form known to CMUdict."""

    nouns: dict[str, tuple[Noun, ...]]  # kind -> nouns
    verbs_transitive: tuple[Verb, ...]
    verbs_intransitive: tuple[Verb, ...]
    adjectives: dict[str, tuple[str, ...]]  # "any" | "animate" | "thing"
    adv_frequency: tuple[str, ...]
    adv_manner: tuple[str, ...]
    names: tuple[str, ...]
    det_sg: tuple[str, ...]
    det_pl: tuple[str, ...]
    prep_place: tuple[str, ...]
    prep_thing: tuple[str, ...]
    dropped: tuple[str, ...]  # forms not in CMUdict (their lexemes were left out)

    def words(self) -> list[str]:
        """Every surface form the grammar can emit, sorted."""
        out: set[str] = set(FUNCTION_WORDS.split()) | set(OBJECT_PRONOUNS.split())
        out |= {p for p, _ in PRONOUNS}
        for nouns in self.nouns.values():
            for n in nouns:
                out |= {n.sg, n.pl}
        for v in self.verbs_transitive + self.verbs_intransitive:
            out |= {v.base, v.s3, v.past}
        for adjs in self.adjectives.values():
            out |= set(adjs)
        out |= set(self.adv_frequency + self.adv_manner + self.names + self.det_sg
                   + self.det_pl + self.prep_place + self.prep_thing)
        return sorted(out)

    def phonemes(self, word: str) -> list[str]:
        """ARPAbet phones of ``word`` (first CMUdict pronunciation, stress stripped)."""
        phones = cmudict_phonemes(word)
        if phones is None:
            raise KeyError(f"{word!r} is not in CMUdict")
        return phones

    def lexicon(self) -> dict[str, list[str]]:
        """word -> phones, for every word in :meth:`words` (written as ``vocabulary.json``)."""
        return {w: self.phonemes(w) for w in self.words()}


def _known(*forms: str) -> bool:
    return all(cmudict_phonemes(f) is not None for f in forms)


@functools.lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """Build (once) the vocabulary from the word lists above, keeping only CMUdict words."""
    dropped: list[str] = []

    def keep(*forms: str) -> bool:
        ok = _known(*forms)
        if not ok:
            dropped.extend(f for f in forms if cmudict_phonemes(f) is None)
        return ok

    def nouns(text: str, kind: str) -> tuple[Noun, ...]:
        out = []
        for item in text.split():
            sg, _, pl = item.partition(":")
            noun = Noun(sg, pl or plural(sg), kind)
            if keep(noun.sg, noun.pl):
                out.append(noun)
        return tuple(out)

    def verbs(text: str, transitive: bool) -> tuple[Verb, ...]:
        out = []
        for item in text.split():
            forms, _, obj = item.partition("/")
            base, _, past = forms.partition(":")
            verb = Verb(base, third_singular(base), past or regular_past(base),
                        (obj or "any") if transitive else None)
            if keep(verb.base, verb.s3, verb.past):
                out.append(verb)
        return tuple(out)

    def words(text: str) -> tuple[str, ...]:
        return tuple(w for w in text.split() if keep(w))

    return Vocabulary(
        nouns={"person": nouns(PERSONS, "person"), "animal": nouns(ANIMALS, "animal"),
               "thing": nouns(THINGS, "thing"), "place": nouns(PLACES, "place")},
        verbs_transitive=verbs(TRANSITIVE, True),
        verbs_intransitive=verbs(INTRANSITIVE, False),
        adjectives={"any": words(ADJ_ANY), "animate": words(ADJ_ANIMATE),
                    "thing": words(ADJ_THING)},
        adv_frequency=words(ADV_FREQUENCY), adv_manner=words(ADV_MANNER),
        names=words(NAMES), det_sg=words(DET_SG), det_pl=words(DET_PL),
        prep_place=words(PREP_PLACE), prep_thing=words(PREP_THING),
        dropped=tuple(dropped),
    )
