"""Core commands: index, ask, sources, settings."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from ..assistant import Assistant
from ..citation_export import check_format, export, passage_source_ids
from ..errors import InputError
from ..settings import Settings, describe_settings, mask_secret
from ..types import Filters
from .app import app
from .common import (
    KOpt,
    ModeOpt,
    NoRebuildOpt,
    console,
    err_console,
    open_assistant,
    print_warnings,
    progress_display,
    with_settings,
)
from .render import render_answer


@app.command("index")
@with_settings()
def index_cmd(
    settings: Settings,
    force: Annotated[bool, typer.Option("--force", help="Re-embed everything.")] = False,
    compact: Annotated[
        bool,
        typer.Option(
            "--compact",
            help="Merge an incremental delta into a fresh full index (re-embeds nothing new).",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="[ADDRESS]",
            help="Embed on Ray: alone, a Ray started on this machine; with an address (e.g. "
            "auto, ray://head:10001), that cluster. Needs the scale extra (docs/scale.md).",
        ),
    ] = None,
) -> None:
    """Build or update the index (only new or changed sources are re-embedded). An
    interrupted build resumes where it stopped when run again."""
    with progress_display(not json_out) as progress:
        assistant = Assistant(settings, progress=progress)
        report = assistant.build(force=force, ray=ray, compact=compact)
    print_warnings(assistant.warnings)
    store = assistant.store.describe() | dict(getattr(assistant.store, "last_publish", {}))
    if json_out:
        print(json.dumps(report.to_dict() | {"store": store}))
        return
    console.print(
        f"Indexed [bold]{report.documents}[/] sources into [bold]{report.chunks}[/] chunks "
        f"in {report.seconds:.1f} s → {report.index_dir}"
    )
    if store.get("kind") == "milvus":
        console.print(
            f"Milvus {store['uri']}: collection {store['collection']} (alias {store['alias']}); "
            f"copied {store['copied_rows']} rows of unchanged sources, inserted "
            f"{store['inserted_rows']}"
        )
    console.print(
        f"added {len(report.added)}, changed {len(report.changed)}, removed "
        f"{len(report.removed)}; embedded {report.embedded_chunks} chunks, reused "
        f"{report.reused_chunks}"
        + (f", resumed {report.resumed_chunks}" if report.resumed_chunks else "")
    )
    for label, ids in (("added", report.added), ("changed", report.changed),
                       ("removed", report.removed)):  # fmt: skip
        if ids and len(ids) <= 20:
            console.print(f"  {label}: {', '.join(ids)}", style="dim")


@app.command("ask")
@with_settings()
def ask_cmd(
    settings: Settings,
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    k: KOpt = None,
    mode: ModeOpt = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print exactly one JSON object.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only sources published in or after YEAR.", metavar="YEAR"),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Only sources published in or before YEAR.", metavar="YEAR"),
    ] = None,
    cite: Annotated[
        str | None,
        typer.Option(
            "--cite",
            help="Print the answer's sources as ris or bibtex on stdout (the answer goes to "
            "stderr), e.g. --cite ris > refs.ris.",
            metavar="FORMAT",
        ),
    ] = None,
    no_rebuild: NoRebuildOpt = False,
) -> None:
    """Answer one question with cited passages from the literature."""
    filters = year_filters(since, until)
    fmt = check_format(cite) if cite is not None else None
    if fmt and json_out:
        raise InputError(
            "--cite and --json cannot be combined",
            "use --json for the answer object or --cite FORMAT for the references",
        )
    Assistant(settings).validate_question(question)  # before loading anything
    assistant = open_assistant(settings, no_rebuild)
    answer = assistant.ask(question, k=k, mode=mode, filters=filters)
    if json_out:
        sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
    elif fmt:
        render_answer(err_console, answer, show_passages=False)
        if answer.abstained:
            print("note: no answer, so there are no sources to cite", file=sys.stderr)
            return
        records = assistant.source_records(passage_source_ids(answer.passages))
        sys.stdout.write(export(records, fmt))
    else:
        render_answer(console, answer)


def year_filters(since: str | None, until: str | None) -> Filters | None:
    """Filters for `--since` / `--until`, or an InputError naming the flag at fault."""
    years: dict[str, int | None] = {}
    for flag, value in (("--since", since), ("--until", until)):
        if value is None:
            years[flag] = None
            continue
        text = str(value).strip()
        if not (text.isdigit() and len(text) == 4):
            raise InputError(
                f"{flag} '{value}' is not a year", f"give a four-digit year, e.g. {flag} 2013"
            )
        years[flag] = int(text)
    lo, hi = years["--since"], years["--until"]
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"--since {lo} is after --until {hi}", "put the earlier year in --since")
    filters = Filters(year_min=lo, year_max=hi)
    return None if filters.is_empty() else filters


@app.command("sources")
@with_settings()
def sources_cmd(
    settings: Settings,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the indexed sources."""
    with progress_display(sys.stderr.isatty()) as progress:
        assistant = Assistant(settings, progress=progress)
        rows = assistant.sources()
    if json_out:
        print(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title=f"{len(rows)} sources")
    for col in ("id", "type", "year", "title", "chunks"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["id"], r["source_type"], str(r["year"]), r["title"], str(r["chunks"]))
    console.print(table)


@app.command("settings")
@with_settings(corpus=False, index=False, debug_setting=False)
def settings_cmd(
    settings: Settings,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show every setting: its environment variable, current value and description."""
    current = settings.model_dump(mode="json")
    rows = [  # secrets (the API keys) are shown as *** when set
        (env, mask_secret(name, current[name]), default, desc)
        for env, default, desc in describe_settings()
        for name in [env.removeprefix("ASSISTANT_").lower()]
    ]
    if json_out:
        keys = ("env", "value", "default", "description")
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows]))
        return
    table = Table(title="Settings (defaults < ASSISTANT_* environment < command-line flags)")
    table.add_column("environment variable", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("description", overflow="fold")
    for env, value, _, desc in rows:
        table.add_row(env, json.dumps(value), desc)
    console.print(table)
