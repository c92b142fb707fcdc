"""`assistant corpus ...`: add papers (PDF, PubMed/PMC XML, Markdown, text), list, show, remove."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..ingest import AddReport, CorpusStore, Overrides, client_from_settings
from ..settings import Settings
from .app import app
from .common import console, with_settings

corpus_app = typer.Typer(
    help="Manage the corpus: add papers (PDF, PubMed/PMC XML, Markdown, text), list, show, remove.",
    no_args_is_help=True,
)
app.add_typer(corpus_app, name="corpus")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store(settings: Settings) -> CorpusStore:
    """The corpus store with the configured size limits."""
    return CorpusStore(settings.corpus_dir, settings.max_note_bytes, settings.max_sidecar_bytes)


def _print_add_report(report: AddReport, json_out: bool) -> None:
    """The added documents on stdout, refusals and warnings on stderr; exit 1 if any refusal."""
    if json_out:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        for row in report.added:
            pages = f", {row['pages']} pages" if row.get("pages") else ""
            console.print(
                f"added [bold]{escape(row['id'])}[/] ({row['source_type']}, {row['year']}{pages})"
                f" from {escape(row['source'])}"
            )
        if report.added:
            console.print(
                f"{len(report.added)} document(s) added; update the index with: assistant index",
                style="dim",
            )
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line in report.refused:
        print(f"error: {line}", file=sys.stderr)
    if report.refused:
        print(f"{len(report.refused)} input(s) refused; {len(report.added)} added", file=sys.stderr)
        raise typer.Exit(1)


@corpus_app.command("add")
@with_settings(index=False)
def add_cmd(
    settings: Settings,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to add.")],
    title: Annotated[str | None, typer.Option("--title", help="Title (one file only).")] = None,
    year: Annotated[int | None, typer.Option("--year", help="Publication year.")] = None,
    doi: Annotated[str | None, typer.Option("--doi", help="DOI (one file only).")] = None,
    pmid: Annotated[str | None, typer.Option("--pmid", help="PMID (one file only).")] = None,
    source_type: Annotated[
        str | None,
        typer.Option("--type", help="Source type: review, guideline, rct, meta-analysis, ..."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Add papers: PDF, PubMed efetch XML, PMC/JATS XML, Markdown notes, plain text.

    Metadata comes from the file; complete it with the flags or a sidecar `<file>.yaml`.
    """
    overrides = Overrides(title, year, doi, pmid, source_type)
    report = _store(settings).add(paths, overrides)
    _print_add_report(report, json_out)


@corpus_app.command("fetch-pubmed")
@with_settings(index=False)
def fetch_cmd(
    settings: Settings,
    pmids: Annotated[list[str], typer.Argument(help="PubMed ids.")],
    json_out: JsonOpt = False,
) -> None:
    """Fetch PubMed records (title, abstract, metadata) through NCBI E-utilities and add them.

    Settings: ASSISTANT_NCBI_API_KEY, ASSISTANT_NCBI_EMAIL, ASSISTANT_PUBMED_BASE_URL.
    """
    records, refused = client_from_settings(settings).fetch(pmids)
    _print_add_report(_store(settings).add_records(records, refused), json_out)


@corpus_app.command("list")
@with_settings(index=False)
def list_cmd(
    settings: Settings,
    json_out: JsonOpt = False,
) -> None:
    """A table of the corpus: id, type, year, title, chunks."""
    store = _store(settings)
    rows = store.documents(settings.chunk_max_tokens, settings.chunk_overlap_tokens)
    _, problems = store.scan()
    if json_out:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        n_added = sum(1 for r in rows if r["added"])
        table = Table(title=f"{len(rows)} documents ({n_added} added) in {settings.corpus_dir}")
        for col in ("id", "type", "year", "title", "chunks"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(escape(r["id"]), r["source_type"], str(r["year"]),
                          escape(r["title"]), str(r["chunks"]))  # fmt: skip
        console.print(table)
    for line in problems:
        print(f"warning: {line}", file=sys.stderr)


@corpus_app.command("show")
@with_settings(index=False)
def show_cmd(
    settings: Settings,
    doc_id: Annotated[str, typer.Argument(help="Document id (see `assistant corpus list`).")],
    json_out: JsonOpt = False,
) -> None:
    """One document: metadata, provenance, sections and text."""
    info = _store(settings).show(doc_id, settings.chunk_max_tokens, settings.chunk_overlap_tokens)
    if json_out:
        print(json.dumps(info, ensure_ascii=False, default=str))
        return
    table = Table(show_header=False, title=escape(info["title"]), title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key in ("id", "source_type", "year", "authors", "journal", "volume", "page_range",
                "pmid", "doi", "url", "path", "chunks", "pages"):  # fmt: skip
        value = info.get(key)
        if value in (None, "", []):
            continue
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        table.add_row(key, escape(str(value)))
    extra = info.get("extra") or {}
    for key, value in (extra.get("provenance") or {}).items():
        table.add_row(f"provenance.{key}", escape(str(value)))
    if extra.get("page_count"):
        table.add_row("page count", str(extra["page_count"]))
    console.print(table)
    if info["sections"]:
        console.print("sections: " + escape(" | ".join(info["sections"])), style="dim")
    console.print(escape(info["text"]))


@corpus_app.command("remove")
@with_settings(index=False)
def remove_cmd(
    settings: Settings,
    doc_id: Annotated[str, typer.Argument(help="Id of a document added with `corpus add`.")],
) -> None:
    """Remove a document added with `assistant corpus add` (the next index drops it)."""
    path = _store(settings).remove(doc_id)
    console.print(f"removed {escape(doc_id)} ({escape(str(path))}); update the index with: "
                  "assistant index")  # fmt: skip
