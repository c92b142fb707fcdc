"""Options, error handling and progress display shared by the commands."""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..assistant import Assistant
from ..errors import AssistantError, CorpusError
from ..settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


def setting_option(*names: str, help: str, **limits: Any) -> Any:
    """A flag over a setting: its help names the environment variable and the default, so
    Typer's own default (None: the setting decides) is not shown."""
    return typer.Option(*names, help=help, show_default=False, **limits)


CorpusOpt = Annotated[
    Path | None,
    setting_option("--corpus", help="Corpus folder [env ASSISTANT_CORPUS_DIR; default corpus/]."),
]
IndexOpt = Annotated[
    Path | None,
    setting_option("--index", help="Index folder [env ASSISTANT_INDEX_DIR; default index/]."),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
ModeOpt = Annotated[
    str | None,
    setting_option("--mode", help="Retrieval mode: hybrid, dense or bm25 [default: setting]."),
]
KOpt = Annotated[
    int | None,
    setting_option("-k", "--top-k", min=1, max=50, help="Passages to return [default: setting]."),
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


def with_settings(
    *,
    corpus: bool = True,
    index: bool = True,
    debug_setting: bool = True,
    overrides: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Callable[[Callable[..., int | None]], Callable[..., None]]:
    """The preamble every command shares, as a decorator under `@app.command(...)`.

    The command takes `settings: Settings` as its first parameter; the decorator adds the
    `--corpus` and `--index` options (unless switched off) and `--debug`, builds the settings
    (flags > ASSISTANT_* environment > defaults, plus `overrides(options)` and the debug flag
    unless `debug_setting` is False) and runs the command under `guarded`: an error is one line
    on stderr and exit 1. A command may return an exit code of its own.
    """

    def decorate(fn: Callable[..., int | None]) -> Callable[..., None]:
        hints = typing.get_type_hints(fn, include_extras=True)
        params = [p.replace(annotation=hints.get(p.name, p.annotation))
                  for p in inspect.signature(fn).parameters.values()][1:]  # fmt: skip
        common = {
            "corpus": (CorpusOpt, None),
            "index": (IndexOpt, None),
            "debug": (DebugOpt, False),
        }
        wanted = [n for n, on in (("corpus", corpus), ("index", index), ("debug", True)) if on]
        params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=common[n][1],
                                     annotation=common[n][0]) for n in wanted]  # fmt: skip

        def command(**options: Any) -> None:
            folders = {"corpus": options.pop("corpus", None), "index": options.pop("index", None)}
            debug = bool(options.pop("debug"))

            def run() -> int | None:
                extra = overrides(options) if overrides else {}
                if debug_setting:
                    extra["debug"] = debug
                settings = settings_from(folders["corpus"], folders["index"], **extra)
                return fn(settings, **options)

            code = guarded(debug, run)
            if code:
                raise typer.Exit(code)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
            setattr(command, attr, getattr(fn, attr))
        return command

    return decorate


STAGE_LABELS = {
    "load-model": "Loading the embedding model",
    "load-corpus": "Reading the corpus",
    "embed": "Embedding passages",
    "bm25": "Building the BM25 index",
    "dense": "Building the dense index",
    "embed-sentences": "Embedding answer sentences",
}


class RateColumn(ProgressColumn):
    """Items per second of a stage (blank until Rich has measured a rate)."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text(f"{speed:,.1f}/s" if speed else "", style="progress.data.speed")


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
        RateColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage == "resume":  # a build taking up the batches an interrupted one embedded
            progress.console.print(f"resuming: {done} of {total} chunks already embedded")
            return
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
