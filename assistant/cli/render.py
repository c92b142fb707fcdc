"""Rendering of answers, sources and passages (shared by `ask` and the chat shell): Rich views,
and the plain-text forms the chat shell prints when it is not on a terminal."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..chat_text import passage_label
from ..citation import citation, identifier, short_authors
from ..currency import AFTER_REVIEW_LABEL, AFTER_REVIEW_NOTE, is_after_review, year_label
from ..lexical import STOPWORDS, TOKEN_RE
from ..types import Answer, Passage


def query_terms(query: str) -> list[str]:
    """Words of the query worth highlighting in passages."""
    return [w for w in TOKEN_RE.findall(query.lower()) if w not in STOPWORDS and len(w) > 2]


def highlight(text: str, terms: Sequence[str], style: str = "bold yellow") -> Text:
    """`text` with every word starting with one of `terms` (or its stem) highlighted."""
    out = Text(text)
    for term in set(terms):
        stem = term[: max(4, len(term) - 2)] if len(term) > 5 else term
        out.highlight_regex(re.compile(rf"\b{re.escape(stem)}\w*", re.I), style)
    return out


def sources_table(passages: Sequence[Passage], title: str = "Sources") -> Table:
    """n, first author, year, journal, type, identifiers."""
    newer = any(is_after_review(p.source.get("year")) for p in passages)
    table = Table(title=title, title_justify="left", show_lines=False, expand=False,
                  caption=AFTER_REVIEW_NOTE if newer else None, caption_justify="left")  # fmt: skip
    for col in ("n", "first author", "year", "journal", "type", "PMID / DOI"):
        table.add_column(col, overflow="fold")
    for p in passages:
        s = p.source
        table.add_row(
            str(p.rank),
            escape(short_authors(s.get("authors"), s.get("title"))),
            Text(
                year_label(s, short=True),
                style="bold green" if is_after_review(s.get("year")) else "",
            ),  # fmt: skip
            escape(s.get("journal") or "—"),
            escape(s.get("source_type") or "—"),
            escape(identifier(s)),
        )
    return table


def passage_panel(p: Passage, terms: Sequence[str]) -> Panel:
    """One passage with its section and matched terms highlighted."""
    s = p.source
    page = f", p. {p.chunk.page}" if p.chunk.page is not None else ""
    label = escape(short_authors(s.get("authors"), s.get("title")))
    where = escape(p.chunk.section or s.get("title", ""))
    year = escape(year_label(s, short=True))
    title = f"[{p.rank}] {label} {year}{page} — {where}"  # page first: titles get cut
    body = highlight(re.sub(r"[ \t]+", " ", p.text.strip()), terms)
    return Panel(body, title=title, title_align="left", border_style="dim")


def render_answer(console: Console, ans: Answer, show_passages: bool = True) -> None:
    """The answer (or abstention), the sources table and the passages."""
    if ans.query != ans.question:
        console.print(Text(f"searched: {ans.query}", style="dim"))
    if ans.abstained:
        console.print(Panel(Text(ans.message or ""), title="No answer", border_style="yellow"))
        if ans.passages:
            console.print(Text("Closest passages (below the relevance threshold):", style="dim"))
    else:
        console.print(Panel(Text(ans.answer or ""), title="Answer", border_style="green"))
    if not ans.passages:
        return
    console.print(sources_table(ans.passages))
    if ans.references:
        console.print(references_table(ans.references))
    if show_passages:
        terms = query_terms(ans.query)
        console.print(Group(*(passage_panel(p, terms) for p in ans.passages)))


def references_table(references: Sequence[dict[str, Any]]) -> Table:
    """The sources the passages cite by label ("Le Treut 2013"), with their full citation."""
    table = Table(title="Cited in the passages (/show LABEL in the chat shell)",
                  title_justify="left", expand=False)  # fmt: skip
    table.add_column("label", no_wrap=True)
    table.add_column("reference", overflow="fold")
    for ref in references:
        table.add_row(escape(ref.get("label") or ref["id"]), escape(citation(ref)))
    return table


# ----------------------------------------------------------------- chat shell additions
def full_sources_table(
    rows: Sequence[tuple[Sequence[int], dict[str, Any]]], title: str = "Sources"
) -> Table:
    """Each source once: the passages it supplied, its type and full citation (`/sources`)."""
    newer = any(is_after_review(source.get("year")) for _, source in rows)
    table = Table(title=title, title_justify="left", expand=False,
                  caption=AFTER_REVIEW_NOTE if newer else None, caption_justify="left")  # fmt: skip
    table.add_column("passages", justify="right")
    table.add_column("type")
    table.add_column("year")
    table.add_column("reference", overflow="fold")
    for ranks, source in rows:
        table.add_row(", ".join(str(r) for r in ranks), escape(source.get("source_type") or "—"),
                      escape(year_label(source, short=True)), escape(citation(source)))  # fmt: skip
    return table


def context_panel(ctx: dict[str, Any], terms: Sequence[str]) -> Panel:
    """`/show N`: the passage (highlighted) between the text around it, under its citation."""
    page = f", page {ctx['page']}" if ctx.get("page") is not None else ""
    src = ctx["source"]
    body = Text()
    body.append((ctx.get("citation") or citation(src)) + "\n", style="italic")
    body.append(f"Section: {ctx.get('section') or '—'}{page}\n\n", style="bold")
    before = re.sub(r"[ \t]+", " ", ctx.get("before", "")).strip()
    after = re.sub(r"[ \t]+", " ", ctx.get("after", "")).strip()
    if before:
        body.append("… " + before + "\n\n", style="dim")
    passage = highlight(re.sub(r"[ \t]+", " ", ctx["text"].strip()), terms)
    passage.stylize("on grey11")
    body.append_text(passage)
    if after:
        body.append("\n\n" + after + " …", style="dim")
    title = f"[{ctx.get('rank', '?')}] {escape(short_authors(src.get('authors'), src.get('title')))} {escape(year_label(src))}"
    return Panel(
        body,
        title=title,
        title_align="left",
        border_style="cyan",
    )


def commands_table(commands: dict[str, str]) -> Table:
    """The chat shell's commands and what they do (`/help`)."""
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for name, text in commands.items():
        table.add_row(escape(name), escape(text))
    return table


# ---------------------------------------------------------------- the chat shell's other views
def history_table(rows: Sequence[tuple[int, str, str]]) -> Table:
    """The questions of a conversation: number, question, the query searched when different."""
    table = Table(title="This conversation", title_justify="left")
    for col in ("#", "question", "searched"):
        table.add_column(col, overflow="fold")
    for i, q, query in rows:
        table.add_row(str(i), q, Text(query if query != q else "—", style="dim"))
    return table


def plain_history(rows: Sequence[tuple[int, str, str]]) -> str:
    """`history_table` as plain lines."""
    return "\n".join(f"{i}. {q}" + (f"  (searched: {query})" if query != q else "")
                     for i, q, query in rows)  # fmt: skip


def plain_commands(commands: dict[str, str]) -> str:
    """`commands_table` as plain lines."""
    return "\n".join(f"{cmd:<16} {text}" for cmd, text in commands.items())


def plain_sources(rows: Sequence[tuple[list[int], dict[str, Any]]]) -> str:
    """`full_sources_table` as plain lines: passage numbers, type, citation, after-review mark."""
    lines = []
    for ranks, src in rows:
        newer = f" ({AFTER_REVIEW_LABEL})" if is_after_review(src.get("year")) else ""
        lines.append(f"{passage_label(ranks)} ({src.get('source_type')}) {citation(src)}{newer}")
    return "\n".join(lines)
