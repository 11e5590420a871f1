"""spokenlm's sentence generator: a small probabilistic grammar of English.

Sentences are built left to right from the vocabulary in :mod:`spokenlm.data.vocabulary`,
with subject-verb agreement (also across relative clauses, prepositional phrases and
conjoined subjects), determiner-noun agreement and "a"/"an" chosen from the next word's
first phoneme. Each :class:`Sentence` keeps a record of every agreement it contains, so a
minimal pair is one call away::

    s = generate(random.Random(0))
    s.text                      # "the dog that sees the cats runs"
    s.violate(s.agreements[0])  # "the dog that see the cats runs"

Stories (:func:`generate_stories`) are a few simple clauses about one cast: a hero, a
second character, a thing and a place, each said the same way every time ("the little
dog", "anna", "the red ball", "the park"), in one tense; the hero is the subject of the
first sentence and of most others. Another story's sentence has another cast, so telling a
story's true next sentence from it takes following who and what the story is about (a
story-cloze continuation).

Deterministic: the same seed gives the same sentences.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .vocabulary import PRONOUNS, Noun, Verb, Vocabulary, vocabulary

#: Sentence shapes and their weights.
SHAPES: dict[str, float] = {
    "intransitive": 3.0, "transitive": 4.0, "copula": 1.5, "yes_no": 1.0, "wh": 1.0,
    "coordinated": 1.0, "subordinate": 1.0, "conjoined_subject": 0.6,
}
#: Longer sentences are redrawn (they make long utterances for little gain in a tiny demo).
MAX_WORDS = 16
_CONJ = ("and", "but")
_SUBORD = ("because", "while", "when")
_VOWELS = ("A", "E", "I", "O", "U")
#: Shapes of story sentences (simple clauses, so the cast stays in view) and their weights.
STORY_SHAPES: dict[str, float] = {"intransitive": 3.0, "transitive": 4.0, "copula": 1.5}


@dataclass(frozen=True)
class Agreement:
    """One agreement in a sentence.

    kind: "subject-verb" (target is the verb or auxiliary, controller the subject head) or
    "det-noun" (target is the noun, controller the determiner).
    feature: the controller's value, "3sg"/"non-3sg" (subject-verb) or "sg"/"pl" (det-noun).
    alternative: the target word with the other value ("runs" -> "run"): putting it at
    ``target`` makes the sentence ungrammatical.
    """

    kind: str
    target: int
    controller: int
    feature: str
    alternative: str


@dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    shape: str
    agreements: tuple[Agreement, ...]
    question: bool = False

    @property
    def text(self) -> str:
        """Lowercase words separated by spaces, no punctuation (the transcript)."""
        return " ".join(self.tokens)

    @property
    def spoken(self) -> str:
        """The text as given to a TTS: with a final "?" or "." for intonation."""
        return self.text + ("?" if self.question else ".")

    def violate(self, agreement: Agreement) -> Sentence:
        """The same sentence with ``agreement`` broken (its target word swapped)."""
        tokens = list(self.tokens)
        tokens[agreement.target] = agreement.alternative
        return Sentence(tuple(tokens), self.shape, (), self.question)

    def swap_adjacent(self, rng: random.Random) -> str | None:
        """The text with one pair of adjacent, different words (drawn by ``rng``) swapped:
        a word-order violation; None when the sentence has no such pair."""
        toks = list(self.tokens)
        pairs = [i for i in range(len(toks) - 1) if toks[i] != toks[i + 1]]
        if not pairs:
            return None
        i = rng.choice(pairs)
        toks[i], toks[i + 1] = toks[i + 1], toks[i]
        return " ".join(toks)


@dataclass(frozen=True)
class Mention:
    """A recurring participant of a story, always said the same way ("the little dog")."""

    tokens: tuple[str, ...]
    feature: str  # as a subject: "3sg" | "non-3sg"
    kind: str  # "person" | "animal" | "thing" | "place"

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    @property
    def animate(self) -> bool:
        return self.kind in ("person", "animal")


@dataclass(frozen=True)
class Story:
    """Sentences about one cast: ``(hero, other character, thing, place)``."""

    sentences: tuple[Sentence, ...]
    cast: tuple[Mention, ...]
    tense: str  # "past" | "present"

    @property
    def text(self) -> str:
        """The sentences as spoken, each with its final "." (a paragraph)."""
        return " ".join(s.spoken for s in self.sentences)


@dataclass
class _NP:
    feature: str  # "3sg" | "non-3sg"
    animate: bool
    head: int = -1


@dataclass
class _Builder:
    rng: random.Random
    vocab: Vocabulary
    tokens: list[str] = field(default_factory=list)
    agreements: list[Agreement] = field(default_factory=list)

    def add(self, *words: str) -> int:
        self.tokens.extend(words)
        return len(self.tokens) - 1

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # --- noun phrases --------------------------------------------------------------------

    def noun_phrase(self, kinds: tuple[str, ...] = ("person", "animal"), *, depth: int = 0,
                    allow_pronoun: bool = True, obj: bool = False, copula: bool = False) -> _NP:
        """Emit a noun phrase: pronoun, name, or determiner + adjective? + noun + modifier?."""
        animate = any(k in ("person", "animal") for k in kinds)
        if animate and allow_pronoun and self.chance(0.12):
            if obj:
                self.add(self.rng.choice(("me", "you", "him", "her", "us", "them")))
                return _NP("non-3sg", True, len(self.tokens) - 1)
            # no "it" for people; no "i" before a copula ("i am" has a form of its own)
            pool = [p for p in PRONOUNS if p[0] != "it" and not (copula and p[0] == "i")]
            word, feature = self.rng.choice(pool)
            return _NP(feature, True, self.add(word))
        if "person" in kinds and self.chance(0.12):
            return _NP("3sg", True, self.add(self.rng.choice(self.vocab.names)))
        kind = self.rng.choice(kinds)
        noun = self.rng.choice(self.vocab.nouns[kind])
        number = "pl" if self.chance(0.4) else "sg"
        np = _NP("3sg" if number == "sg" else "non-3sg", noun.animate)
        self._det_adj_noun(noun, number, np)
        if depth == 0 and self.chance(0.15):
            self.relative_clause(np)
        elif depth == 0 and self.chance(0.1):
            self.add(self.rng.choice(self.vocab.prep_thing))
            self.noun_phrase(("thing", "place"), depth=1, allow_pronoun=False, obj=True)
        return np

    def _det_adj_noun(self, noun: Noun, number: str, np: _NP) -> None:
        dets = self.vocab.det_sg if number == "sg" else self.vocab.det_pl
        det = "the" if self.chance(0.45) else self.rng.choice(dets)
        adj = None
        if self.chance(0.3):
            pool = self.vocab.adjectives["any"] + self.vocab.adjectives[
                "animate" if noun.animate else "thing"]
            adj = self.rng.choice(pool)
        word = noun.form(number)
        if det == "a" and self.vocab.phonemes(adj or word)[0].startswith(_VOWELS):
            det = "an"
        det_index = self.add(det)
        if adj:
            self.add(adj)
        np.head = self.add(word)
        if det not in ("the", "my", "your", "his", "her", "our", "their", "some"):
            other = noun.form("pl" if number == "sg" else "sg")
            self.agreements.append(Agreement("det-noun", np.head, det_index, number, other))

    def relative_clause(self, head: _NP) -> None:
        """"that sees the cat" (subject gap) or "that the cats see" (object gap)."""
        self.add("who" if head.animate and self.chance(0.3) else "that")
        if head.animate and self.chance(0.6):
            verb = self.rng.choice(self.vocab.verbs_transitive)
            self.verb(verb, head)
            self.noun_phrase(self._object_kinds(verb), depth=1, allow_pronoun=False, obj=True)
        else:  # the head is the object of the relative verb: pick a verb that takes it
            fits = ("any", "animate") if head.animate else ("any", "thing")
            verb = self.rng.choice([v for v in self.vocab.verbs_transitive if v.obj in fits])
            sub = self.noun_phrase(depth=1, allow_pronoun=False)
            self.verb(verb, sub)

    # --- verbs ---------------------------------------------------------------------------

    def verb(self, verb: Verb, subject: _NP, tense: str = "present") -> None:
        if tense == "past":
            self.add(verb.past)
            return
        form = verb.present(subject.feature)
        other = verb.present("non-3sg" if subject.feature == "3sg" else "3sg")
        index = self.add(form)
        self.agreements.append(
            Agreement("subject-verb", index, subject.head, subject.feature, other))

    def aux(self, present: tuple[str, str], past: tuple[str, str], subject: _NP,
            tense: str) -> int:
        """Emit an agreeing auxiliary/copula; each pair is (3sg form, non-3sg form)."""
        sg, non = past if tense == "past" else present
        index = self.add(sg if subject.feature == "3sg" else non)
        other = non if subject.feature == "3sg" else sg
        self.agreements.append(Agreement("subject-verb", index, subject.head, subject.feature,
                                         other))
        return index

    def _object_kinds(self, verb: Verb) -> tuple[str, ...]:
        return {"animate": ("person", "animal"), "thing": ("thing",),
                "any": ("person", "animal", "thing")}[verb.obj or "any"]

    def tense(self) -> str:
        return "past" if self.chance(0.25) else "present"

    # --- clauses -------------------------------------------------------------------------

    def clause(self, shape: str) -> None:
        tense = self.tense()
        if shape == "copula":
            subj = self.noun_phrase(("person", "animal", "thing"), copula=True)
            self.aux(("is", "are"), ("was", "were"), subj, tense)
            if self.chance(0.3):
                self._place_pp()
            else:
                pool = self.vocab.adjectives["any"] + self.vocab.adjectives[
                    "animate" if subj.animate else "thing"]
                self.add(self.rng.choice(pool))
            return
        subj = self.noun_phrase()
        if tense == "present" and self.chance(0.15):
            self.add(self.rng.choice(self.vocab.adv_frequency))
        if shape == "transitive":
            verb = self.rng.choice(self.vocab.verbs_transitive)
            self.verb(verb, subj, tense)
            self.noun_phrase(self._object_kinds(verb), obj=True)
        else:
            self.verb(self.rng.choice(self.vocab.verbs_intransitive), subj, tense)
        if self.chance(0.3):
            self._place_pp()
        if self.chance(0.2):
            self.add(self.rng.choice(self.vocab.adv_manner))

    def _place_pp(self) -> None:
        self.add(self.rng.choice(self.vocab.prep_place))
        self.noun_phrase(("place",), depth=1, allow_pronoun=False, obj=True)

    # --- stories -------------------------------------------------------------------------

    def mention(self, m: Mention) -> _NP:
        self.add(*m.tokens)
        return _NP(m.feature, m.animate, len(self.tokens) - 1)

    def story_clause(self, cast: tuple[Mention, ...], shape: str, tense: str, *,
                     hero_first: bool = False) -> None:
        """A simple clause whose subject, object and place come from ``cast`` when they fit."""
        hero, friend, thing, place = cast
        subj_m, other = ((hero, friend) if hero_first or self.chance(0.7)
                         else (friend, hero))
        subj = self.mention(subj_m)
        if shape == "copula":
            self.aux(("is", "are"), ("was", "were"), subj, tense)
            if self.chance(0.4):
                self.add(self.rng.choice(self.vocab.prep_place))
                self.mention(place)
            else:
                self.add(self.rng.choice(self.vocab.adjectives["any"]
                                         + self.vocab.adjectives["animate"]))
            return
        if tense == "present" and self.chance(0.1):
            self.add(self.rng.choice(self.vocab.adv_frequency))
        if shape == "transitive":
            verb = self.rng.choice(self.vocab.verbs_transitive)
            self.verb(verb, subj, tense)
            takes_thing, takes_animate = (verb.obj in ("thing", "any"),
                                          verb.obj in ("animate", "any"))
            if takes_thing and (not takes_animate or self.chance(0.6)) and self.chance(0.75):
                self.mention(thing)
            elif takes_animate and self.chance(0.75):
                self.mention(other)
            else:  # something new enters the story
                self.noun_phrase(self._object_kinds(verb), depth=1, obj=True)
        else:
            self.verb(self.rng.choice(self.vocab.verbs_intransitive), subj, tense)
        if self.chance(0.35):
            self.add(self.rng.choice(self.vocab.prep_place))
            self.mention(place)
        if self.chance(0.2):
            self.add(self.rng.choice(self.vocab.adv_manner))

    def question(self, wh: bool) -> None:
        """"does the dog see the cat", "where do the birds sleep", "who sees the cat"."""
        tense = self.tense()
        if wh and self.chance(0.35):  # subject question: "who" is third person singular
            who = _NP("3sg", True, self.add("who"))
            verb = self.rng.choice(self.vocab.verbs_transitive)
            self.verb(verb, who, tense)
            self.noun_phrase(self._object_kinds(verb), obj=True)
            return
        verb = (self.rng.choice(self.vocab.verbs_transitive) if not wh or self.chance(0.5)
                else self.rng.choice(self.vocab.verbs_intransitive))
        if wh:
            self.add("what" if verb.obj == "thing" else "where")
        aux_at = self.add("did" if tense == "past" else "?")
        subj = self.noun_phrase(depth=1)
        if tense == "present":
            self.tokens[aux_at] = "does" if subj.feature == "3sg" else "do"
            other = "do" if subj.feature == "3sg" else "does"
            self.agreements.append(Agreement("subject-verb", aux_at, subj.head, subj.feature,
                                             other))
        self.add(verb.base)
        if verb.obj and not (wh and verb.obj == "thing"):
            self.noun_phrase(self._object_kinds(verb), obj=True)


def generate(rng: random.Random, vocab: Vocabulary | None = None) -> Sentence:
    """One random sentence."""
    b = _Builder(rng, vocab or vocabulary())
    shape = rng.choices(list(SHAPES), weights=list(SHAPES.values()))[0]
    simple = ("intransitive", "transitive", "copula")
    if shape in simple:
        b.clause(shape)
    elif shape in ("yes_no", "wh"):
        b.question(wh=shape == "wh")
    elif shape == "conjoined_subject":
        return _conjoined(rng, b.vocab)
    else:
        b.clause(rng.choice(simple))
        b.add(rng.choice(_CONJ if shape == "coordinated" else _SUBORD))
        b.clause(rng.choice(simple))
    return Sentence(tuple(b.tokens), shape, tuple(b.agreements),
                    question=shape in ("yes_no", "wh"))


def _conjoined(rng: random.Random, vocab: Vocabulary) -> Sentence:
    """"the dog and the cat run": two noun phrases make a plural subject."""
    b = _Builder(rng, vocab)
    first = b.noun_phrase(depth=1, allow_pronoun=False)
    b.add("and")
    b.noun_phrase(depth=1, allow_pronoun=False)
    b.verb(rng.choice(vocab.verbs_intransitive), _NP("non-3sg", True, first.head))
    if rng.random() < 0.3:
        b.add(rng.choice(vocab.adv_manner))
    return Sentence(tuple(b.tokens), "conjoined_subject", tuple(b.agreements))


def _character(rng: random.Random, vocab: Vocabulary, avoid: set[str]) -> Mention:
    """A name or "the [adjective] person/animal" whose head word is not in ``avoid``."""
    while True:
        if rng.random() < 0.3:
            name = rng.choice(vocab.names)
            if name not in avoid:
                return Mention((name,), "3sg", "person")
            continue
        kind = rng.choice(("person", "animal"))
        noun = rng.choice(vocab.nouns[kind])
        number = "pl" if rng.random() < 0.2 else "sg"
        if noun.sg in avoid or noun.pl in avoid:
            continue
        adj = (rng.choice(vocab.adjectives["any"] + vocab.adjectives["animate"]),
               ) if rng.random() < 0.5 else ()
        return Mention(("the", *adj, noun.form(number)),
                       "3sg" if number == "sg" else "non-3sg", kind)


def _thing(rng: random.Random, vocab: Vocabulary, kind: str) -> Mention:
    """"the [adjective] <thing or place>", mostly singular."""
    noun = rng.choice(vocab.nouns[kind])
    number = "pl" if rng.random() < 0.15 else "sg"
    pool = vocab.adjectives["any"] + (vocab.adjectives["thing"] if kind == "thing" else ())
    adj = (rng.choice(pool),) if rng.random() < 0.4 else ()
    return Mention(("the", *adj, noun.form(number)), "3sg" if number == "sg" else "non-3sg",
                   kind)


def generate_story(rng: random.Random, n_sentences: int, vocab: Vocabulary | None = None, *,
                   max_words: int = MAX_WORDS) -> Story:
    """One story of ``n_sentences`` distinct sentences (see the module doc)."""
    if n_sentences < 1:
        raise ValueError(f"n_sentences={n_sentences}: a story needs at least one sentence")
    vocab = vocab or vocabulary()
    hero = _character(rng, vocab, set())
    friend = _character(rng, vocab, {hero.tokens[-1]})
    cast = (hero, friend, _thing(rng, vocab, "thing"), _thing(rng, vocab, "place"))
    tense = "past" if rng.random() < 0.6 else "present"
    sentences: list[Sentence] = []
    seen: set[str] = set()
    for _ in range(50 * n_sentences + 100):
        b = _Builder(rng, vocab)
        shape = rng.choices(list(STORY_SHAPES), weights=list(STORY_SHAPES.values()))[0]
        b.story_clause(cast, shape, tense, hero_first=not sentences)
        s = Sentence(tuple(b.tokens), shape, tuple(b.agreements))
        if len(s.tokens) <= max_words and s.text not in seen:
            seen.add(s.text)
            sentences.append(s)
            if len(sentences) == n_sentences:
                return Story(tuple(sentences), cast, tense)
    raise RuntimeError(f"could not make {n_sentences} distinct sentences for one story")


def generate_stories(n: int, n_sentences: int, seed: int = 0, *,
                     max_words: int = MAX_WORDS) -> list[Story]:
    """``n`` distinct stories of ``n_sentences`` sentences each, deterministic in ``seed``."""
    rng = random.Random(seed)
    vocab = vocabulary()
    out: list[Story] = []
    seen: set[str] = set()
    if n < 1:
        return out
    for _ in range(50 * n + 1000):
        story = generate_story(rng, n_sentences, vocab, max_words=max_words)
        if story.text not in seen:
            seen.add(story.text)
            out.append(story)
            if len(out) == n:
                return out
    raise RuntimeError(f"could not generate {n} distinct stories")


def generate_parsed(n: int, seed: int = 0, *, unique: bool = True,
                    max_words: int = MAX_WORDS) -> list[Sentence]:
    """``n`` sentences of at most ``max_words`` words (distinct texts when ``unique``),
    deterministic in ``seed``."""
    rng = random.Random(seed)
    vocab = vocabulary()
    out: list[Sentence] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise RuntimeError(f"could not generate {n} distinct sentences")
        s = generate(rng, vocab)
        if len(s.tokens) > max_words or (unique and s.text in seen):
            continue
        seen.add(s.text)
        out.append(s)
    return out


def generate_sentences(n: int, seed: int = 0, *, max_words: int = MAX_WORDS) -> list[str]:
    """``n`` distinct sentences as plain text (see :attr:`Sentence.text`)."""
    return [s.text for s in generate_parsed(n, seed, max_words=max_words)]
