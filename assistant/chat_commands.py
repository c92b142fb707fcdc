"""The chat shell's slash commands and `/filter` syntax, parsed without a terminal."""

from __future__ import annotations

import difflib
import re

from .errors import InputError
from .types import SOURCE_TYPES, Filters

COMMANDS: dict[str, str] = {
    "/help": "this list",
    "/sources": "the last answer's sources in full",
    "/show N": "passage N in its place in the source, with the full citation; /show LABEL (e.g. /show Le Treut 2013) opens a source the passages cite",
    "/more": "next results for the same question",
    "/filter": "e.g. /filter year>=2009 type=rct,guideline  ·  /filter off  ·  /filter (show)",
    "/mode": "/mode hybrid|dense|bm25 (no argument: show the current mode)",
    "/history": "the questions so far and the queries searched",
    "/export FILE.md": "the transcript with a numbered reference list (a new file; add --force "
    "to replace one)",
    "/cite ris|bibtex [FILE]": "the answer's sources as RIS or BibTeX (shown, or written to a "
    "new FILE)",
    "/new": "forget the conversation (filters and mode stay)",
    "/quit": "leave (also Ctrl-D)",
}
COMMAND_NAMES = tuple(c.split()[0] for c in COMMANDS)
FILTER_RE = re.compile(r"^(year|type|types)\s*(>=|<=|=|>|<)\s*(.+)$", re.I)


def parse_command(line: str) -> tuple[str, str]:
    """('/name', 'argument') for a slash command line; the name is lower-cased."""
    head, _, arg = line.strip().partition(" ")
    return head.lower(), arg.strip()


def command_hint(name: str) -> str:
    """A one-line hint for an unknown command, naming the closest known one."""
    close = difflib.get_close_matches(name.lower(), COMMAND_NAMES, n=1, cutoff=0.5)
    guess = f"did you mean {close[0]}? " if close else ""
    return f"unknown command {name}: {guess}type /help for the list"


def parse_filter(text: str) -> Filters:
    """Filters from `/filter` arguments such as `year>=2009 type=rct,guideline`.

    Year accepts `>=`, `<=`, `>`, `<`, `=` with one year or a range (`year=2009-2015`); type takes
    comma-separated source types. `off` (or nothing) clears every filter.
    """
    text = text.strip()
    if not text or text.lower() in {"off", "none", "clear"}:
        return Filters()
    year_min: int | None = None
    year_max: int | None = None
    types: list[str] = []
    # "type = rct, guideline" -> "type=rct,guideline"
    compact = re.sub(r"\s*(>=|<=|=|>|<|,)\s*", r"\1", text)
    for part in compact.split():
        match = FILTER_RE.match(part)
        if not match:
            raise InputError(
                f"cannot read the filter '{part}'",
                "write e.g. /filter year>=2009 type=rct,guideline (or /filter off)",
            )
        key, op, value = match.group(1).lower(), match.group(2), match.group(3)
        if key == "year":
            lo, hi = _parse_years(op, value, part)
            year_min = lo if lo is not None else year_min
            year_max = hi if hi is not None else year_max
        else:
            if op != "=":
                raise InputError(f"'{part}': use type=…", "e.g. /filter type=rct,guideline")
            for name in filter(None, (v.strip().lower() for v in value.split(","))):
                if name not in SOURCE_TYPES:
                    raise InputError(
                        f"unknown source type '{name}'",
                        f"use one or more of: {', '.join(SOURCE_TYPES)}",
                    )
                if name not in types:
                    types.append(name)
    if year_min is not None and year_max is not None and year_min > year_max:
        raise InputError(
            f"the year range {year_min}–{year_max} is empty", "put the earlier year first"
        )
    return Filters(year_min=year_min, year_max=year_max, source_types=tuple(types))


def _parse_years(op: str, value: str, part: str) -> tuple[int | None, int | None]:
    """(min, max) years for one `year` clause."""
    match = re.fullmatch(r"(\d{4})(?:(?:-|\.\.)(\d{4}))?", value)
    if not match or (match.group(2) and op != "="):
        raise InputError(
            f"cannot read the year in '{part}'",
            "write a four-digit year, e.g. year>=2009, year<2015 or year=2009-2015",
        )
    first = int(match.group(1))
    if match.group(2):
        return first, int(match.group(2))
    return {
        ">=": (first, None),
        ">": (first + 1, None),
        "<=": (None, first),
        "<": (None, first - 1),
        "=": (first, first),
    }[op]
