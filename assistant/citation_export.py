"""Sources as reference-manager files: RIS (with rispy) and BibTeX (with bibtexparser v2).

Only what a source's metadata holds is written: a source without a journal, pages or DOI gets no
such field, and nothing is made up. Authors stored in Vancouver form ("Rinke A") are written as
"Rinke, A" so reference managers split surname and initials; names that are not in that form
(groups, consortia) are kept whole. A trailing "et al." becomes BibTeX's "and others" and is
left out of RIS, which has no way to say it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import bibtexparser
import rispy
from bibtexparser import model
from pylatexenc.latexencode import unicode_to_latex

from .errors import InputError
from .source import SourceRecord

FORMATS: tuple[str, ...] = ("ris", "bibtex")
MEDIA_TYPES: dict[str, str] = {
    "ris": "application/x-research-info-systems",
    "bibtex": "application/x-bibtex",
}
SUFFIXES: dict[str, str] = {"ris": ".ris", "bibtex": ".bib"}

RIS_TYPES: dict[str, str] = {"textbook": "BOOK"}  # everything with a journal is JOUR
BIBTEX_TYPES: dict[str, str] = {"textbook": "book"}  # everything with a journal is @article

_ET_AL = re.compile(r",?\s*et al\.?$", re.I)
_INITIALS = re.compile(r"^[^\W\d_]{1,4}$")  # "A", "HH", "AJAT" (upper-case only, checked below)


def check_format(fmt: str) -> str:
    """The format name lower-cased, or an InputError listing the formats."""
    name = str(fmt or "").strip().lower()
    if name == "bib":
        name = "bibtex"
    if name not in FORMATS:
        raise InputError(f"unknown citation format '{fmt}'", f"use one of: {', '.join(FORMATS)}")
    return name


def split_authors(authors: Iterable[Any] | None) -> tuple[list[str], bool]:
    """(names, truncated): the listed names without 'et al.', and whether the list had one."""
    names: list[str] = []
    truncated = False
    for raw in authors or ():
        name = str(raw).strip()
        stripped = _ET_AL.sub("", name).strip()
        if stripped != name:
            truncated = True
        if stripped:
            names.append(stripped)
    return names, truncated


def inverted_name(name: str) -> str | None:
    """'Rinke, A' for 'Rinke A' (surname, then up to four capital initials); None otherwise."""
    surname, _, initials = name.rpartition(" ")
    if surname and _INITIALS.match(initials) and initials.isupper():
        return f"{surname}, {initials}"
    return None


def _pages(pages: Any) -> tuple[str | None, str | None]:
    """(first, last) page as written ('1981-92' -> '1981', '92'); last None for one page."""
    if not pages:
        return None, None
    first, sep, last = str(pages).partition("-")
    return (first.strip() or None), (last.strip() or None) if sep else None


def _has(source: SourceRecord, key: str) -> bool:
    value = source.get(key)
    return value is not None and str(value).strip() != ""


# ---------------------------------------------------------------------------- RIS
class _RisWriter(rispy.RisWriter):
    """rispy's writer without the '1.' counter line before each record."""

    def set_header(self, count: int) -> str:
        return ""


def ris_record(source: SourceRecord) -> dict[str, Any]:
    """One source as a rispy record (tag names as rispy's keys); absent fields are omitted."""
    kind = RIS_TYPES.get(str(source.get("source_type")))
    if kind is None:
        kind = "JOUR" if _has(source, "journal") else "GEN"
    record: dict[str, Any] = {"type_of_reference": kind}
    names, _ = split_authors(source.get("authors"))
    if names:
        record["authors"] = [inverted_name(n) or n for n in names]
    simple = {
        "title": "title",
        "journal": "journal_name",
        "year": "year",
        "volume": "volume",
        "doi": "doi",
    }
    for key, tag in simple.items():
        if _has(source, key):
            record[tag] = str(source[key]).strip()
    first, last = _pages(source.get("pages"))
    if first:
        record["start_page"] = first
    if last:
        record["end_page"] = last
    if _has(source, "pmid"):
        record["accession_number"] = str(source["pmid"]).strip()
        record["name_of_database"] = "PubMed"
    if _has(source, "url"):
        record["urls"] = [str(source["url"]).strip()]
    if _has(source, "id"):
        record["id"] = str(source["id"])
    return record


def to_ris(sources: Sequence[SourceRecord]) -> str:
    """The sources as one RIS file (empty string for no sources)."""
    if not sources:
        return ""
    return rispy.dumps([ris_record(s) for s in sources], implementation=_RisWriter)


# ---------------------------------------------------------------------------- BibTeX
def _latex(text: Any) -> str:
    return unicode_to_latex(str(text).strip(), unknown_char_policy="keep")


def bibtex_entry(source: SourceRecord) -> model.Entry:
    """One source as a bibtexparser Entry keyed by the source id; absent fields are omitted.

    Text fields are LaTeX-encoded (`Müller` -> `M\\"uller`); doi, url and pmid are written as
    they are (verbatim fields in biblatex).
    """
    kind = BIBTEX_TYPES.get(str(source.get("source_type")))
    if kind is None:
        kind = "article" if _has(source, "journal") else "misc"
    fields: list[model.Field] = []
    names, truncated = split_authors(source.get("authors"))
    if names:
        parts = []
        for name in names:
            inverted = inverted_name(name)
            parts.append(_latex(inverted) if inverted else "{" + _latex(name) + "}")
        if truncated:
            parts.append("others")
        fields.append(model.Field("author", " and ".join(parts)))
    for key in ("title", "journal"):
        if _has(source, key):
            fields.append(model.Field(key, _latex(source[key])))
    for key in ("year", "volume"):
        if _has(source, key):
            fields.append(model.Field(key, str(source[key]).strip()))
    first, last = _pages(source.get("pages"))
    if first:
        fields.append(model.Field("pages", f"{first}--{last}" if last else first))
    for key in ("doi", "pmid", "url"):
        if _has(source, key):
            fields.append(model.Field(key, str(source[key]).strip()))
    return model.Entry(kind, str(source.get("id") or "source"), fields)


def to_bibtex(sources: Sequence[SourceRecord]) -> str:
    """The sources as one BibTeX file (empty string for no sources)."""
    if not sources:
        return ""
    library = bibtexparser.Library()
    for source in sources:
        library.add(bibtex_entry(source))
    return bibtexparser.write_string(library)


def export(sources: Sequence[SourceRecord], fmt: str) -> str:
    """The sources in `fmt` ('ris' or 'bibtex')."""
    return to_ris(sources) if check_format(fmt) == "ris" else to_bibtex(sources)


def passage_source_ids(passages: Iterable[Any]) -> list[str]:
    """Source ids of passages, each once, in rank order (what an answer's sources list shows)."""
    ids: dict[str, None] = {}
    for p in passages:
        sid = (getattr(p, "source", None) or {}).get("id") or p.chunk.doc_id
        ids.setdefault(str(sid), None)
    return list(ids)
