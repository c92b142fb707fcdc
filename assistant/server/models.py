"""Request and response models of the HTTP API: the OpenAPI document is built from these."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..citation_export import FORMATS
from ..currency import REVIEW_YEAR
from ..source import FIRST_YEAR, SourceType
from ..types import CITATION_FIELDS, MODES, SOURCE_TYPES, Filters

API_KEY_HEADER = "X-API-Key"
MAX_K = 50
MAX_OFFSET = 1000
MAX_HISTORY_TURNS = 50
MAX_TURN_CHARS = 20000
HARD_MAX_QUESTION_CHARS = 100000  # the schema's bound; the configured limit is checked per request
HIDDEN_SOURCE_FIELDS = ("path", "fingerprint")  # server-side details never sent to clients

Mode = Literal["hybrid", "dense", "bm25"]
assert set(Mode.__args__) == set(MODES)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- request models
class Turn(BaseModel):
    """One earlier turn of the conversation, as kept by the client."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"] = Field(description="Who said it.")
    content: str = Field(max_length=MAX_TURN_CHARS, description="What was said.")


class FiltersIn(BaseModel):
    """Restrict retrieval to some sources."""

    model_config = ConfigDict(extra="forbid")
    year_min: int | None = Field(
        default=None, ge=FIRST_YEAR, le=2200, description="Earliest publication year."
    )
    year_max: int | None = Field(
        default=None, ge=FIRST_YEAR, le=2200, description="Latest publication year."
    )
    source_types: list[SourceType] = Field(
        default_factory=list,
        max_length=len(SOURCE_TYPES),
        description="Only these source types (empty: all).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> FiltersIn:
        if (
            self.year_min is not None
            and self.year_max is not None
            and self.year_min > self.year_max
        ):
            raise ValueError("year_min is after year_max; swap them")
        return self

    def to_filters(self) -> Filters | None:
        f = Filters(self.year_min, self.year_max, tuple(self.source_types))
        return None if f.is_empty() else f


class AskRequest(BaseModel):
    """A question, with the conversation so far for follow-ups."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "question": "What is the survival after hepatic resection of liver metastases?",
                    "history": [],
                    "k": 5,
                    "mode": "hybrid",
                }
            ]
        },
    )
    question: str = Field(
        min_length=1,
        max_length=HARD_MAX_QUESTION_CHARS,
        description="The question (not empty; at most ASSISTANT_MAX_QUESTION_CHARS characters).",
    )
    history: list[Turn] = Field(
        default_factory=list,
        max_length=MAX_HISTORY_TURNS,
        description="Earlier turns, oldest first; a follow-up is resolved against them.",
    )
    k: int | None = Field(default=None, ge=1, le=MAX_K, description="Passages to return.")
    mode: Mode | None = Field(default=None, description="Retrieval mode (default: setting).")
    filters: FiltersIn | None = Field(default=None, description="Restrict the sources searched.")


class SearchRequest(BaseModel):
    """A search query: passages only, no answer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"query": "PRRT kidney toxicity", "k": 5, "mode": "hybrid", "offset": 0}]
        },
    )
    query: str = Field(min_length=1, max_length=HARD_MAX_QUESTION_CHARS, description="Query.")
    k: int | None = Field(default=None, ge=1, le=MAX_K, description="Passages to return.")
    mode: Mode | None = Field(default=None, description="Retrieval mode (default: setting).")
    filters: FiltersIn | None = Field(default=None, description="Restrict the sources searched.")
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, description="Skip this many passages.")


ASK_EXAMPLES: dict[str, Any] = {
    "question": {
        "summary": "A question",
        "value": {
            "question": "Which patients with liver metastases are candidates for liver "
            "transplantation?"
        },
    },
    "follow-up": {
        "summary": "A follow-up with history and filters",
        "value": {
            "question": "And what about its recurrence rate?",
            "history": [
                {"role": "user", "content": "Outcomes of liver transplantation?"},
                {"role": "assistant", "content": "Five-year survival ... [1]"},
            ],
            "k": 5,
            "mode": "hybrid",
            "filters": {"year_min": 2005, "source_types": ["cohort", "review"]},
        },
    },
}


CiteFormat = Literal[FORMATS]  # type: ignore[valid-type]
MAX_CITE_IDS = 100


class CiteRequest(BaseModel):
    """Sources to export for a reference manager (e.g. the source ids of an answer's passages)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"ids": ["rinke-2009-promid"], "format": "ris"}]},
    )
    ids: list[str] = Field(
        min_length=1,
        max_length=MAX_CITE_IDS,
        description="Source ids (`passages[].source.id` of an answer); each is written once.",
    )
    format: CiteFormat = Field(description="ris or bibtex.")


class SourceQuery(BaseModel):
    """How to return one source (unknown parameters are refused)."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["json", "ris", "bibtex"] = Field(
        default="json", description="json (metadata and note text), ris or bibtex."
    )


class SourcesQuery(BaseModel):
    """Paging of the source list (unknown parameters are refused)."""

    model_config = ConfigDict(extra="forbid")
    offset: int = Field(default=0, ge=0, description="Skip this many sources.")
    limit: int = Field(default=50, ge=1, le=500, description="Sources per page.")


# ---------------------------------------------------------------------------- response models
class CitationFields(BaseModel):
    """The citation fields every source carries (more fields may come with it)."""

    model_config = ConfigDict(extra="allow")
    id: str
    title: str
    authors: list[str]
    journal: str | None
    year: int
    pmid: str | None
    doi: str | None
    url: str | None
    source_type: str


assert tuple(CitationFields.model_fields) == CITATION_FIELDS  # one list of citation fields


class SourceOut(CitationFields):
    """Citation fields of a source."""

    after_review: bool = Field(
        default=False,
        description=f"Published after the {REVIEW_YEAR} review (year > {REVIEW_YEAR}).",
    )
    label: str | None = Field(
        default=None, description='Short citation label, e.g. "Le Treut 2013".'
    )


class Reference(CitationFields):
    """A source that passage text cites by its label (note ids are never shown)."""

    label: str | None = Field(description='The label the text uses, e.g. "Le Treut 2013".')
    after_review: bool = False


class CorpusStamp(BaseModel):
    """The corpus snapshot an answer comes from."""

    fingerprint: str = Field(description="Fingerprint of the indexed corpus files.")
    newest_source_year: int | None = Field(description="Year of the newest indexed source.")
    n_sources: int = Field(description="Number of indexed sources.")
    review_year: int = Field(description="`after_review` marks sources published after this year.")


class PassageOut(BaseModel):
    """A retrieved passage with its source; `page` only for PDF sources."""

    rank: int
    score: float
    chunk_id: str
    text: str
    section: str
    source: SourceOut
    similarity: float
    span: list[int]
    page: int | None = None


class AskResponse(BaseModel):
    """The same object as `assistant ask --json`."""

    question: str
    answer: str | None = Field(description="Extractive answer with [n] markers, or null.")
    abstained: bool
    message: str | None = Field(description="Why no answer was given, when abstained.")
    query: str = Field(description="The query actually searched (follow-ups are rewritten).")
    mode: str
    passages: list[PassageOut]
    timings_ms: dict[str, float]
    corpus: CorpusStamp
    references: list[Reference] = Field(
        default_factory=list,
        description='Sources the passages cite by label ("Le Treut 2013"), with their citations.',
    )


class SearchResponse(BaseModel):
    query: str
    mode: str
    offset: int
    passages: list[PassageOut]
    timings_ms: dict[str, float]


class SourceMeta(SourceOut):
    volume: str | None = None
    pages: str | None = None
    topics: list[str] = []
    summary: str | None = None
    verified: list[str] = []
    chunks: int | None = None


class SourceList(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[SourceMeta]


class SourceDetail(SourceMeta):
    text: str | None = Field(
        description="The full text of the source note (other notes cited by their label)."
    )
    references: list[Reference] = Field(
        default_factory=list, description="Sources the text cites by label."
    )


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Ready(BaseModel):
    status: Literal["ready"]
    sources: int
    chunks: int
    model: str
    built: str | None = None
    corpus: CorpusStamp | None = None
    snapshot: str | None = Field(
        default=None, description="Name of the live index snapshot (changes on every reload)."
    )
    corpus_fingerprint: str | None = Field(
        default=None, description="Fingerprint of the corpus the live snapshot was built from."
    )


class Reloaded(BaseModel):
    """The index snapshot live after a reload."""

    reloaded: bool = Field(description="Whether the live snapshot changed.")
    snapshot: str | None
    created_at: str | None
    corpus_fingerprint: str | None
    sources: int
    chunks: int


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error: a code, what is wrong, which field, and how to fix it."""

    error: str
    message: str
    field: str | None = None
    hint: str | None = None
    errors: list[FieldProblem] = []


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entry documenting these error statuses."""
    names = {
        400: "Malformed request (e.g. invalid JSON)",
        401: "Missing or wrong API key",
        403: "Not allowed from this client",
        404: "Not found",
        413: "Request body too large",
        415: "The body is not sent as application/json",
        422: "Invalid input; `field` names it",
        429: "Too many requests; see Retry-After",
        503: "Not ready yet (model or index loading)",
    }
    return {c: {"model": ErrorBody, "description": names[c]} for c in codes}


V1_ERRORS = (400, 401, 413, 415, 422, 429, 503)
