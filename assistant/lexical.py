"""Tokens for the BM25 index and for matching question terms in passages."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from bm25s.stopwords import STOPWORDS_EN

TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")
# bm25s's short English list plus question words that carry no topic.
STOPWORDS = frozenset(STOPWORDS_EN) | {
    "what", "which", "who", "whom", "how", "when", "where", "why", "does", "do", "did", "is",
    "are", "was", "were", "can", "could", "should", "would", "about", "any", "there", "their",
    "its", "it", "has", "have", "had", "been", "than", "from", "after", "before", "we", "our",
    "you", "your", "me", "tell", "much", "many",
}  # fmt: skip


@lru_cache(maxsize=8)
def _stemmer(language: str | None):
    if not language:
        return None
    import Stemmer

    return Stemmer.Stemmer(language)


def tokenize(text: str, stemmer: str | None = "english") -> list[str]:
    """Lower-cased word tokens of two or more characters, stop words removed, stemmed."""
    words = [w for w in TOKEN_RE.findall(text.lower()) if w not in STOPWORDS]
    stem = _stemmer(stemmer)
    return stem.stemWords(words) if stem is not None else words


def tokenize_many(texts: Iterable[str], stemmer: str | None = "english") -> list[list[str]]:
    """`tokenize` for many texts."""
    return [tokenize(t, stemmer) for t in texts]
