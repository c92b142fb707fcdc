"""Conversation state of the chat shell, testable without a terminal.

A `ChatSession` holds the turns of one conversation, the active filters and retrieval mode, and
the pages of results of the current question, and writes the transcript as Markdown with a
numbered reference list. The shell only draws what it returns. The command and `/filter` syntax
is in `chat_commands.py`, the plain-text views in `chat_text.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .assistant import Assistant
from .chat_commands import (
    COMMAND_NAMES,
    COMMANDS,
    command_hint,
    parse_command,
    parse_filter,
)
from .chat_text import format_answer, format_context, format_passages, passage_label, source_row
from .citation import citation
from .citation_export import SUFFIXES, check_format, export
from .currency import AFTER_REVIEW_LABEL, describe_stamp, is_after_review
from .errors import InputError
from .types import MODES, Answer, Filters, Passage

DISCLAIMER = (
    "This tool retrieves and quotes published literature on neuroendocrine liver metastases. "
    "It is not a substitute for clinical judgement: check the cited sources before acting."
)

__all__ = [  # the command syntax and plain-text views live beside; imported from here too
    "COMMANDS", "COMMAND_NAMES", "DISCLAIMER", "ChatSession", "Turn", "command_hint",
    "format_answer", "format_context", "format_passages", "parse_command",
    "parse_filter", "passage_label", "source_row",
]  # fmt: skip
_MARKER_RE = re.compile(r"\[(\d+)\]")


@dataclass
class Turn:
    """One question of the conversation and every page of results shown for it."""

    question: str
    answer: Answer
    history: list[dict[str, str]]  # the conversation before this question
    filters: Filters
    mode: str
    pages: list[list[Passage]] = field(default_factory=list)

    @property
    def passages(self) -> list[Passage]:
        """Every passage shown for this question, in rank order."""
        return [p for page in self.pages for p in page]


class ChatSession:
    """One conversation with the assistant: turns, filters, mode and paging."""

    def __init__(self, assistant: Assistant, k: int | None = None, mode: str | None = None) -> None:
        self.assistant = assistant
        self.k = k or assistant.settings.top_k
        self.mode = mode or assistant.settings.mode
        if self.mode not in MODES:
            raise InputError(f"unknown mode '{self.mode}'", f"use one of: {', '.join(MODES)}")
        self.filters = Filters()
        self.turns: list[Turn] = []

    # ---------------------------------------------------------------- state
    @property
    def history(self) -> list[dict[str, str]]:
        """The conversation as role/content messages (what the HTTP API takes)."""
        out: list[dict[str, str]] = []
        for turn in self.turns:
            out.append({"role": "user", "content": turn.question})
            ans = turn.answer
            out.append({"role": "assistant", "content": ans.answer or ans.message or ""})
        return out

    @property
    def last(self) -> Turn | None:
        """The current question's turn, if any."""
        return self.turns[-1] if self.turns else None

    def new(self) -> None:
        """Forget the conversation (filters and mode are kept)."""
        self.turns.clear()

    def set_mode(self, mode: str) -> str:
        """Switch the retrieval mode for the next questions."""
        mode = mode.strip().lower()
        if mode not in MODES:
            raise InputError(f"unknown mode '{mode}'", f"use /mode {'|'.join(MODES)}")
        self.mode = mode
        return mode

    def set_filter(self, text: str) -> Filters:
        """Apply `/filter` arguments (replacing the previous filters); `off` clears them."""
        self.filters = parse_filter(text)
        return self.filters

    # ---------------------------------------------------------------- asking
    def ask(self, question: str) -> Answer:
        """Answer a question in the context of the conversation so far."""
        history = self.history
        answer = self.assistant.ask(
            question, k=self.k, mode=self.mode, history=history, filters=self.filters
        )
        turn = Turn(
            question=answer.question,
            answer=answer,
            history=history,
            filters=self.filters,
            mode=self.mode,
            pages=[answer.passages],
        )
        self.turns.append(turn)
        return answer

    def more(self) -> list[Passage]:
        """The next page of passages for the last question (empty when there are no more)."""
        turn = self.last
        if turn is None:
            raise InputError("there is no question yet", "ask one first, then /more")
        offset = len(turn.passages)
        passages = self.assistant.search(
            turn.answer.query, k=self.k, mode=turn.mode, filters=turn.filters, offset=offset
        )
        if passages:
            turn.pages.append(passages)
        return passages

    def passage(self, n: int | str) -> Passage:
        """Passage number `n` of the current question (any page shown so far)."""
        turn = self.last
        if turn is None:
            raise InputError("there is no answer yet", "ask a question first, then /show N")
        shown = turn.passages
        try:
            number = int(str(n).strip().lstrip("[").rstrip("]"))
        except ValueError:
            raise InputError(
                f"'/show {n}' needs a passage number", f"e.g. /show 1 (1–{len(shown)})"
            ) from None
        for p in shown:
            if p.rank == number:
                return p
        span = f"1–{len(shown)}" if shown else "none"
        raise InputError(f"there is no passage {number}", f"the passages shown are {span}")

    def show(self, n: int | str) -> dict[str, Any]:
        """Passage `n` in its place in the source: section, surrounding text, full citation.

        A citation label shown in the passages ("/show Le Treut 2013") or a source id opens
        that source instead: its citation and summary.
        """
        number = str(n).strip().lstrip("[").rstrip("]")
        doc_id = None if number.isdigit() else self.assistant.find_reference(number)
        if doc_id is not None:
            source = self.assistant.source(doc_id)
            body = source.get("text") or ""
            return {
                "rank": source.get("label") or doc_id,
                "citation": citation(source),
                "source": source,
                "section": "Summary" if source.get("summary") else "Note",
                "page": None,
                "before": "",
                "text": source.get("summary") or body[:1200],
                "after": "",
            }
        p = self.passage(n)
        out = self.assistant.context(p.chunk.id)
        out["rank"] = p.rank
        out["citation"] = citation(out["source"])
        return out

    def rephrase_hint(self, answer: Answer) -> str:
        """What to try after an abstention, given the conversation state."""
        tips = []
        if not self.filters.is_empty():
            tips.append(f"widen or remove the filter ({self.filters.describe()}): /filter off")
        if answer.query != answer.question:
            tips.append("ask the full question instead of a follow-up, or /new to start over")
        if self.mode != "hybrid":
            tips.append("try /mode hybrid")
        tips.append("name the treatment, tumour site or outcome you mean")
        return "; ".join(tips)

    def full_source(self, p: Passage) -> dict[str, Any]:
        """The complete metadata of a passage's source (volume, pages…) when the index has it."""
        try:
            return dict(self.assistant.index.sources.get(p.chunk.doc_id) or p.source)
        except Exception:  # noqa: BLE001 - fall back to what the passage carries
            return dict(p.source)

    def sources(self) -> list[tuple[list[int], dict[str, Any]]]:
        """The current question's sources, once each: (passage numbers, full metadata)."""
        turn = self.last
        if turn is None:
            raise InputError("there are no sources yet", "ask a question first, then /sources")
        grouped: dict[str, tuple[list[int], dict[str, Any]]] = {}
        for p in turn.passages:
            entry = grouped.setdefault(p.chunk.doc_id, ([], self.full_source(p)))
            entry[0].append(p.rank)
        return list(grouped.values())

    def cite(self, arg: str) -> tuple[str, Path | None]:
        """`/cite ris|bibtex [FILE]`: the sources of the last answer (the passages it was given,
        one entry per source) as RIS or BibTeX; written to FILE when one is named.

        Returns (text, path written or None). FILE gets .ris/.bib when it has no suffix; an
        existing file or a folder is refused, never overwritten.
        """
        fmt_text, _, file = arg.strip().partition(" ")
        if not fmt_text:
            raise InputError("/cite needs a format", "e.g. /cite ris or /cite bibtex refs.bib")
        fmt = check_format(fmt_text)
        turn = self.last
        if turn is None:
            raise InputError("there is no answer to cite yet", "ask a question first, then /cite")
        if turn.answer.abstained:
            raise InputError(
                "the last question has no answer, so there are no sources to cite",
                "/sources lists the closest passages; rephrase the question and ask again",
            )
        records: dict[str, dict[str, Any]] = {}
        for p in turn.pages[0] if turn.pages else []:
            records.setdefault(p.chunk.doc_id, self.full_source(p))
        text = export(list(records.values()), fmt)
        file = file.strip().strip("'\"")
        if not file:
            return text, None
        target = Path(file).expanduser()
        if not target.suffix and not target.is_dir():
            target = target.with_suffix(SUFFIXES[fmt])
        if target.is_dir():
            raise InputError(f"{target} is a folder", f"give a file name, e.g. refs{SUFFIXES[fmt]}")
        if target.exists():
            raise InputError(
                f"{target} already exists; it was not overwritten",
                "give a new file name, or delete or rename the old file first",
            )
        if not target.parent.exists():
            raise InputError(
                f"cannot write {target}: the folder {target.parent} does not exist",
                "create it first or give another path",
            )
        try:
            with target.open("x", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise InputError(
                f"cannot write {target}: {exc.strerror}", "choose another path"
            ) from exc
        return text, target

    # ---------------------------------------------------------------- transcript
    def history_rows(self) -> list[tuple[int, str, str]]:
        """(number, question, searched query) for each question so far."""
        return [(i, t.question, t.answer.query) for i, t in enumerate(self.turns, 1)]

    def export_markdown(self, title: str = "Literature search transcript") -> str:
        """The transcript as Markdown: each question and answer with references renumbered
        across the whole conversation, then one numbered reference list."""
        refs: dict[str, int] = {}
        sources: dict[str, dict[str, Any]] = {}

        def ref(p: Passage) -> int:
            sid = str(p.source.get("id") or p.chunk.doc_id)
            if sid not in refs:
                refs[sid] = len(refs) + 1
                sources[sid] = self.full_source(p)
            return refs[sid]

        lines = [f"# {title}", ""]
        status = self._status()
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
        lines += [f"_{stamp} · {status}_", "", f"> {DISCLAIMER}", ""]
        if not self.turns:
            lines += ["_No questions were asked._", ""]
        for i, turn in enumerate(self.turns, 1):
            ans = turn.answer
            by_rank = {p.rank: p for p in turn.passages}
            lines += [f"## {i}. {turn.question}", ""]
            notes = []
            if ans.query != turn.question:
                notes.append(f"searched: “{ans.query}”")
            if not turn.filters.is_empty():
                notes.append(f"filters: {turn.filters.describe()}")
            if notes:
                lines += ["_" + " · ".join(notes) + "_", ""]
            if ans.abstained or not ans.answer:
                lines += [f"**No answer.** {ans.message or ''}".strip(), ""]
            else:

                def renumber(m: re.Match[str], by_rank: dict[int, Passage] = by_rank) -> str:
                    p = by_rank.get(int(m.group(1)))
                    return f"[{ref(p)}]" if p is not None else m.group(0)

                lines += [_MARKER_RE.sub(renumber, ans.answer), ""]
            cited = sorted({ref(p) for p in turn.passages})
            if cited:
                lines += ["Passages retrieved from: " + ", ".join(f"[{n}]" for n in cited), ""]
        if refs:
            lines += ["## References", ""]
            for sid, n in refs.items():
                newer = (
                    f" _({AFTER_REVIEW_LABEL})_"
                    if is_after_review(sources[sid].get("year"))
                    else ""
                )
                lines.append(f"{n}. {citation(sources[sid])}{newer}")
            lines.append("")
        return "\n".join(lines)

    def export(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the Markdown transcript to `path` (`.md` added when there is no suffix).

        A folder is refused, and so is an existing file unless `overwrite` (`/export FILE --force`).
        """
        if not str(path).strip():
            raise InputError("/export needs a file name", "e.g. /export note.md")
        target = Path(str(path).strip()).expanduser()
        if target.is_dir():
            raise InputError(f"{target} is a folder", "give a file name, e.g. note.md")
        if not target.suffix:
            target = target.with_suffix(".md")
        if not target.parent.exists():
            raise InputError(
                f"cannot write {target}: the folder {target.parent} does not exist",
                "create it first or give another path",
            )
        if target.is_dir():
            raise InputError(f"{target} is a folder", "give a file name, e.g. note.md")
        if target.exists() and not overwrite:
            raise InputError(
                f"{target} exists already; nothing written",
                f"give another name, or replace it: /export {path} --force",
            )
        try:
            with target.open("w" if overwrite else "x", encoding="utf-8") as fh:
                fh.write(self.export_markdown())
        except FileExistsError as exc:
            raise InputError(f"{target} exists already; nothing written",
                             "give another name") from exc  # fmt: skip
        except OSError as exc:
            raise InputError(
                f"cannot write {target}: {exc.strerror}", "choose another path"
            ) from exc
        return target

    def _status(self) -> str:
        try:
            st = self.assistant.status()
        except Exception:  # noqa: BLE001 - the transcript is still worth writing
            return "corpus unknown"
        stamp = f", {describe_stamp(st['corpus'])}" if st.get("corpus") else ""
        return f"corpus {st['corpus_dir']} ({st['sources']} sources{stamp}), model {st['model']}"
