"""Load the corpus: one Markdown note per source, with YAML front matter."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import AssistantError, CorpusError
from .source import problems_of, validate_metadata
from .types import Document

# Folders under the corpus that hold something other than notes.
IGNORED_DIRS = {"gold"}
IGNORED_FILES = {"README.md"}
# The default of ASSISTANT_MAX_NOTE_BYTES: larger notes are refused (docs/corpus-format.md).
MAX_NOTE_BYTES = 2_000_000


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors (&) and aliases (*): nested aliases expand exponentially (an
    'alias bomb'), and notes never need them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors (&) and aliases (*) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """Parse YAML safely: plain data only, anchors and aliases refused (yaml.YAMLError)."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


class FrontMatterError(ValueError):
    """Front matter that is not valid YAML: the line in the file and what is wrong."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line, self.problem = line, problem


def split_front_matter(text: str) -> tuple[str, int] | None:
    """The YAML between a first line '---' and the next line '---' or '...', and the index of
    that closing line; None when the text does not open with '---' or never closes it."""
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return None
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in {"---", "..."}), None)
    return None if end is None else ("\n".join(lines[1:end]), end)


def parse_front_matter(front: str, context: bool = True) -> Any:
    """The data of front matter from `split_front_matter` (anchors and aliases refused); invalid
    YAML raises FrontMatterError with the line in the file (the YAML starts on line 2) and,
    with `context`, what the problem is inside of."""
    try:
        return load_yaml(front)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 2) if mark is not None else 2
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and where and cmark is not None and mark is not None and cmark.line != mark.line:
            problem += f" ({where} on line {cmark.line + 2})"
        raise FrontMatterError(line, problem) from exc


def escapes(path: Path, root: Path) -> bool:
    """Whether `path` under `root` is (or lies in) a symbolic link leading out of `root`."""
    try:
        return not path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # unreadable, or a symlink loop
        return True


def size_problem(path: Path, size: int, limit: int) -> str:
    """The refusal of a note over the size limit."""
    return (
        f"{path}:1: the note is {size:,} bytes; the limit is {limit:,} "
        "(ASSISTANT_MAX_NOTE_BYTES): split it into several notes, or raise the limit"
    )


def fingerprint_bytes(data: bytes) -> str:
    """A short, stable content fingerprint."""
    return hashlib.sha256(data).hexdigest()[:16]


def note_paths(corpus_dir: Path) -> tuple[list[Path], list[Path]]:
    """(note files, other files) under the corpus folder, sorted. Hidden and `_` folders are skipped."""
    if not corpus_dir.is_dir():
        raise AssistantError(
            f"corpus folder not found: {corpus_dir}",
            "pass --corpus DIR or set ASSISTANT_CORPUS_DIR to a folder of notes",
        )
    notes: list[Path] = []
    others: list[Path] = []
    for path in sorted(corpus_dir.rglob("*")):
        rel = path.relative_to(corpus_dir)
        if any(part.startswith((".", "_")) or part in IGNORED_DIRS for part in rel.parts[:-1]):
            continue
        if not path.is_file() or rel.name.startswith("."):
            continue
        if escapes(path, corpus_dir):
            others.append(path)  # load_corpus warns that it was skipped
            continue
        if path.suffix.lower() == ".md" and rel.name not in IGNORED_FILES:
            notes.append(path)
        elif rel.name not in IGNORED_FILES:
            others.append(path)
    return notes, others


def corpus_fingerprints(corpus_dir: Path) -> dict[str, str]:
    """Fingerprint of every note file, keyed by its path relative to the corpus."""
    notes, _ = note_paths(corpus_dir)
    return {str(p.relative_to(corpus_dir)): fingerprint_bytes(p.read_bytes()) for p in notes}


def combined_fingerprint(per_file: dict[str, str]) -> str:
    """One fingerprint for a whole corpus."""
    joined = "\n".join(f"{k}\t{v}" for k, v in sorted(per_file.items()))
    return fingerprint_bytes(joined.encode())


def _key_line(front: str, key: str, first_line: int) -> int:
    """Line number (1-based, in the file) of `key:` in the front matter, else its first line."""
    for i, line in enumerate(front.splitlines()):
        if re.match(rf"^{re.escape(key)}\s*:", line):
            return first_line + i
    return first_line


def parse_note(
    path: Path, text: str | None = None, max_bytes: int = MAX_NOTE_BYTES, body: bool = True
) -> Document:
    """Parse one note; raise CorpusError naming the file and line of every problem.

    Notes over `max_bytes` are refused before they are read. `body=False` checks the note as
    fully but keeps `body=""` (`read_body` reads it again when needed).
    """
    if text is None:
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise CorpusError([size_problem(path, size, max_bytes)])
            raw = path.read_bytes()
        except OSError as exc:
            raise CorpusError([f"{path}: cannot read file: {exc.strerror}"]) from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise CorpusError([f"{path}:{line}: not valid UTF-8; save the file as UTF-8"]) from exc
    else:
        raw = text.encode("utf-8")
        if len(raw) > max_bytes:
            raise CorpusError([size_problem(path, len(raw), max_bytes)])
    if not text.strip():
        raise CorpusError([f"{path}:1: empty file; remove it or write a note in it"])
    lines = text.split("\n")
    if lines[0].strip() != "---":
        raise CorpusError(
            [
                f"{path}:1: no YAML front matter; a note starts with a line '---' (see docs/corpus-format.md)"
            ]
        )
    split = split_front_matter(text)
    if split is None:
        raise CorpusError([f"{path}:1: front matter is not closed; add a line '---' after it"])
    front, end = split
    try:
        data = parse_front_matter(front) or {}
    except FrontMatterError as exc:
        raise CorpusError([f"{path}:{exc.line}: invalid YAML front matter: {exc.problem}"]) from exc
    if not isinstance(data, dict):
        raise CorpusError([f"{path}:2: front matter must be a mapping of 'key: value' lines"])

    try:
        meta = validate_metadata(data)
    except ValidationError as exc:
        # a problem at its key's line; a missing field at line 1, where the note starts
        found = [(_key_line(front, key, 2) if key else 1, what) for key, what in problems_of(exc)]
        found.sort(key=lambda item: item[0])
        raise CorpusError([f"{path}:{line}: {what}" for line, what in found]) from None

    body_offset = len("\n".join(lines[: end + 1])) + 1
    text = text[body_offset:] if body_offset <= len(text) else ""
    if not text.strip():
        raise CorpusError([f"{path}:{end + 2}: the note has front matter but no text"])

    return Document(meta=meta, body=text if body else "", path=path, body_offset=body_offset,
                    fingerprint=fingerprint_bytes(raw))  # fmt: skip


def read_body(doc: Document) -> str:
    """The body of a note loaded with `bodies=False`, read again from its file, which must not
    have changed since (same fingerprint)."""
    fix = "run `assistant index` again once the notes are no longer being edited"
    try:
        raw = doc.path.read_bytes()
    except OSError as exc:
        raise AssistantError(
            f"{doc.path}: the note cannot be read again while the index is built: {exc.strerror}",
            fix,
        ) from exc
    if fingerprint_bytes(raw) != doc.fingerprint:
        raise AssistantError(f"{doc.path}: the note changed while the index was being built", fix)
    return raw.decode("utf-8")[doc.body_offset :]


def with_body(doc: Document) -> Document:
    """`doc` holding its body (`read_body`)."""
    return replace(doc, body=read_body(doc))


def parse_notes(
    paths: Iterable[Path], max_bytes: int = MAX_NOTE_BYTES, bodies: bool = True
) -> tuple[list[Document], list[str]]:
    """The notes that parse (with their bodies, or `bodies=False`: without), and every problem
    (file and line) of those that do not."""
    docs: list[Document] = []
    problems: list[str] = []
    for path in paths:
        try:
            docs.append(parse_note(path, max_bytes=max_bytes, body=bodies))
        except CorpusError as exc:
            problems.extend(exc.problems)
    return docs, problems


def load_corpus(
    corpus_dir: Path, max_bytes: int = MAX_NOTE_BYTES, bodies: bool = True
) -> tuple[list[Document], list[str]]:
    """Every note under `corpus_dir`, and warnings about files that are not notes.

    Raises CorpusError listing every invalid file (never drops one silently), duplicate ids included.
    `bodies=False` checks and fingerprints every note the same way but keeps only its metadata,
    path and body offset (`body=""`): a build reads each body when it needs it (`read_body`), so
    it never holds the whole corpus.
    """
    notes, others = note_paths(corpus_dir)
    docs, problems = parse_notes(notes, max_bytes, bodies)
    seen: dict[str, Path] = {}
    for doc in docs:
        if doc.id in seen:
            problems.append(
                f"{doc.path}:1: duplicate id '{doc.id}' (also used by {seen[doc.id]}); ids must be unique"
            )
        else:
            seen[doc.id] = doc.path
    if problems:
        raise CorpusError(problems)
    if not docs:
        raise AssistantError(
            f"no notes found in {corpus_dir}",
            "add Markdown notes (see docs/corpus-format.md) or pass --corpus DIR",
        )
    warnings = [
        f"{p}: a symbolic link to a file outside the corpus folder; skipped (copy the file in "
        "to index it)"
        if escapes(p, corpus_dir)
        else f"{p}: not a note (only .md files are indexed); skipped"
        for p in others
    ]
    return docs, warnings
