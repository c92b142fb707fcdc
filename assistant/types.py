"""Plain data types passed between pipeline stages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .source import (
    CITATION_FIELDS,
    EXTRA_FIELDS,
    FIELD_ORDER,
    LISTING_FIELDS,
    REQUIRED_FIELDS,
    SOURCE_TYPES,
    SourceMetadata,
)

__all__ = ["CITATION_FIELDS", "MODES", "SOURCE_TYPES", "Answer", "Chunk", "Document", "Filters"]

MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")
_META_FIELDS = frozenset(FIELD_ORDER)


@dataclass(frozen=True, init=False)
class Document:
    """One source: its metadata (`meta`, a SourceMetadata) and the Markdown body of its note.

    Every metadata field reads as an attribute too: `doc.year` is `doc.meta.year`. The loader
    passes `meta` validated; other callers (BEIR, tests) may give the fields as keywords, which
    are taken as they are, without the note rules (a BEIR document has year 0).
    """

    meta: SourceMetadata
    body: str
    path: Path
    body_offset: int = 0
    fingerprint: str = ""

    def __init__(
        self,
        *,
        body: str,
        path: Path,
        body_offset: int = 0,
        fingerprint: str = "",
        meta: SourceMetadata | None = None,
        **fields: Any,
    ) -> None:
        if meta is None:
            unknown = sorted(set(fields) - set(FIELD_ORDER))
            missing = [n for n in REQUIRED_FIELDS if n not in fields]
            if unknown or missing:
                raise TypeError(f"Document: unknown fields {unknown}, missing fields {missing}")
            meta = SourceMetadata.model_construct(**fields)
        elif fields:
            raise TypeError("Document: give the metadata as meta= or as fields, not both")
        for name, value in (("meta", meta), ("body", body), ("path", path),
                            ("body_offset", body_offset), ("fingerprint", fingerprint)):  # fmt: skip
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # called only for names the dataclass does not have: the metadata fields
        meta = self.__dict__.get("meta")
        if meta is None or name not in _META_FIELDS:
            raise AttributeError(f"'Document' object has no attribute '{name}'")
        return meta.__dict__[name]

    @property
    def extra(self) -> dict[str, Any]:
        """The fields given a value that are neither citation nor listing fields (issue,
        page_count, provenance, ...)."""
        given = self.meta.model_fields_set
        out = {name: getattr(self.meta, name) for name in EXTRA_FIELDS if name in given}
        return {k: v for k, v in out.items() if v is not None}

    def source_dict(self) -> dict[str, Any]:
        """The citation fields shown with every passage."""
        return {name: _plain(getattr(self.meta, name)) for name in CITATION_FIELDS}

    def metadata_dict(self) -> dict[str, Any]:
        """Everything but the body, for listings and the index."""
        out = self.source_dict()
        out.update({name: _plain(getattr(self.meta, name)) for name in LISTING_FIELDS})
        out.update(path=str(self.path), fingerprint=self.fingerprint)
        if self.extra:
            out["extra"] = self.extra
        return out


def _plain(value: Any) -> Any:
    """Tuples as lists, for JSON."""
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Chunk:
    """A window of a document's text, with where it sits in the source file."""

    id: str
    doc_id: str
    n: int
    text: str
    section: str
    start: int
    end: int
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Passage:
    """A retrieved chunk with its score and source."""

    rank: int
    score: float
    chunk: Chunk
    source: dict[str, Any]
    similarity: float = 0.0
    display_text: str | None = None  # the text with note ids shown as citation labels
    cites: list[str] = field(default_factory=list)  # ids of the sources the text refers to

    @property
    def text(self) -> str:
        """The passage as a reader sees it (cross-references as "Le Treut 2013")."""
        return self.display_text if self.display_text is not None else self.chunk.text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "chunk_id": self.chunk.id,
            "text": self.text,
            "section": self.chunk.section,
            "source": self.source,
            "similarity": round(float(self.similarity), 6),
            "span": [self.chunk.start, self.chunk.end],
        }
        if self.chunk.page is not None:
            out["page"] = self.chunk.page
        return out


@dataclass
class Filters:
    """Restrictions on which sources may be retrieved."""

    year_min: int | None = None
    year_max: int | None = None
    source_types: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return self.year_min is None and self.year_max is None and not self.source_types

    def allows(self, source: dict[str, Any]) -> bool:
        year = source.get("year")
        if self.year_min is not None and (year is None or year < self.year_min):
            return False
        if self.year_max is not None and (year is None or year > self.year_max):
            return False
        return not (self.source_types and source.get("source_type") not in self.source_types)

    def describe(self) -> str:
        """'year ≥ 2009, type rct/guideline', 'year 2010' or 'none'."""
        parts = []
        if self.year_min is not None and self.year_min == self.year_max:
            parts.append(f"year {self.year_min}")
        else:
            if self.year_min is not None:
                parts.append(f"year ≥ {self.year_min}")
            if self.year_max is not None:
                parts.append(f"year ≤ {self.year_max}")
        if self.source_types:
            parts.append("type " + "/".join(self.source_types))
        return ", ".join(parts) or "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "year_min": self.year_min,
            "year_max": self.year_max,
            "source_types": list(self.source_types),
        }


@dataclass
class Answer:
    """What the assistant returns for one question."""

    question: str
    query: str
    answer: str | None
    abstained: bool
    passages: list[Passage]
    message: str | None = None
    mode: str = "hybrid"
    timings_ms: dict[str, float] = field(default_factory=dict)
    corpus: dict[str, Any] = field(default_factory=dict)  # snapshot stamp (see currency.py)
    # sources the passages refer to by citation label ("Le Treut 2013"), each with its label
    references: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "message": self.message,
            "query": self.query,
            "mode": self.mode,
            "passages": [p.to_dict() for p in self.passages],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "corpus": dict(self.corpus),
            "references": [dict(r) for r in self.references],
        }
