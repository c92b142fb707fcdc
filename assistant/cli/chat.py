"""`assistant chat`: a conversational terminal shell over the ChatSession (thin: it only draws)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.text import Text

from ..assistant import Assistant
from ..chat_session import (
    COMMANDS,
    DISCLAIMER,
    ChatSession,
    command_hint,
    format_answer,
    format_context,
    format_passages,
    parse_command,
)
from ..currency import describe_stamp
from ..errors import AssistantError
from ..settings import Settings
from .app import app
from .common import (
    STAGE_LABELS,
    KOpt,
    ModeOpt,
    NoRebuildOpt,
    err_console,
    print_warnings,
    with_settings,
)
from .render import (
    commands_table,
    context_panel,
    full_sources_table,
    history_table,
    passage_panel,
    plain_commands,
    plain_history,
    plain_sources,
    query_terms,
    render_answer,
    sources_table,
)

APP_NAME = "net-liver-assistant"
PROMPT = "ask› "


# ----------------------------------------------------------------- start-up feedback
@contextmanager
def loading_display(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """Stage callback: a spinner while the model loads, a progress bar while the index builds."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    progress = Progress(
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        console=err_console,
        transient=True,
    )
    tasks: dict[str, Any] = {}
    spin_only = {"load-model", "load-corpus"}

    def update(stage: str, done: int, total: int) -> None:
        label = STAGE_LABELS.get(stage, stage)
        if stage == "resume":  # a build taking up the batches an interrupted one embedded
            progress.console.print(f"resuming: {done} of {total} chunks already embedded")
            return
        if stage in spin_only:
            if stage not in tasks:
                tasks[stage] = progress.add_task(label + "…", total=None, count="")
            if done >= total:  # a full bar stays until the next stage draws its own
                progress.update(tasks[stage], total=1, completed=1, description=label)
            progress.refresh()  # draw now: loading the model holds the GIL for seconds
            return
        count = f"{done}/{total}"
        if stage not in tasks:
            tasks[stage] = progress.add_task(label, total=total, count=count)
        progress.update(tasks[stage], completed=done, total=total, count=count)

    with progress:
        yield update


def history_path(settings: Settings) -> Path:
    """Where the shell keeps its input history."""
    if settings.chat_history_file is not None:
        return settings.chat_history_file
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME)) / "chat_history"


# ----------------------------------------------------------------- the shell
class Shell:
    """Reads lines, runs commands and questions on a ChatSession, draws the results."""

    def __init__(self, session: ChatSession, console: Console, plain: bool, debug: bool) -> None:
        self.session = session
        self.console = console
        self.plain = plain
        self.debug = debug

    # -- output helpers
    def out(self, text: str, style: str | None = None) -> None:
        if self.plain:
            print(text, flush=True)
        else:
            self.console.print(Text(text, style=style or ""))

    def error(self, exc: AssistantError) -> None:
        hint = f" — {exc.hint}" if exc.hint else ""
        if self.plain:
            print(f"error: {exc.message}{hint}", file=sys.stderr, flush=True)
        else:
            self.console.print(Text(f"error: {exc.message}{hint}", style="red"))

    # -- one line
    def handle(self, line: str) -> bool:
        """Run one input line; False when the shell should exit."""
        line = line.strip()
        if not line:
            return True
        try:
            if line.startswith("/"):
                return self.command(line)
            self.ask(line)
        except AssistantError as exc:
            self.error(exc)
        except KeyboardInterrupt:
            self.out("cancelled", "yellow")
        except Exception as exc:  # noqa: BLE001 - one bad turn must not end the conversation
            if self.debug:
                self.console.print_exception()
            self.error(AssistantError(f"{type(exc).__name__}: {exc}", "run with --debug"))
        return True

    def ask(self, question: str) -> None:
        answer = self.session.ask(question)
        hint = self.session.rephrase_hint(answer) if answer.abstained else None
        if self.plain:
            print(f"Q: {answer.question}")
            print(format_answer(answer, hint), end="\n\n", flush=True)
            return
        render_answer(self.console, answer)
        if hint:
            self.console.print(Text(f"Try: {hint}", style="yellow"))
        if answer.passages:
            self.console.print(
                Text("/show N for a passage in context · /more for more · /help", style="dim")
            )

    def command(self, line: str) -> bool:
        """Run one slash command (see SLASH_COMMANDS); False for /quit."""
        name, arg = parse_command(line)
        if name in QUIT_COMMANDS:
            return False
        run = SLASH_COMMANDS.get(name)
        if run is None:
            self.out(command_hint(name), "yellow")
        else:
            run(self, arg)
        return True

    def show(self, plain: str, rich: Any) -> None:
        """Print `plain` text in plain mode, else the Rich renderable."""
        if not self.plain:
            self.console.print(rich)
        elif plain:
            print(plain, flush=True)

    def terms(self) -> list[str]:
        """The words of the last query, to highlight."""
        return query_terms(self.session.last.answer.query) if self.session.last else []

    # -- the slash commands
    def help_cmd(self, arg: str) -> None:
        self.show(plain_commands(COMMANDS), commands_table(COMMANDS))

    def sources_cmd(self, arg: str) -> None:
        rows = self.session.sources()
        self.show(plain_sources(rows), full_sources_table(rows))

    def show_cmd(self, arg: str) -> None:
        ctx = self.session.show(arg)
        self.show(format_context(ctx), context_panel(ctx, self.terms()))

    def more_cmd(self, arg: str) -> None:
        passages = self.session.more()
        if not passages:
            self.out("No more results for this question.", "yellow")
            return
        title = f"More results ({passages[0].rank}–{passages[-1].rank})"
        self.show(format_passages(passages), Group(sources_table(passages, title=title),
                  *(passage_panel(p, self.terms()) for p in passages)))  # fmt: skip

    def filter_cmd(self, arg: str) -> None:
        if arg:
            self.session.set_filter(arg)
        self.out(f"filters: {self.session.filters.describe()}", "cyan")

    def mode_cmd(self, arg: str) -> None:
        if arg:
            self.session.set_mode(arg)
        self.out(f"mode: {self.session.mode}", "cyan")

    def history_cmd(self, arg: str) -> None:
        asked = self.session.history_rows()
        if not asked:
            self.out("No questions yet.", "yellow")
            return
        self.show(plain_history(asked), history_table(asked))

    def export_cmd(self, arg: str) -> None:
        force = arg.split()[-1:] == ["--force"]
        where = arg.rsplit("--force", 1)[0].strip() if force else arg
        path = self.session.export(where, overwrite=force)
        self.out(f"transcript written to {path}", "green")

    def cite_cmd(self, arg: str) -> None:
        text, written = self.session.cite(arg)
        if written is not None:
            self.out(f"references written to {written}", "green")
        elif self.plain:
            print(text, end="", flush=True)
        else:
            self.console.print(Text(text), markup=False, highlight=False, soft_wrap=True)

    def new_cmd(self, arg: str) -> None:
        self.session.new()
        self.out("New conversation: earlier questions are forgotten.", "cyan")

    # -- loops
    def run_plain(self, lines: Any) -> None:
        """Handle each line; bytes are decoded as UTF-8, undecodable ones kept for the error."""
        for line in lines:
            if isinstance(line, bytes):
                line = line.decode("utf-8", "surrogateescape")
            if not self.handle(line):
                break

    def run_interactive(self, history_file: Path | None) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
        from prompt_toolkit.completion import WordCompleter
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        history: Any = InMemoryHistory()
        if history_file is not None:
            try:
                history_file.parent.mkdir(parents=True, exist_ok=True)
                history = FileHistory(str(history_file))
            except OSError as exc:
                self.out(f"input history not saved ({history_file}: {exc.strerror})", "yellow")
        names = [c.split()[0] for c in COMMANDS]
        prompt: PromptSession[str] = PromptSession(
            history=history,
            auto_suggest=AutoSuggestFromHistory(),
            completer=WordCompleter(names, sentence=True),
            complete_while_typing=False,
        )

        def toolbar() -> str:
            s = self.session
            return (
                f" mode {s.mode} · k {s.k} · filters {s.filters.describe()} · "
                f"{len(s.turns)} question(s) · /help · Ctrl-D quits"
            )

        while True:
            try:
                line = prompt.prompt(PROMPT, bottom_toolbar=toolbar)
            except KeyboardInterrupt:
                continue  # Ctrl-C cancels the line being typed
            except EOFError:
                break
            if not self.handle(line):
                break
        self.out("Goodbye.", "dim")


QUIT_COMMANDS = frozenset({"/quit", "/exit", "/q"})
# every slash command but the quit ones (their help text is in chat_session.COMMANDS)
SLASH_COMMANDS: dict[str, Callable[[Shell, str], None]] = {
    "/help": Shell.help_cmd,
    "/?": Shell.help_cmd,
    "/sources": Shell.sources_cmd,
    "/show": Shell.show_cmd,
    "/more": Shell.more_cmd,
    "/filter": Shell.filter_cmd,
    "/mode": Shell.mode_cmd,
    "/history": Shell.history_cmd,
    "/export": Shell.export_cmd,
    "/cite": Shell.cite_cmd,
    "/new": Shell.new_cmd,
}


def banner(assistant: Assistant) -> str:
    """One line: which corpus, index and model are loaded."""
    st = assistant.status()
    model = str(st["model"]).rsplit("/", 1)[-1]
    return (
        f"NET liver assistant · corpus {st['corpus_dir']} · {st['sources']} sources, "
        f"{st['chunks']} chunks · index {st['index_dir']} · model {model} · "
        f"{describe_stamp(st['corpus'], count=False)}"
    )


@app.command("chat")
@with_settings(overrides=lambda o: {"chat_save_history": False} if o["no_history"] else {})
def chat_cmd(
    settings: Settings,
    mode: ModeOpt = None,
    k: KOpt = None,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="Do not save input history between sessions.")
    ] = False,
    no_rebuild: NoRebuildOpt = False,
) -> None:
    """A conversational shell: ask questions, follow up, page, filter, export (type /help)."""
    interactive = sys.stdin.isatty()
    console = Console(highlight=False) if interactive else Console(no_color=True)
    if interactive:
        console.print(Panel(Text(DISCLAIMER), border_style="yellow", title="Reminder"))
    else:
        print(f"note: {DISCLAIMER}", file=sys.stderr)
    with loading_display(interactive or sys.stderr.isatty()) as progress:
        assistant = Assistant(settings, progress=progress)
        assistant.load(rebuild=False if no_rebuild else None)
    session = ChatSession(assistant, k=k, mode=mode)
    print_warnings(assistant.warnings)
    built = assistant.last_build
    if interactive:
        console.print(Text(banner(assistant), style="bold"))
        if built is not None:
            console.print(Text(
                f"index built in {built.seconds:.1f} s ({built.embedded_chunks} chunks "
                "embedded)", style="dim"))  # fmt: skip
        console.print(Text("Type a question, or /help. Ctrl-D quits.", style="dim"))
        shell = Shell(session, console, plain=False, debug=settings.debug)
        path = history_path(settings) if settings.chat_save_history else None
        shell.run_interactive(path)
    else:
        print(banner(assistant), file=sys.stderr)
        stdin = getattr(sys.stdin, "buffer", sys.stdin)  # bytes: invalid UTF-8 is one error
        Shell(session, console, plain=True, debug=settings.debug).run_plain(stdin)
