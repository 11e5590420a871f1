"""A user's text -> documents -> utterances to speak.

Documents are the unit of the train/valid/test split (held-out text is never spoken in
train); utterances are what one wav holds:

- documents: separated by blank lines, or by a line ``<|endoftext|>`` (TinyStories' text
  dumps), with ``documents="blank"``; one per line with ``documents="line"``;
- utterances (``split_by``): ``"line"``, one per line of the document; ``"sentence"``, one
  per sentence; ``"document"``, consecutive sentences packed up to the length limit (the
  sTinyStories shape: long utterances that keep the story's context). A line or text over the
  limit is cut at sentence boundaries, and a sentence over it at clause boundaries
  (``,;:`` or before a conjunction), else between words, into chunks of about equal size.

The limit is a number of words (whitespace-separated tokens); a duration limit is turned
into one with :func:`words_for_seconds`. Sentence ends are ``.``, ``!`` or ``?`` (and
closing quotes or brackets) before anything but a lowercase letter; abbreviations (``Mr.``,
``e.g.``) and initials (``J. K.``) are not ends, nor is ``"Hi!" said Tom``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ..common.errors import InputError

SplitBy = Literal["line", "sentence", "document"]
Documents = Literal["blank", "line"]

#: A line that ends one document and starts the next (as in TinyStories' .txt files).
DOCUMENT_MARKER = "<|endoftext|>"
#: Words before which a long sentence is cut when it has no clause punctuation.
CONJUNCTIONS = frozenset(
    "and but or so because when while then which who that if after before until though "
    "although whereas since unless".split())
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr prof vs etc e.g i.e mt ft approx dept fig inc ltd co".split())
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]»]*(?=\s+[^a-z\s])")
_CLAUSE_END = re.compile(r"[,;:)\]—–]$|-$|\.\.\.$|…$")
#: Markup a TTS would spell out ("asterisk"): removed from the text (``***`` rules, ``_x_``).
_MARKUP = re.compile(r"[*_#~=|^`<>{}\\]+")
_OPENERS = "\"'“‘([«"
_CLOSERS = "\"'”’)]»"


def read_text(path: Path) -> str:
    """The text of ``path`` (UTF-8, a BOM dropped); one-line errors for missing or binary."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: text file not found; check --text")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); convert it, "
                         f"e.g. `iconv -f latin1 -t utf-8 {path.name}`") from e


def read_documents(text: str, documents: Documents = "blank") -> list[list[str]]:
    """Documents of ``text``, each a list of its lines: whitespace collapsed, markup symbols
(``*_#~=|^`<>{}\\``) removed, lines left empty dropped."""
    if documents not in ("blank", "line"):
        raise InputError(f"documents={documents!r}: choose blank or line")
    out: list[list[str]] = []
    current: list[str] = []
    for raw in text.splitlines():
        mark = raw.strip()
        line = " ".join(_MARKUP.sub(" ", raw).split())
        if documents == "line":
            if line and mark != DOCUMENT_MARKER:
                out.append([line])
            continue
        if not mark or mark == DOCUMENT_MARKER:
            if current:
                out.append(current)
            current = []
        elif line:
            current.append(line)
    if current:
        out.append(current)
    return out


def words_for_seconds(seconds: float, rate_wpm: float, pad_s: float = 0.0) -> int:
    """Words that fit in ``seconds`` at ``rate_wpm`` words per minute, after ``pad_s`` of
    silence at each end (an estimate: espeak-ng's rate is in words per minute)."""
    return max(1, int((seconds - 2 * pad_s) * rate_wpm / 60))


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (one paragraph; line breaks are spaces); see the module doc."""
    text = " ".join(text.split())
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        word = text[:m.start()].rsplit(" ", 1)[-1].lstrip(_OPENERS)
        if text[m.start()] == "." and (word.lower() in _ABBREVIATIONS
                                       or (len(word) == 1 and word.isalpha())):
            continue
        out.append(text[start:m.end()].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


def split_long(sentence: str, max_words: int) -> list[str]:
    """``sentence`` cut into chunks of at most ``max_words`` words, of about equal size, at
    clause punctuation if there is one near the cut, else before a conjunction, else between
    words."""
    if max_words < 1:
        raise InputError(f"max_words={max_words}: must be at least 1")
    words = sentence.split()
    chunks: list[str] = []
    while len(words) > max_words:
        target = math.ceil(len(words) / math.ceil(len(words) / max_words))
        lo = max(1, target - max(1, max_words // 2))
        cuts = range(lo, max_words + 1)  # a cut after `p` words
        by_punct = [p for p in cuts if _CLAUSE_END.search(words[p - 1])]
        by_conj = [p for p in cuts if words[p].lower().strip(_OPENERS) in CONJUNCTIONS]
        best = by_punct or by_conj
        p = min(best, key=lambda c: (abs(c - target), -c)) if best else target
        chunks.append(" ".join(words[:p]))
        words = words[p:]
    if words:
        chunks.append(" ".join(words))
    return chunks


def pack(pieces: Sequence[str], max_words: int) -> list[str]:
    """Consecutive ``pieces`` (sentences) joined into utterances of at most ``max_words``
    words; a piece over the limit is cut with :func:`split_long` first."""
    out: list[str] = []
    current: list[str] = []
    n = 0
    for piece in pieces:
        for chunk in split_long(piece, max_words):
            k = len(chunk.split())
            if current and n + k > max_words:
                out.append(" ".join(current))
                current, n = [], 0
            current.append(chunk)
            n += k
    if current:
        out.append(" ".join(current))
    return out


def segment(lines: Sequence[str], split_by: SplitBy, max_words: int, *,
            sentences: bool = False) -> list[str]:
    """Utterances of one document (its ``lines``); see the module doc for ``split_by``.
    With ``sentences``, each line already is one sentence (a generated story)."""
    if split_by not in ("line", "sentence", "document"):
        raise InputError(f"split_by={split_by!r}: choose line, sentence or document")
    if split_by == "line":
        out = []
        for line in lines:
            out += ([line] if len(line.split()) <= max_words
                    else pack(split_sentences(line), max_words))
        return out
    sents = list(lines) if sentences else split_sentences(" ".join(lines))
    if split_by == "sentence":
        return [chunk for s in sents for chunk in split_long(s, max_words)]
    return pack(sents, max_words)


def speakable(text: str) -> bool:
    """Whether ``text`` has a letter or digit for the TTS to say."""
    return any(c.isalnum() for c in text)
