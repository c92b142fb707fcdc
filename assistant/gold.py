"""The gold question set: load and validate it, and split it into dev and test halves.

A gold file has one JSON object a line: `{"id", "question", "answers": [regex, ...],
"sources": [doc-id, ...], "answerable": bool, "history": [{"role", "content"}], "topic"}`;
`answers`, `sources`, `history` and `topic` may be absent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .metrics import compile_answers
from .settings import PROJECT_ROOT

DEFAULT_GOLD = PROJECT_ROOT / "corpus" / "gold" / "questions.jsonl"
FIELDS = {"id", "question", "answers", "sources", "answerable", "history", "topic"}
GOLD_SPLITS = ("all", "dev", "test")


@dataclass
class GoldQuestion:
    """One validated gold question."""

    id: str
    question: str
    answerable: bool
    answers: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)
    topic: str | None = None
    line: int = 0

    @property
    def patterns(self) -> list[re.Pattern[str]]:
        return compile_answers(self.answers)


def _check_entry(obj: Any, where: str, known: set[str] | None) -> list[str]:
    """Problems of one gold line, each prefixed with `where`."""
    if not isinstance(obj, dict):
        return [f"{where}: expected a JSON object, got {type(obj).__name__}"]
    out = []
    for name in ("id", "question", "answerable"):
        if name not in obj:
            out.append(f"{where}: missing field '{name}'")
    extra = sorted(set(obj) - FIELDS)
    if extra:
        out.append(
            f"{where}: unknown field(s) {', '.join(extra)}; known: {', '.join(sorted(FIELDS))}"
        )
    if "id" in obj and (not isinstance(obj["id"], str) or not obj["id"].strip()):
        out.append(f"{where}: 'id' must be a non-empty string")
    if "question" in obj and (not isinstance(obj["question"], str) or not obj["question"].strip()):
        out.append(f"{where}: 'question' must be a non-empty string")
    if "answerable" in obj and not isinstance(obj["answerable"], bool):
        out.append(f"{where}: 'answerable' must be true or false")
    if "topic" in obj and obj["topic"] is not None and not isinstance(obj["topic"], str):
        out.append(f"{where}: 'topic' must be a string")
    for name in ("answers", "sources"):
        value = obj.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            out.append(f"{where}: '{name}' must be a list of non-empty strings")
    answers = obj.get("answers", [])
    if isinstance(answers, list):
        for pattern in answers:
            if not isinstance(pattern, str):
                continue
            try:
                re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                out.append(f"{where}: bad regular expression {pattern!r} in 'answers': {exc}")
    sources = obj.get("sources", [])
    if known is not None and isinstance(sources, list):
        for doc_id in sources:
            if isinstance(doc_id, str) and doc_id not in known:
                out.append(f"{where}: unknown source id '{doc_id}' (list ids: assistant sources)")
    history = obj.get("history", [])
    if not isinstance(history, list):
        out.append(f"{where}: 'history' must be a list of {{role, content}} turns")
    else:
        for i, turn in enumerate(history, start=1):
            if (
                not isinstance(turn, dict)
                or turn.get("role") not in ("user", "assistant")
                or not isinstance(turn.get("content"), str)
            ):
                out.append(
                    f'{where}: history turn {i} must be {{"role": "user"|"assistant", '
                    f'"content": text}}'
                )
    return out


def load_gold(path: Path, known_sources: set[str] | None = None) -> list[GoldQuestion]:
    """Read and validate a gold file; an InputError names the line of every problem.

    With `known_sources`, every id in `sources` must be one of them.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"gold file {path} not found", "pass one with --gold FILE")
    problems: list[str] = []
    questions: list[GoldQuestion] = []
    seen: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8", "save the gold file as UTF-8") from exc
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        found = _check_entry(obj, where, known_sources)
        if not found and obj["id"] in seen:
            found = [f"{where}: duplicate id '{obj['id']}' (first on line {seen[obj['id']]})"]
        if found:
            problems.extend(found)
            continue
        seen[obj["id"]] = n
        questions.append(
            GoldQuestion(
                id=obj["id"],
                question=obj["question"],
                answerable=obj["answerable"],
                answers=list(obj.get("answers", [])),
                sources=list(obj.get("sources", [])),
                history=[dict(t) for t in obj.get("history", [])],
                topic=obj.get("topic"),
                line=n,
            )
        )
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        head = (
            shown if len(problems) == 1 else f"{len(problems)} problems in the gold file: {shown}"
        )
        raise InputError(head, "fix the lines named and run again")
    if not questions:
        raise InputError(f"gold file {path} holds no questions", "write one JSON object a line")
    return questions


def gold_split(question_id: str) -> str:
    """'dev' or 'test' by a fixed rule: the parity of the first byte of sha256(id)."""
    return "dev" if hashlib.sha256(question_id.encode()).digest()[0] % 2 == 0 else "test"


def select_split(questions: Sequence[GoldQuestion], split: str) -> list[GoldQuestion]:
    """The questions of one half of the gold set (`all` keeps every question)."""
    if split not in GOLD_SPLITS:
        raise InputError(f"unknown gold split '{split}'", f"use one of: {', '.join(GOLD_SPLITS)}")
    return [q for q in questions if split == "all" or gold_split(q.id) == split]
