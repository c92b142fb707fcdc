"""Turn a follow-up question into a self-contained search query using the conversation so far."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from .lexical import STOPWORDS, TOKEN_RE

FOLLOW_UP_START = re.compile(
    r"^\s*(and|also|but|or|what about|how about|what of|same|then|in|for|with|versus|vs\.?|"
    r"compared|any|is it|are they|does it|do they|was it|were they)\b",
    re.I,
)
ANAPHORA = re.compile(
    r"\b(it|its|it's|this|that|these|those|they|them|their|the same|such|the drug|the trial|"
    r"the study|the treatment|the procedure|the therapy|the latter|the former)\b",
    re.I,
)
MAX_CONTEXT_TERMS = 12
SHORT_QUESTION_TERMS = 4


def content_words(text: str) -> list[str]:
    """Words that carry meaning, in order, without repeats (case kept as written)."""
    seen: set[str] = set()
    out = []
    for match in TOKEN_RE.finditer(text):
        word = match.group(0)
        low = word.lower()
        if low in STOPWORDS or low in seen:
            continue
        seen.add(low)
        out.append(word)
    return out


def is_follow_up(question: str) -> bool:
    """A question that leans on earlier turns: elliptical, anaphoric, or very short."""
    words = content_words(question)
    return bool(
        FOLLOW_UP_START.match(question)
        or ANAPHORA.search(question)
        or len(words) <= SHORT_QUESTION_TERMS - 2
    )


def _merge(question: str, context: str, max_terms: int) -> str:
    asked = {w.lower() for w in content_words(question)}
    extra = [w for w in content_words(context) if w.lower() not in asked][:max_terms]
    return f"{question.strip()} {' '.join(extra)}".strip() if extra else question.strip()


def rewrite_query(
    question: str,
    history: Sequence[Mapping[str, str]] | None = None,
    max_turns: int = 6,
    max_terms: int = MAX_CONTEXT_TERMS,
) -> str:
    """The query to search for `question` given earlier turns.

    Each earlier user turn is itself resolved against the turns before it, so a chain of
    follow-ups keeps its topic; what is carried over is capped at `max_terms` words, so the
    query cannot grow turn after turn. Assistant turns are not used: they quote passages and
    would drown the clinician's own words.
    """
    users = [t.get("content", "") for t in (history or []) if t.get("role") == "user"]
    users = [u for u in users if u.strip()][-max_turns:] if max_turns else []
    context = ""
    for turn in users:
        context = _merge(turn, context, max_terms) if (context and is_follow_up(turn)) else turn
    if not context or not is_follow_up(question):
        return question.strip()
    return _merge(question, context, max_terms)
