"""Write ingested documents into the corpus as notes in our format, with their provenance.

Every input is read and checked before anything is written; a new note is written to a hidden
temporary file and then linked to its final name (never over an existing file), so a failed or
partial add never loses or changes what is already in the corpus.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from ..chunk import chunk_document
from ..corpus import MAX_NOTE_BYTES, note_paths, parse_note, parse_notes
from ..errors import CorpusError, InputError
from ..source import FIELD_ORDER, SOURCE_TYPES, field_problem
from ..types import Document
from .base import IngestError, Record, make_id
from .files import MAX_SIDECAR_BYTES, expand_paths, read_file, read_sidecar, sidecar_for

ADDED_DIR = "added"


@dataclass
class Overrides:
    """Metadata given on the command line; it wins over the file and its sidecar."""

    title: str | None = None
    year: int | None = None
    doi: str | None = None
    pmid: str | None = None
    source_type: str | None = None

    def as_meta(self) -> dict[str, Any]:
        values = {"title": self.title, "year": self.year, "doi": self.doi, "pmid": self.pmid,
                  "source_type": self.source_type}  # fmt: skip
        return {k: v for k, v in values.items() if v not in (None, "")}

    def check(self) -> None:
        """Refuse malformed values before any file is read (by the rules of SourceMetadata)."""
        if self.source_type and field_problem("source_type", self.source_type):
            raise InputError(f"--type '{self.source_type}' is not a source type",
                             f"use one of: {', '.join(SOURCE_TYPES)}")  # fmt: skip
        if self.pmid and field_problem("pmid", self.pmid):
            raise InputError(f"--pmid '{self.pmid}' is not a PMID", "a PMID is 1 to 9 digits")
        if self.doi and field_problem("doi", self.doi):
            raise InputError(f"--doi '{self.doi}' is not a DOI", "a DOI starts with '10.'")
        if self.year is not None and field_problem("year", self.year):
            raise InputError(f"--year {self.year} is out of range", "give the publication year")


@dataclass
class AddReport:
    """What an add did: notes written, inputs refused (one line each), and warnings."""

    added: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "refused": self.refused, "warnings": self.warnings}


# ------------------------------------------------------------------------------- writing
def _clean_meta(meta: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key in FIELD_ORDER:
        value = meta.get(key)
        if value in (None, "", [], ()):
            continue
        out[key] = value
    return out


def render_note(meta: dict[str, Any], body: str) -> str:
    """A note in our format: YAML front matter, then the Markdown body."""
    front = yaml.safe_dump(_clean_meta(meta), sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{front}---\n\n{body.strip(chr(10))}\n"


class CorpusStore:
    """The corpus folder seen as a set of documents that can be added, listed and removed."""

    def __init__(
        self,
        corpus_dir: Path,
        max_note_bytes: int = MAX_NOTE_BYTES,
        max_sidecar_bytes: int = MAX_SIDECAR_BYTES,
    ) -> None:
        self.corpus_dir = Path(corpus_dir)
        self.added_dir = self.corpus_dir / ADDED_DIR
        self.max_note_bytes = max_note_bytes
        self.max_sidecar_bytes = max_sidecar_bytes

    # ---- reading the corpus
    def scan(self) -> tuple[list[Document], list[str]]:
        """Every readable note, and a problem line for each unreadable one (never raises)."""
        if not self.corpus_dir.is_dir():
            return [], []
        notes, _ = note_paths(self.corpus_dir)
        return parse_notes(notes, self.max_note_bytes)

    def get(self, doc_id: str) -> Document:
        """The document with this id, or an InputError naming the command that lists ids."""
        docs, _ = self.scan()
        for doc in docs:
            if doc.id == doc_id:
                return doc
        raise InputError(f"no document with id '{doc_id}' in {self.corpus_dir}",
                         "list the ids with: assistant corpus list")  # fmt: skip

    def documents(self, max_tokens: int = 180, overlap_tokens: int = 40) -> list[dict[str, Any]]:
        """Id, type, year, title, chunk count and origin of every document, sorted by id."""
        docs, _ = self.scan()
        rows = []
        for doc in sorted(docs, key=lambda d: d.id):
            rows.append({
                "id": doc.id, "source_type": doc.source_type, "year": doc.year,
                "title": doc.title, "chunks": len(chunk_document(doc, max_tokens, overlap_tokens)),
                "added": bool(doc.extra.get("provenance")), "path": str(doc.path),
            })  # fmt: skip
        return rows

    def show(self, doc_id: str, max_tokens: int = 180, overlap_tokens: int = 40) -> dict[str, Any]:
        """Metadata, provenance, sections, chunk count and text of one document."""
        doc = self.get(doc_id)
        chunks = chunk_document(doc, max_tokens, overlap_tokens)
        out = doc.metadata_dict()
        out.update(
            chunks=len(chunks),
            pages=sorted({c.page for c in chunks if c.page is not None}) or None,
            sections=list(dict.fromkeys(c.section for c in chunks if c.section)),
            text=doc.body,
        )
        if doc.pages:
            out["page_range"] = doc.pages
        return out

    def remove(self, doc_id: str) -> Path:
        """Delete an added document's note; hand-written notes are refused."""
        doc = self.get(doc_id)
        inside = self.added_dir.resolve() in doc.path.resolve().parents
        if not inside and not doc.extra.get("provenance"):
            raise InputError(
                f"'{doc_id}' is a hand-written note ({doc.path}), not a document added with "
                "`assistant corpus add`",
                "delete the file yourself if you really mean to remove it",
            )
        doc.path.unlink()
        return doc.path

    # ---- adding
    def add(self, paths: list[Path], overrides: Overrides | None = None) -> AddReport:
        """Read, check and add files and folders; each refusal is one line in the report."""
        overrides = overrides or Overrides()
        overrides.check()
        files, refused = expand_paths([Path(p) for p in paths])
        per_file = {k for k in ("title", "doi", "pmid") if getattr(overrides, k)}
        if per_file and len(files) > 1:
            raise InputError(
                f"--{'/--'.join(sorted(per_file))} describe one document, but {len(files)} files "
                "were given",
                "add them one at a time, or give each file a sidecar YAML (see docs/ingest.md)",
            )
        items: list[tuple[Record, dict[str, Any]]] = []
        report = AddReport(refused=refused)
        for path in files:
            try:
                extra: dict[str, Any] = {}
                sidecar = sidecar_for(path)
                if sidecar is not None:
                    extra.update(read_sidecar(sidecar, self.max_sidecar_bytes))
                extra.update(overrides.as_meta())
                for item in read_file(path, self.max_note_bytes):
                    if isinstance(item, IngestError):
                        report.refused.append(item.line())
                    else:
                        items.append((item, extra))
            except IngestError as exc:
                report.refused.append(exc.line())
        return self._write(items, report)

    def add_records(
        self, records: list[Record], refused: list[IngestError] | None = None
    ) -> AddReport:
        """Add records read elsewhere (e.g. fetched from PubMed)."""
        report = AddReport(refused=[e.line() for e in refused or []])
        return self._write([(r, {}) for r in records], report)

    def _write(self, items: list[tuple[Record, dict[str, Any]]], report: AddReport) -> AddReport:
        docs, _ = self.scan()
        ids = {d.id: d for d in docs}
        pmids = {d.pmid: d.id for d in docs if d.pmid}
        dois = {d.doi.lower(): d.id for d in docs if d.doi}
        shas: dict[str, str] = {}
        for d in docs:
            prov = d.extra.get("provenance")
            if isinstance(prov, dict) and prov.get("sha256"):
                shas[str(prov["sha256"])] = d.id
        taken_files = (
            {p.name for p in self.added_dir.glob("*.md")} if self.added_dir.is_dir() else set()
        )
        today = date.today().isoformat()
        for record, extra in items:
            label = record.source_name
            try:
                meta = self._metadata(record, extra, label, report)
                dup = (
                    shas.get(record.sha256)
                    or (meta.get("pmid") and pmids.get(str(meta["pmid"])))
                    or (meta.get("doi") and dois.get(str(meta["doi"]).lower()))
                )
                if dup:
                    raise IngestError(label, f"already in the corpus as '{dup}'",
                                      f"nothing to do; to replace it run `assistant corpus remove {dup}` "
                                      "and add it again")  # fmt: skip
                explicit = meta.get("id")
                if explicit:
                    if explicit in ids:
                        raise IngestError(label, f"id '{explicit}' is already used by {ids[explicit].path}",
                                          "choose another id in the note or its sidecar")  # fmt: skip
                    doc_id = str(explicit)
                else:
                    base = make_id(meta)
                    doc_id, n = base, 2
                    while doc_id in ids or f"{doc_id}.md" in taken_files:
                        doc_id, n = f"{base}-{n}", n + 1
                if f"{doc_id}.md" in taken_files:
                    raise IngestError(label, f"a file {ADDED_DIR}/{doc_id}.md already exists",
                                      "choose another id")  # fmt: skip
                meta["id"] = doc_id
                meta["provenance"] = {"original": record.source_name, "format": record.fmt,
                                      "sha256": record.sha256, "added": today}  # fmt: skip
                body = record.body
                if not any(line.startswith("# ") for line in body.split("\n")[:3]):
                    body = f"# {meta['title']}\n\n{body}"
                text = render_note(meta, body)
                target = self.added_dir / f"{doc_id}.md"
                try:
                    doc = parse_note(target, text, max_bytes=self.max_note_bytes)
                except CorpusError as exc:
                    raise IngestError(label, "; ".join(p.split(": ", 1)[-1] for p in exc.problems[:3]),
                                      "correct the metadata with flags or a sidecar YAML") from exc  # fmt: skip
                if not chunk_document(doc):
                    raise IngestError(label, "no searchable text", "check the file's content")
                self._create(target, text)
            except IngestError as exc:
                report.refused.append(exc.line())
                continue
            report.warnings.extend(record.warnings)
            ids[doc_id] = doc
            taken_files.add(target.name)
            shas[record.sha256] = doc_id
            if doc.pmid:
                pmids[doc.pmid] = doc_id
            if doc.doi:
                dois[doc.doi.lower()] = doc_id
            report.added.append({"id": doc_id, "path": str(target), "title": doc.title,
                                 "year": doc.year, "source_type": doc.source_type,
                                 "source": record.source_name, "format": record.fmt,
                                 "pages": doc.extra.get("page_count")})  # fmt: skip
        return report

    @staticmethod
    def _metadata(
        record: Record, extra: dict[str, Any], label: str, report: AddReport
    ) -> dict[str, Any]:
        meta = {k: v for k, v in record.meta.items() if k != "title_guess"}
        # PubMed, JATS and our notes carry curated metadata: flags and sidecars only fill gaps.
        # PDF and text metadata is weak: flags and sidecars replace it.
        curated = record.fmt in ("pubmed", "jats") or (record.fmt == "markdown" and "title" in meta)
        for key, value in extra.items():
            if value not in (None, "") and not (curated and meta.get(key) not in (None, "", [])):
                meta[key] = value
        if not meta.get("title"):
            guess = record.meta.get("title_guess")
            if not guess:
                raise IngestError(
                    label, "no title found", "pass --title or write 'title:' in a sidecar YAML"
                )
            meta["title"] = guess
            lines = record.body.lstrip("\n").split("\n")
            if lines and lines[0].strip().lstrip("\\") == guess:
                # the first line was the title: it becomes the note's heading
                record.body = "\n".join(lines[1:]).lstrip("\n")
            report.warnings.append(f"{label}: title taken from the text ('{guess[:60]}'); "
                                   "pass --title to correct it")  # fmt: skip
        if isinstance(meta.get("year"), str) and str(meta["year"]).strip().isdigit():
            meta["year"] = int(meta["year"])
        if not meta.get("year"):
            raise IngestError(label, "publication year unknown",
                              f"pass --year YYYY or write 'year: YYYY' in {label}.yaml")  # fmt: skip
        meta.setdefault("source_type", "other")
        if not meta.get("source_type"):
            meta["source_type"] = "other"
        problem = field_problem("id", meta["id"]) if meta.get("id") else None
        if problem:
            raise IngestError(label, problem, "fix the id in the sidecar")
        return meta

    def _create(self, target: Path, text: str) -> None:
        """Write `text` to a new file `target` atomically; never replaces an existing file."""
        self.added_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            tmp.write_text(text, encoding="utf-8")
            try:
                os.link(tmp, target)
            except FileExistsError as exc:
                raise IngestError(target, "exists already", "choose another id") from exc
            except OSError:
                # file systems without hard links: exclusive create, then fill
                with target.open("x", encoding="utf-8") as fh:
                    fh.write(text)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
