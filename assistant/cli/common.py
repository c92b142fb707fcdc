"""Options, error handling and progress display shared by the commands."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from ..assistant import Assistant
from ..errors import AssistantError, CorpusError
from ..settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)

CorpusOpt = Annotated[
    Path | None,
    typer.Option(
        "--corpus",
        help="Corpus folder [env ASSISTANT_CORPUS_DIR; default corpus/].",
        show_default=False,
    ),  # fmt: skip
]
IndexOpt = Annotated[
    Path | None,
    typer.Option(
        "--index",
        help="Index folder [env ASSISTANT_INDEX_DIR; default index/].",
        show_default=False,
    ),  # fmt: skip
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode",
        help="Retrieval mode: hybrid, dense or bm25 [default: setting].",
        show_default=False,
    ),  # fmt: skip
]
KOpt = Annotated[
    int | None,
    typer.Option(
        "-k",
        "--top-k",
        min=1,
        max=50,
        help="Passages to return [default: setting].",
        show_default=False,
    ),  # fmt: skip
]
NoRebuildOpt = Annotated[
    bool,
    typer.Option("--no-rebuild", help="Use the index as it is even if the corpus changed."),
]

T = TypeVar("T")


def settings_from(corpus: Path | None, index: Path | None, **overrides: Any) -> Settings:
    """Settings with CLI flags on top of environment and defaults; errors become one line."""
    try:
        return load_settings(corpus_dir=corpus, index_dir=index, **overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise AssistantError(
            f"invalid setting {field}: {first.get('msg')}",
            f"check ASSISTANT_{field.upper()} or the matching flag",
        ) from exc


def fail(exc: BaseException, debug: bool) -> None:
    """Print a user error on stderr (one line each) and exit 1; a traceback only with --debug."""
    if debug:
        err_console.print_exception()
    if isinstance(exc, CorpusError):
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
    elif isinstance(exc, AssistantError):
        hint = f" — {exc.hint}" if exc.hint else ""
        print(f"error: {exc.message}{hint}", file=sys.stderr)
    else:
        print(f"error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
    raise typer.Exit(1)


def guarded(debug: bool, fn: Callable[[], T]) -> T:
    """Run `fn`, turning every exception into a clear one-line message and exit code 1."""
    try:
        return fn()
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - the CLI boundary
        fail(exc, debug)
        raise  # unreachable


STAGE_LABELS = {
    "load-model": "Loading the embedding model",
    "load-corpus": "Reading the corpus",
    "embed": "Embedding passages",
    "bm25": "Building the BM25 index",
}


@contextmanager
def progress_display(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A stage-progress callback drawing Rich bars on stderr (a no-op when disabled)."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(STAGE_LABELS.get(stage, stage), total=total)
        progress.update(tasks[stage], completed=done, total=total)

    with progress:
        yield update


def open_assistant(settings: Settings, no_rebuild: bool = False) -> Assistant:
    """An Assistant with its index loaded (rebuilt if stale, with progress bars on a terminal).

    Warnings (a stale index used as it is, files that are not notes) go to stderr.
    """
    with progress_display(sys.stderr.isatty()) as progress:
        assistant = Assistant(settings, progress=progress)
        assistant.load(rebuild=False if no_rebuild else None)
    assistant.progress = None
    print_warnings(assistant.warnings)
    return assistant


def print_warnings(warnings: list[str]) -> None:
    """Each warning as one line on stderr."""
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
