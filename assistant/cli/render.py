"""Rich rendering of answers, sources and passages (shared by `ask` and the chat shell)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..lexical import STOPWORDS, TOKEN_RE
from ..types import Answer, Passage


def short_authors(authors: Sequence[str] | None) -> str:
    """'Rinke A et al.' style first-author label."""
    if not authors:
        return "—"
    first = str(authors[0]).replace(" et al.", "").replace(" et al", "")
    return first if len(authors) == 1 else f"{first} et al."


def identifier(source: dict[str, Any]) -> str:
    """PMID and/or DOI as one label."""
    parts = []
    if source.get("pmid"):
        parts.append(f"PMID {source['pmid']}")
    if source.get("doi"):
        parts.append(f"doi:{source['doi']}")
    return "; ".join(parts) or "—"


def citation(source: dict[str, Any]) -> str:
    """A full reference line: authors, title, journal year;volume:pages, identifiers."""
    authors = ", ".join(source.get("authors") or []) or "Anonymous"
    text = f"{authors}. {source.get('title', '').rstrip('.')}."
    journal = source.get("journal")
    if journal:
        text += f" {journal}"
    text += f" {source.get('year')}"
    if source.get("volume"):
        text += f";{source['volume']}"
        if source.get("pages"):
            text += f":{source['pages']}"
    text += "."
    ident = identifier(source)
    if ident != "—":
        text += f" {ident}."
    if source.get("url"):
        text += f" {source['url']}"
    return text


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
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    for col in ("n", "first author", "year", "journal", "type", "PMID / DOI"):
        table.add_column(col, overflow="fold")
    for p in passages:
        s = p.source
        table.add_row(
            str(p.rank),
            escape(short_authors(s.get("authors"))),
            str(s.get("year") or "—"),
            escape(s.get("journal") or "—"),
            escape(s.get("source_type") or "—"),
            escape(identifier(s)),
        )
    return table


def passage_panel(p: Passage, terms: Sequence[str]) -> Panel:
    """One passage with its section and matched terms highlighted."""
    s = p.source
    page = f", p. {p.chunk.page}" if p.chunk.page is not None else ""
    title = f"[{p.rank}] {escape(short_authors(s.get('authors')))} {s.get('year')} — {escape(p.chunk.section or s.get('title', ''))}{page}"
    body = highlight(re.sub(r"[ \t]+", " ", p.chunk.text.strip()), terms)
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
    if show_passages:
        terms = query_terms(ans.query)
        console.print(Group(*(passage_panel(p, terms) for p in ans.passages)))
