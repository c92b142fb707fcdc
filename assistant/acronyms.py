"""Abbreviations the corpus defines ("peptide receptor radionuclide therapy (PRRT)"), and questions
that use them spelled out for the encoder.

A sentence encoder knows "chemoembolization" far better than "TACE": a bare "What is TACE?" lands
far from every passage about it, while the corpus itself says what TACE stands for. The long
forms are read from the chunk texts (the first letter of the abbreviation starts a word of the
long form, and its letters appear in order), so nothing is hard-coded and a new corpus brings its
own. Only the passages that hold the abbreviation are read (the caller finds them with BM25),
so the cost does not grow with the corpus.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# "long form words (ABBR)": up to 8 words before a parenthesised abbreviation of 2-10 characters
# that starts with a capital and holds at least two capitals
_DEFINITION = re.compile(r"((?:[A-Za-z0-9][\w'-]*[ ]){1,8})\(([A-Z][A-Za-z0-9-]{1,9})\)")
_WORD = re.compile(r"[A-Za-z0-9][\w'-]*")


def long_form(words: list[str], abbr: str) -> str | None:
    """The shortest tail of `words` that the abbreviation abbreviates, or None.

    The abbreviation's letters are found right to left in the words. Each letter starts a word
    (or a hyphenated part of one), or sits in the same word part as the letter before it
    ("TrAnsarterial ChemoEmbolization"); the first one starts a word. The long form holds from
    two words to one more than the abbreviation has letters.
    """
    letters = [c.lower() for c in abbr if c.isalnum()]
    if len(letters) < 2 or sum(c.isupper() for c in abbr) < 2:
        return None
    text = " ".join(words)
    positions = _place(text, letters)
    if positions is None:
        return None
    start = text.rfind(" ", 0, positions[0] + 1) + 1
    found = text[start:].strip()
    n_words = len(found.split())
    if found.lower() == abbr.lower() or n_words > len(letters) + 1 or n_words < 2:
        return None
    return found


def _place(text: str, letters: list[str]) -> list[int] | None:
    """Positions of the letters in `text` under the rule of `long_form`, the last ones as far
    right as possible (so the long form is the shortest), or None."""

    def starts_part(p: int) -> bool:
        return p == 0 or not text[p - 1].isalnum()

    failed: set[tuple[int, int]] = set()

    def place(i: int, after: int) -> list[int] | None:
        # letter i goes before position `after` (len(text) for the last letter)
        if (i, after) in failed:
            return None
        for p in range(after - 1, -1, -1):
            if text[p].lower() != letters[i] or (i == 0 and not starts_part(p)):
                continue
            if after < len(text) and not (
                starts_part(after) or all(c.isalnum() for c in text[p:after])
            ):
                continue
            rest = [] if i == 0 else place(i - 1, p)
            if rest is not None:
                return [*rest, p]
        failed.add((i, after))
        return None

    return place(len(letters) - 1, len(text))


def find_definitions(texts: Iterable[str]) -> dict[str, str]:
    """Abbreviation -> its most frequent long form in the texts."""
    seen: dict[str, Counter[str]] = {}
    for text in texts:
        for match in _DEFINITION.finditer(text):
            abbr = match.group(2)
            words = _WORD.findall(match.group(1))
            found = long_form(words, abbr)
            if found:
                seen.setdefault(abbr, Counter())[found.lower()] += 1
    return {abbr: forms.most_common(1)[0][0] for abbr, forms in seen.items()}


def abbreviations_in(question: str, max_words: int = 0) -> list[str]:
    """Words of the question written like abbreviations (two capitals or more), in order; none
    when the question has more than `max_words` words (0: no limit)."""
    words = _WORD.findall(question)
    if max_words and len(words) > max_words:
        return []
    return list(dict.fromkeys(w for w in words if sum(c.isupper() for c in w) >= 2))


def spell_out(question: str, definitions: dict[str, str]) -> str:
    """The question with each defined abbreviation followed by its long form in parentheses.

    An abbreviation whose long form the question already holds is left as it is. (Which
    questions are short enough to spell out is `abbreviations_in`'s `max_words`.)
    """
    lowered = question.lower()

    def expand(match: re.Match[str]) -> str:
        word = match.group(0)
        meaning = definitions.get(word)
        if meaning is None or meaning in lowered:
            return word
        return f"{word} ({meaning})"

    return _WORD.sub(expand, question)
