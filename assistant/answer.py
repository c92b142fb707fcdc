"""Compose an extractive answer: the passages' most relevant sentences, each with its [n] marker."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence

from .chunk import sentence_spans
from .lexical import STOPWORDS, TOKEN_RE
from .types import Passage

ABSTAIN_MESSAGE = (
    "The indexed literature does not appear to address this question, so no answer is given. "
    "Try naming the treatment, tumour site or outcome you mean, or check the sources directly."
)
MARKUP_RE = re.compile(r"(\*\*|__|`|^\s*([-*+]|\d+[.)])\s+)", re.M)


def unknown_message(terms: Sequence[str]) -> str:
    """The abstention message when the question names things the corpus never mentions."""
    quoted = ", ".join(f"'{t}'" for t in terms)
    return (
        f"The indexed literature never mentions {quoted}, so it cannot answer this question; "
        "no answer is given. Check the spelling, try another name for it, or consult other sources."
    )


COMMON_SUFFIXES = ("s", "es", "d", "ed", "r", "er", "st", "est", "ly", "ing", "ness")


def _is_common(word: str, common_words: Collection[str]) -> bool:
    """A common word, or a plain inflection of one ('kinder', 'shrinking')."""
    if word in common_words:
        return True
    return any(
        word.endswith(suffix) and word[: -len(suffix)] in common_words
        for suffix in COMMON_SUFFIXES
        if len(word) - len(suffix) >= 3
    )


def unknown_terms(
    question: str,
    in_corpus: Callable[[str], bool],
    common_words: Collection[str] | None,
    min_length: int = 4,
) -> list[str]:
    """Specific words of the question that the corpus never uses.

    A word counts when it is not a stop word, is at least `min_length` letters (no digits), does not occur
    in the corpus (`in_corpus`, on stems, with prefix matching) and is not a common word
    (`common_words`, the embedding model's whole-word vocabulary): a drug, isotope, procedure
    or disease the literature does not cover. Without a vocabulary nothing counts.
    """
    if not common_words:
        return []
    out: list[str] = []
    for word in TOKEN_RE.findall(question.lower()):
        if len(word) < min_length or word in STOPWORDS or word in out:
            continue
        if _is_common(word, common_words):
            continue
        if any(c.isdigit() for c in word) or in_corpus(word):  # years, doses, "1970s"
            continue
        out.append(word)
    return out


def should_abstain(passages: Sequence[Passage], threshold: float) -> bool:
    """Abstain when no passage is at least `threshold`-similar to the question."""
    return not passages or max(p.similarity for p in passages) < threshold


def clean(text: str) -> str:
    """A sentence without Markdown emphasis, list markers and line breaks."""
    return re.sub(r"\s+", " ", MARKUP_RE.sub("", text)).strip()


def compose_answer(
    passages: Sequence[Passage],
    query_terms: Sequence[str],
    idf: Callable[[str], float],
    tokenize: Callable[[str], list[str]],
    n_sentences: int = 3,
    from_passages: int = 3,
    per_passage: int = 2,
) -> str | None:
    """Pick the sentences of the top passages that cover the question's terms best.

    A sentence's score is the idf-weighted share of the question's terms it contains, with a
    small preference for higher-ranked passages. Each sentence is followed by `[n]`, the rank of
    its passage. None when no sentence shares a term with the question.
    """
    terms = set(query_terms)
    if not terms:
        return None
    total = sum(idf(t) for t in terms) or 1.0
    scored: list[tuple[float, int, int, str]] = []
    for p in passages[:from_passages]:
        for order, (s, e) in enumerate(sentence_spans(p.chunk.text)):
            sentence = clean(p.chunk.text[s:e])
            if len(sentence) < 25 or not re.match(r"[\"'(\[]?[A-Z0-9]", sentence):
                continue  # too short, or a fragment (a list item continuing a sentence)
            hits = terms & set(tokenize(sentence))
            if not hits:
                continue
            score = sum(idf(t) for t in hits) / total + 0.05 / p.rank
            scored.append((score, p.rank, order, sentence))
    scored.sort(key=lambda x: (-x[0], x[1], x[2]))
    chosen: list[tuple[float, int, int, str]] = []
    used: dict[int, int] = {}
    for item in scored:
        if used.get(item[1], 0) >= per_passage or any(item[3] == c[3] for c in chosen):
            continue
        chosen.append(item)
        used[item[1]] = used.get(item[1], 0) + 1
        if len(chosen) == n_sentences:
            break
    if not chosen:
        return None
    return " ".join(f"{sentence} [{rank}]" for _, rank, _, sentence in chosen)
