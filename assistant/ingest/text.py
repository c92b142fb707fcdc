"""Plain text and Markdown: notes in our format keep their front matter; other text gets ours."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..corpus import (
    MAX_NOTE_BYTES,
    FrontMatterError,
    parse_front_matter,
    parse_note,
    split_front_matter,
)
from ..errors import CorpusError
from .base import IngestError, Record, decode_text, safe_line, sha256_hex

HEADING_RE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)


def _front_matter(text: str, path: Path) -> dict[str, Any] | None:
    """The YAML front matter of a note, or None when the text has none.

    Front matter that is not valid YAML (or uses anchors and aliases) is refused with its line.
    """
    split = split_front_matter(text)
    if split is None:
        return None
    try:
        meta = parse_front_matter(split[0], context=False)
    except FrontMatterError as exc:
        raise IngestError(
            path,
            f"line {exc.line}: invalid YAML front matter: {exc.problem}",
            "fix the front matter (see docs/corpus-format.md), or remove the '---' lines to add "
            "the file as plain Markdown, and add it again",
        ) from exc
    return meta if isinstance(meta, dict) else None


def _at_line(problem: str, path: Path) -> str:
    """'<path>:<n>: what' as 'line <n>: what'."""
    rest = problem.removeprefix(f"{path}:")
    number, _, what = rest.partition(": ")
    return f"line {number}: {what}" if number.isdigit() else rest


def read_markdown(path: Path, data: bytes, max_bytes: int = MAX_NOTE_BYTES) -> Record:
    """A Markdown note. With front matter it must be a valid note in our format (checked here)."""
    text = decode_text(data, path).replace("\r\n", "\n")
    meta = _front_matter(text, path)
    if meta is not None:
        try:
            doc = parse_note(path, text, max_bytes=max_bytes)
        except CorpusError as exc:
            raise IngestError(
                path,
                "; ".join(_at_line(p, path) for p in exc.problems[:3]),
                "fix the front matter (see docs/corpus-format.md) and add it again",
            ) from exc
        # the note's validated metadata; a provenance is written anew by `corpus add`
        kept = doc.meta.model_dump(mode="json", exclude_unset=True, exclude={"provenance"})
        return Record(meta=kept, body=doc.body.lstrip("\n"), fmt="markdown",
                      source_name=path.name, sha256=sha256_hex(data))  # fmt: skip
    body = text.strip("\n") + "\n"
    found: dict[str, Any] = {}
    heading = HEADING_RE.search(body)
    if heading:
        found["title_guess"] = heading.group(1).strip()
    return Record(meta=found, body=body, fmt="markdown", source_name=path.name,
                  sha256=sha256_hex(data))  # fmt: skip


def read_text(path: Path, data: bytes) -> Record:
    """Plain text: paragraphs kept; the first line is offered as a title guess."""
    text = decode_text(data, path).replace("\r\n", "\n").replace("\r", "\n")
    lines = [safe_line(line.rstrip()) for line in text.strip("\n").split("\n")]
    body = "\n".join(lines).strip("\n") + "\n"
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    meta: dict[str, Any] = {}
    if 5 <= len(first) <= 300:
        meta["title_guess"] = first.lstrip("\\")
    return Record(meta=meta, body=body, fmt="text", source_name=path.name,
                  sha256=sha256_hex(data))  # fmt: skip
