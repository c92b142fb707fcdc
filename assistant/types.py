"""Plain data types passed between pipeline stages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SOURCE_TYPES: tuple[str, ...] = (
    "review",
    "guideline",
    "rct",
    "meta-analysis",
    "cohort",
    "case-series",
    "consensus",
    "textbook",
    "other",
)

MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")
# the citation fields every source carries (Document.source_dict, references, the API's models)
CITATION_FIELDS = ("id", "title", "authors", "journal", "year", "pmid", "doi", "url", "source_type")


@dataclass(frozen=True)
class Document:
    """One source: its metadata and the Markdown body of its note."""

    id: str
    title: str
    year: int
    source_type: str
    body: str
    path: Path
    body_offset: int = 0
    authors: tuple[str, ...] = ()
    journal: str | None = None
    volume: str | None = None
    pages: str | None = None
    pmid: str | None = None
    doi: str | None = None
    url: str | None = None
    topics: tuple[str, ...] = ()
    summary: str | None = None
    verified: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def source_dict(self) -> dict[str, Any]:
        """The citation fields shown with every passage."""
        out = {name: getattr(self, name) for name in CITATION_FIELDS}
        out["authors"] = list(self.authors)
        return out

    def metadata_dict(self) -> dict[str, Any]:
        """Everything but the body, for listings and the index."""
        out = self.source_dict()
        out.update(
            volume=self.volume,
            pages=self.pages,
            topics=list(self.topics),
            summary=self.summary,
            verified=list(self.verified),
            path=str(self.path),
            fingerprint=self.fingerprint,
        )
        if self.extra:
            out["extra"] = self.extra
        return out


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
