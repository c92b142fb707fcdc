"""Cut documents into section-aware, sentence-aware windows that remember where they came from."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .types import Chunk, Document

HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
PAGE_RE = re.compile(r"^<!--\s*page:?\s*(\d+)\s*-->\s*$")
TOKEN_RE = re.compile(r"\w+|[^\w\s]")
# Words after which a full stop does not end a sentence.
ABBREVIATIONS = {
    "al", "e.g", "i.e", "vs", "etc", "approx", "fig", "figs", "no", "nos", "dr", "mr", "mrs",
    "ms", "prof", "ref", "refs", "vol", "cf", "ca", "resp", "incl", "min", "max", "mg", "mo",
    "st", "jr", "sr", "eq", "pts",
}  # fmt: skip
SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def count_tokens(text: str) -> int:
    """A cheap estimate of word-piece tokens: words and punctuation marks."""
    return len(TOKEN_RE.findall(text))


def split_sentences(text: str, base: int = 0) -> list[tuple[int, int]]:
    """Character spans (absolute, offset by `base`) of the sentences in one paragraph."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in SENTENCE_END_RE.finditer(text):
        candidate = text[start : match.start()].rstrip()
        last_word = re.findall(r"([\w.]+)\W*$", candidate)
        word = last_word[0].lower().rstrip(".") if last_word else ""
        if word in ABBREVIATIONS or re.search(r"(^|\s)[A-Za-z]\.$", candidate):
            continue
        spans.append((start, start + len(candidate)))
        start = match.end()
    tail = text[start:].rstrip()
    if tail.strip():
        spans.append((start, start + len(tail)))
    out = []
    for s, e in spans:
        lead = len(text[s:e]) - len(text[s:e].lstrip())
        if text[s + lead : e].strip():
            out.append((base + s + lead, base + e))
    return out


PARAGRAPH_RE = re.compile(r"[^\n]+(?:\n(?![ \t]*(?:\n|[-*+][ \t]|\d+[.)][ \t]|#))[^\n]+)*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a multi-paragraph text; list items and paragraphs never merge."""
    spans: list[tuple[int, int]] = []
    for match in PARAGRAPH_RE.finditer(text):
        spans.extend(split_sentences(match.group(0), match.start()))
    return spans


@dataclass
class _Unit:
    start: int
    end: int
    tokens: int
    page: int | None


def _sections(doc: Document) -> Iterable[tuple[str, list[_Unit]]]:
    """(heading path, sentence units) for each section of the body, offsets in the source file."""
    body = doc.body
    base = doc.body_offset
    path: list[tuple[int, str]] = []
    units: list[_Unit] = []
    page: int | None = None
    offset = 0
    para_start: int | None = None
    para_lines: list[str] = []

    def heading() -> str:
        names = [name for level, name in path if level > 1]
        return " > ".join(names) if names else (path[0][1] if path else "")

    def flush_paragraph() -> None:
        nonlocal para_start, para_lines
        if para_start is not None:
            text = "\n".join(para_lines)
            for s, e in split_sentences(text, base + para_start):
                units.append(_Unit(s, e, count_tokens(body[s - base : e - base]), page))
        para_start, para_lines = None, []

    for line in body.split("\n"):
        line_start = offset
        offset += len(line) + 1
        stripped = line.strip()
        head = HEADING_RE.match(stripped)
        page_mark = PAGE_RE.match(stripped)
        if head or page_mark or not stripped or re.match(r"^([-*+]|\d+[.)])\s+", stripped):
            flush_paragraph()
        if page_mark:
            page = int(page_mark.group(1))
            continue
        if head:
            if units:
                yield heading(), units
                units = []
            level = len(head.group(1))
            path = [(lv, name) for lv, name in path if lv < level] + [(level, head.group(2))]
            continue
        if not stripped or stripped.startswith("<!--"):
            continue
        if para_start is None:
            lead = len(line) - len(line.lstrip())
            para_start = line_start + lead
            para_lines = [line[lead:]]
        else:
            para_lines.append(line)
    flush_paragraph()
    if units:
        yield heading(), units


def chunk_document(doc: Document, max_tokens: int = 180, overlap_tokens: int = 40) -> list[Chunk]:
    """Windows of whole sentences within each section, with a few sentences of overlap.

    `text` is the exact slice of the source file, so a passage can be shown in place.
    """
    chunks: list[Chunk] = []
    for section, units in _sections(doc):
        i = 0
        while i < len(units):
            window = [units[i]]
            size = units[i].tokens
            j = i + 1
            # a window never crosses a page boundary, so every passage cites one page
            while (
                j < len(units)
                and size + units[j].tokens <= max_tokens
                and units[j].page == units[i].page
            ):
                window.append(units[j])
                size += units[j].tokens
                j += 1
            start, end = window[0].start, window[-1].end
            text = doc.body[start - doc.body_offset : end - doc.body_offset]
            chunks.append(
                Chunk(
                    id=f"{doc.id}#{len(chunks)}",
                    doc_id=doc.id,
                    n=len(chunks),
                    text=text,
                    section=section,
                    start=start,
                    end=end,
                    page=window[0].page,
                )
            )
            if j >= len(units):
                break
            # step back over trailing sentences that fit in the overlap, but always advance
            back = j
            carried = 0
            while (
                back - 1 > i
                and carried + units[back - 1].tokens <= overlap_tokens
                and units[back - 1].page == units[j].page
            ):
                back -= 1
                carried += units[back].tokens
            i = back
    return chunks


def chunk_documents(
    docs: Iterable[Document], max_tokens: int = 180, overlap_tokens: int = 40
) -> list[Chunk]:
    """Chunks of every document, in document order."""
    out: list[Chunk] = []
    for doc in docs:
        out.extend(chunk_document(doc, max_tokens, overlap_tokens))
    return out


def embedding_text(chunk: Chunk, title: str) -> str:
    """What gets embedded and BM25-indexed for a chunk: its title and section give it context."""
    prefix = f"{title}. {chunk.section}." if chunk.section else f"{title}."
    return f"{prefix} {chunk.text}"
