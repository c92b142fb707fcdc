"""Citation strings for sources: first-author labels, identifiers, full references."""

from __future__ import annotations

from typing import Any

from .source import SourceRecord


def short_authors(authors: Any, title: str | None = None) -> str:
    """'Rinke A et al.' style first-author label; the title's first words when no authors."""
    if not authors:
        if title:
            words = str(title).split()
            return " ".join(words[:6]) + (" …" if len(words) > 6 else "")
        return "—"
    first = str(authors[0]).replace(" et al.", "").replace(" et al", "")
    return first if len(authors) == 1 else f"{first} et al."


def identifier(source: SourceRecord) -> str:
    """PMID and/or DOI as one label."""
    parts = []
    if source.get("pmid"):
        parts.append(f"PMID {source['pmid']}")
    if source.get("doi"):
        parts.append(f"doi:{source['doi']}")
    return "; ".join(parts) or "—"


def citation(source: SourceRecord) -> str:
    """A full reference: authors, title, journal year;volume:pages, identifiers, URL."""
    authors = ", ".join(source.get("authors") or []).rstrip(".") or "Anonymous"
    text = f"{authors}. {str(source.get('title', '')).rstrip('.')}."
    if source.get("journal"):
        text += f" {source['journal']}"
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
