"""PDF: the text layer of every page (pypdf), with page numbers kept as `<!-- page: N -->`."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Any

from .base import IngestError, Record, clean_space, safe_line, sha256_hex

GENERIC_AUTHORS = {"anonymous", "unknown", "author", "admin", "user", "administrator"}
OCR_HINT = "it looks scanned: run OCR first (e.g. `ocrmypdf in.pdf out.pdf`) and add the result"


def _page_text(raw: str) -> str:
    """Extracted page text as paragraphs: hyphenation at line ends undone, lines joined."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"(?<=[a-z])-\n(?=[a-z])", "", text)
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = [clean_space(line) for line in block.split("\n")]
        lines = [safe_line(line) for line in lines if line]
        if lines:
            paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _metadata(reader: Any) -> dict[str, Any]:
    """Title, authors, year and DOI from the PDF's document information, where present."""
    out: dict[str, Any] = {}
    try:
        info = reader.metadata or {}
    except Exception:  # noqa: BLE001 - damaged info dictionaries are common and harmless
        return out
    title = clean_space(str(info.get("/Title") or ""))
    if title and not re.match(
        r"(?i)^(untitled|microsoft word|document\d*|\S+\.(docx?|pdf))", title
    ):
        out["title"] = title
    author = clean_space(str(info.get("/Author") or ""))
    authors = [a.strip() for a in re.split(r"[;,]", author) if a.strip()]
    if authors and authors[0].lower() not in GENERIC_AUTHORS:
        out["authors"] = authors
    doi = clean_space(str(info.get("/doi") or info.get("/DOI") or ""))
    if doi.startswith("10."):
        out["doi"] = doi
    return out


def read_pdf(path: Path, data: bytes) -> Record:
    """One Record for a PDF; refuses encrypted, text-less and damaged files with a clear reason."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except (DependencyError, NotImplementedError) as exc:
                raise IngestError(
                    path,
                    "encrypted PDF (unsupported encryption)",
                    "save an unencrypted copy (print to PDF) and add that",
                ) from exc
            if not ok:
                raise IngestError(
                    path,
                    "encrypted PDF (password protected)",
                    "remove the password (save an unencrypted copy) and add that",
                )
        pages = [page.extract_text() or "" for page in reader.pages]
    except IngestError:
        raise
    except FileNotDecryptedError as exc:
        raise IngestError(
            path, "encrypted PDF", "remove the password (save an unencrypted copy) and add that"
        ) from exc
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise IngestError(
            path, f"not a readable PDF ({exc})", "the file is damaged; download it again"
        ) from exc
    if not pages:
        raise IngestError(path, "the PDF has no pages", "check the file and download it again")
    parts: list[str] = []
    empty: list[int] = []
    for number, raw in enumerate(pages, start=1):
        text = _page_text(raw)
        if len(re.findall(r"[A-Za-z]{2,}", text)) < 3:
            empty.append(number)
            continue
        parts.append(f"<!-- page: {number} -->\n\n{text}")
    if not parts:
        raise IngestError(path, f"no text layer on any of its {len(pages)} page(s)", OCR_HINT)
    meta = _metadata(reader)
    meta["page_count"] = len(pages)
    record = Record(meta=meta, body="\n\n".join(parts) + "\n", fmt="pdf",
                    source_name=path.name, sha256=sha256_hex(data))  # fmt: skip
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
        record.warnings.append(f"{path}: no text on page(s) {shown}; those pages were skipped")
    if "title" not in meta:
        # the first line of the first page is usually the title of an article
        first = next((ln for ln in parts[0].split("\n")[1:] if ln.strip()), "")
        if 10 <= len(first) <= 300:
            meta["title_guess"] = first.lstrip("\\")
    return record
