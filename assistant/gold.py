"""The gold question set: load and validate it, and split it into dev and test halves.

A gold file has one JSON object a line, validated by the model `GoldQuestion`: `{"id",
"question", "answers": [regex, ...], "sources": [doc-id, ...], "answerable": bool, "history":
[{"role", "content"}], "topic"}`; `answers`, `sources`, `history` and `topic` may be absent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from .errors import InputError
from .metrics import compile_answers
from .settings import PROJECT_ROOT

DEFAULT_GOLD = PROJECT_ROOT / "corpus" / "gold" / "questions.jsonl"
GOLD_SPLITS = ("all", "dev", "test")
TURN_FORM = '{"role": "user"|"assistant", "content": text}'


def _fail(problem: str) -> NoReturn:
    # the message is passed as context so that braces in a value are never formatted
    raise PydanticCustomError("gold", "{problem}", {"problem": problem})


def _must(test: Callable[[Any], bool], wanted: str) -> BeforeValidator:
    """A check refusing a value that fails `test` with "'<field>' must be <wanted>"."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if not test(value):
            _fail(f"'{info.field_name}' must be {wanted}")
        return value

    return BeforeValidator(check)


NON_EMPTY = _must(lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string")
TRUE_OR_FALSE = _must(lambda v: isinstance(v, bool), "true or false")
TEXT_OR_NULL = _must(lambda v: v is None or isinstance(v, str), "a string")
STRINGS = "a list of non-empty strings"
# the list, then each item: one bad item does not hide the other items' problems
STRING_LIST = _must(lambda v: isinstance(v, list), STRINGS)
STRING_ITEM = _must(lambda v: isinstance(v, str) and bool(v), STRINGS)


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        _fail(f"bad regular expression {pattern!r} in 'answers': {exc}")
    return pattern


def _known_source(doc_id: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("known_sources")
    if known is not None and doc_id not in known:
        _fail(f"unknown source id '{doc_id}' (list ids: assistant sources)")
    return doc_id


def _history(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, list):
        _fail("'history' must be a list of {role, content} turns")
    bad = [
        str(i)
        for i, turn in enumerate(value, start=1)
        if not isinstance(turn, dict)
        or turn.get("role") not in ("user", "assistant")
        or not isinstance(turn.get("content"), str)
    ]
    if bad:
        turns = f"turn {bad[0]}" if len(bad) == 1 else f"turns {', '.join(bad)}"
        _fail(f"history {turns} must be {TURN_FORM}")
    return [dict(turn) for turn in value]


class GoldQuestion(BaseModel):
    """One gold question: a line of the gold file. Unknown fields are refused.

    Validate a line with `GoldQuestion.model_validate(obj, context={"line": n,
    "known_sources": ids})`: with `known_sources`, every id in `sources` must be one of them.
    """

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, NON_EMPTY] = Field(
        description="Unique id of the question (decides its dev/test half)."
    )
    question: Annotated[str, NON_EMPTY] = Field(description="The question asked.")
    answerable: Annotated[bool, TRUE_OR_FALSE] = Field(
        description="Whether the corpus answers it (false: the assistant should abstain)."
    )
    answers: Annotated[
        list[Annotated[str, STRING_ITEM, AfterValidator(_regex)]],
        STRING_LIST,
    ] = Field(
        default_factory=list,
        description="Case-insensitive regular expressions; one matching a passage's text "
        "counts as the answer found.",
    )
    sources: Annotated[
        list[Annotated[str, STRING_ITEM, AfterValidator(_known_source)]],
        STRING_LIST,
    ] = Field(default_factory=list, description="Ids of the notes that answer it.")
    history: Annotated[list[dict[str, str]], BeforeValidator(_history)] = Field(
        default_factory=list,
        description=f"Earlier turns of a follow-up, oldest first: {TURN_FORM}.",
    )
    topic: Annotated[str | None, TEXT_OR_NULL] = Field(
        default=None, description="Topic slug (for per-topic figures)."
    )
    _line: int = PrivateAttr(default=0)

    def model_post_init(self, context: Any) -> None:
        self._line = int((context or {}).get("line", 0))

    @property
    def line(self) -> int:
        """The question's line in the gold file (0 when not read from one)."""
        return self._line

    @property
    def patterns(self) -> list[re.Pattern[str]]:
        return compile_answers(self.answers)


FIELDS = set(GoldQuestion.model_fields)


def _problems(exc: ValidationError, where: str) -> list[str]:
    """The errors of one gold line, each prefixed with `where` (unknown fields as one)."""
    out: list[str] = []
    unknown: list[str] = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else ""
        if err["type"] == "extra_forbidden":
            unknown.append(name)
        elif err["type"] == "missing":
            out.append(f"{where}: missing field '{name}'")
        elif err["type"] == "gold":
            out.append(f"{where}: {err['msg']}")
        else:
            out.append(f"{where}: '{name}': {err['msg']}")
    if unknown:
        out.insert(
            0, f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(FIELDS))}"
        )
    return list(dict.fromkeys(out))


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
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object, got {type(obj).__name__}")
            continue
        try:
            question = GoldQuestion.model_validate(
                obj, context={"line": n, "known_sources": known_sources}
            )
        except ValidationError as exc:
            problems.extend(_problems(exc, where))
            continue
        if question.id in seen:
            problems.append(
                f"{where}: duplicate id '{question.id}' (first on line {seen[question.id]})"
            )
            continue
        seen[question.id] = n
        questions.append(question)
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
