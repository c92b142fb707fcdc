"""The chat shell's plain-text views (piped input, no terminal): answers, passages, context."""

from __future__ import annotations

import re
from typing import Any

from .citation import citation, identifier, short_authors
from .currency import year_label
from .types import Answer, Passage


def passage_label(ranks: list[int]) -> str:
    """'[1, 3]' for the passages a source supplied."""
    return "[" + ", ".join(str(r) for r in ranks) + "]"


def source_row(p: Passage) -> str:
    """One line of the compact sources list."""
    s = p.source
    return (
        f"[{p.rank}] {short_authors(s.get('authors'), s.get('title'))}, {year_label(s, short=True)}, "
        f"{s.get('journal') or '—'}, {s.get('source_type') or '—'}, {identifier(s)}"
    )


def format_passages(passages: list[Passage]) -> str:
    """Sources list and passages as plain text."""
    lines = ["Sources:"] + [f"  {source_row(p)}" for p in passages] + [""]
    for p in passages:
        where = p.chunk.section or p.source.get("title", "")
        lines.append(f"[{p.rank}] {short_authors(p.source.get('authors'), p.source.get('title'))} "
                     f"{year_label(p.source, short=True)} — {where}")  # fmt: skip
        lines.append("    " + re.sub(r"\s+", " ", p.text.strip()))
    return "\n".join(lines)


def format_answer(answer: Answer, hint: str | None = None) -> str:
    """An answer as plain, uncoloured text (for piped input)."""
    lines = []
    if answer.query != answer.question:
        lines.append(f"searched: {answer.query}")
    if answer.abstained:
        lines.append(f"No answer: {answer.message or ''}".strip())
        if hint:
            lines.append(f"Try: {hint}")
        if answer.passages:
            lines.append("Closest passages (below the relevance threshold):")
    else:
        lines.append(f"Answer: {answer.answer}")
    if answer.passages:
        lines += ["", format_passages(answer.passages)]
    if answer.references:
        lines += ["", "Cited in the passages (/show LABEL):"]
        lines += [f"  {r.get('label') or r['id']}: {citation(r)}" for r in answer.references]
    return "\n".join(lines)


def format_context(ctx: dict[str, Any]) -> str:
    """`/show N` as plain text: citation, section, the passage between its neighbours."""
    page = f", page {ctx['page']}" if ctx.get("page") is not None else ""
    lines = [
        f"[{ctx.get('rank', '?')}] {ctx['citation']}",
        f"Published: {year_label(ctx.get('source') or {})}",
        f"Section: {ctx.get('section') or '—'}{page}",
        "",
    ]
    before = ctx.get("before", "").strip()
    after = ctx.get("after", "").strip()
    if before:
        lines += ["… " + before, ""]
    lines += [">>> " + ctx["text"].strip() + " <<<", ""]
    if after:
        lines += [after + " …"]
    return "\n".join(lines)
