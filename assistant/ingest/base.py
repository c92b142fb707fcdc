"""What every format reader returns, and helpers they share."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AssistantError


class IngestError(AssistantError):
    """One input could not be added; the message names the input, the hint says what to do."""

    def __init__(self, source: str | Path, problem: str, hint: str | None = None) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{source}: {problem}", hint)

    def line(self) -> str:
        """The whole refusal as one line."""
        return f"{self.message} — {self.hint}" if self.hint else self.message


@dataclass
class Record:
    """One document read from an input, before it is written to the corpus.

    `meta` holds note front-matter fields by name (those of `source.SourceMetadata`: title,
    year, source_type, authors, ...), checked when the note is written; `body` is Markdown (PDF
    page boundaries as `<!-- page: N -->` lines).
    """

    meta: dict[str, Any]
    body: str
    fmt: str
    source_name: str
    sha256: str
    warnings: list[str] = field(default_factory=list)


def sha256_hex(data: bytes) -> str:
    """Full SHA-256 of the original bytes (the provenance checksum)."""
    return hashlib.sha256(data).hexdigest()


def clean_space(text: str) -> str:
    """Runs of whitespace as single spaces, stripped."""
    return re.sub(r"\s+", " ", text).strip()


def safe_line(line: str) -> str:
    """A line of extracted text that Markdown and the chunker will not mistake for markup."""
    stripped = line.lstrip()
    if stripped.startswith(("#", "<!--", "---", "===")):
        return "\\" + stripped
    return line


def slug_words(text: str) -> list[str]:
    """ASCII lowercase words of a text (accents folded)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.findall(r"[a-z0-9]+", folded.lower())


STOP = {"a", "an", "the", "of", "and", "in", "on", "for", "with", "to", "by", "at", "from", "or",
        "is", "are", "vs", "versus", "its", "their", "as"}  # fmt: skip


def make_id(meta: dict[str, Any]) -> str:
    """A readable slug: first author's surname, year and the first words of the title."""
    parts: list[str] = []
    authors = meta.get("authors") or []
    if authors:
        surname = str(authors[0]).replace("et al.", "").strip().split(" ")[0]
        parts.extend(slug_words(surname)[:2])
    if meta.get("year"):
        parts.append(str(meta["year"]))
    words = [w for w in slug_words(str(meta.get("title") or "")) if w not in STOP]
    for word in words[:4]:
        if len("-".join([*parts, word])) > 48 and len(parts) >= 2:
            break
        parts.append(word)
    return "-".join(parts)[:60].strip("-") or "document"


YEAR_RE = re.compile(r"(1[89]\d\d|20\d\d)")


def first_year(text: str | None) -> int | None:
    """The first plausible four-digit year in a string such as '2009 Sep-Oct'."""
    if not text:
        return None
    match = YEAR_RE.search(text)
    return int(match.group(1)) if match else None


def decode_text(data: bytes, source: str | Path) -> str:
    """UTF-8 (with or without BOM), else a clear refusal."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IngestError(
            source, f"not valid UTF-8 (line {line})", "save the file as UTF-8 and add it again"
        ) from exc


def parse_xml(data: bytes, source: str | Path) -> ET.Element:
    """Parse XML bytes; malformed input or entity declarations become an IngestError.

    defusedxml refuses entity declarations and external references (entity expansion bombs,
    XXE); efetch and PMC files never need them. A DOCTYPE without entities is fine.
    """
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    try:
        return SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise IngestError(
            source,
            "XML declares entities, which are not accepted",
            "use the XML exactly as NCBI/PMC deliver it",
        ) from exc
    except ET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else "?"
        raise IngestError(
            source,
            f"malformed XML (line {line}: {str(exc).split(':')[0]})",
            "the file is damaged or incomplete; download it again",
        ) from exc


def text_of(elem: Any) -> str:
    """All text inside an XML element, whitespace collapsed ('' for None)."""
    if elem is None:
        return ""
    return clean_space("".join(elem.itertext()))
