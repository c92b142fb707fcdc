"""The input files of `corpus add`: which files a path names, their sidecar metadata, and the
reader of each format (PDF, PubMed or PMC/JATS XML, Markdown, text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..corpus import MAX_NOTE_BYTES, escapes, load_yaml
from ..source import OPTIONAL_FIELDS, REQUIRED_FIELDS, is_scalar
from .base import IngestError, Record, parse_xml

SUFFIX_FORMATS = {".pdf": "pdf", ".xml": "xml", ".nxml": "xml", ".md": "markdown",
                  ".markdown": "markdown", ".txt": "text", ".text": "text"}  # fmt: skip
SIDECAR_SUFFIXES = (".yaml", ".yml")
SUPPORTED_LABEL = "PDF (.pdf), PubMed or PMC/JATS XML (.xml, .nxml), Markdown (.md), text (.txt)"
SIDECAR_FIELDS = (set(REQUIRED_FIELDS) | set(OPTIONAL_FIELDS) | {"type"}) - {"provenance"}
MAX_SIDECAR_BYTES = 65536  # the default of ASSISTANT_MAX_SIDECAR_BYTES


def expand_paths(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Files to add (folders walked, sidecars and hidden files skipped) and refusals."""
    files: list[Path] = []
    refused: list[str] = []
    for path in paths:
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                rel = p.relative_to(path)
                if not p.is_file() or any(part.startswith(".") for part in rel.parts):
                    continue
                if p.suffix.lower() in SIDECAR_SUFFIXES:
                    continue
                if escapes(p, path):  # never follow a link out of the folder being added
                    refused.append(f"{p}: a symbolic link to a file outside {path}; skipped — "
                                   "add that file by its own path if you mean to")  # fmt: skip
                    continue
                files.append(p)
        elif path.is_file():
            if path.suffix.lower() in SIDECAR_SUFFIXES:
                refused.append(f"{path}: a metadata sidecar, not a document — add the document "
                               "it describes; its sidecar is read automatically")  # fmt: skip
            else:
                files.append(path)
        else:
            refused.append(f"{path}: no such file or folder — check the path")
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, refused


def sidecar_for(path: Path) -> Path | None:
    """`paper.pdf.yaml` (or `.yml`, or `paper.yaml`) next to the file, if there is one.

    A sidecar that is a symbolic link out of the document's folder is refused.
    """
    for suffix in SIDECAR_SUFFIXES:
        for candidate in (path.with_name(path.name + suffix), path.with_suffix(suffix)):
            if candidate.is_file():
                if escapes(candidate, path.parent):
                    raise IngestError(candidate, "the sidecar is a symbolic link to a file "
                                      f"outside {path.parent}; not read",
                                      "copy the metadata into a real sidecar file")  # fmt: skip
                return candidate
    return None


def read_sidecar(path: Path, max_bytes: int = MAX_SIDECAR_BYTES) -> dict[str, Any]:
    """The metadata of a sidecar YAML file (`type` is accepted for `source_type`).

    Refused: files over `max_bytes`, YAML anchors and aliases, lists or mappings where a single
    value belongs.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise IngestError(path, f"the sidecar is {size:,} bytes; the limit is {max_bytes:,} "
                              "(ASSISTANT_MAX_SIDECAR_BYTES)",
                              "a sidecar holds a few 'key: value' lines; shorten it")  # fmt: skip
        meta = load_yaml(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise IngestError(
            path,
            f"unreadable sidecar YAML ({str(exc).splitlines()[0]})",
            "fix the YAML (key: value lines) and add the document again",
        ) from exc
    if not isinstance(meta, dict):
        raise IngestError(path, "the sidecar must be a mapping of 'key: value' lines",
                          "see docs/ingest.md")  # fmt: skip
    unknown = sorted(set(meta) - SIDECAR_FIELDS)
    if unknown:
        raise IngestError(path, f"unknown field(s) {', '.join(unknown)} in the sidecar",
                          "allowed: " + ", ".join(sorted(SIDECAR_FIELDS)))  # fmt: skip
    lists = ("authors", "topics", "verified")
    for key, value in meta.items():
        items = value if key in lists and isinstance(value, list) else [value]
        if not all(v is None or is_scalar(v) for v in items):
            kind = "a single value or a list of them" if key in lists else "a single value"
            raise IngestError(path, f"'{key}' in the sidecar must be {kind}", "see docs/ingest.md")
    if "type" in meta:
        meta["source_type"] = meta.pop("type")
    if "pmid" in meta and meta["pmid"] is not None:
        meta["pmid"] = str(meta["pmid"])
    return meta


def read_file(path: Path, max_note_bytes: int = MAX_NOTE_BYTES) -> list[Record | IngestError]:
    """Records read from one input file (an XML file may hold several articles).

    Markdown and text files over `max_note_bytes` are refused before they are read.
    """
    from .jats import is_jats, read_jats
    from .pdf import read_pdf
    from .pubmed import split_pubmed_xml
    from .text import read_markdown, read_text

    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise IngestError(path, f"unsupported file type '{path.suffix or '(none)'}'",
                          f"supported: {SUPPORTED_LABEL}; save it in one of those")  # fmt: skip
    try:
        size = path.stat().st_size
        if fmt in ("markdown", "text") and size > max_note_bytes:
            raise IngestError(path, f"the file is {size:,} bytes; the limit for a note is "
                              f"{max_note_bytes:,} (ASSISTANT_MAX_NOTE_BYTES)",
                              "split it into several files, or raise the limit")  # fmt: skip
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(path, f"cannot read the file ({exc.strerror})",
                          "check the path and its permissions") from exc  # fmt: skip
    if not data.strip():
        raise IngestError(path, "empty file", "nothing to add; check you exported the right file")
    if fmt == "pdf":
        if not data.lstrip().startswith(b"%PDF"):
            raise IngestError(path, "not a PDF (no %PDF header)",
                              "the download may have failed; download it again")  # fmt: skip
        return [read_pdf(path, data)]
    if fmt == "xml":
        root = parse_xml(data, path)
        tag = root.tag.split("}", 1)[-1]
        if tag in ("PubmedArticleSet", "PubmedArticle"):
            return split_pubmed_xml(data, path)
        if is_jats(root):
            return list(read_jats(data, path, root))
        raise IngestError(
            path,
            f"XML of an unknown kind (root element <{tag}>)",
            "expected PubMed efetch XML <PubmedArticleSet> or PMC/JATS <article>",
        )
    if fmt == "markdown":
        return [read_markdown(path, data, max_note_bytes)]
    return [read_text(path, data)]


# ------------------------------------------------------------------------------- the store
