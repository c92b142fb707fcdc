"""The metadata of a source: one pydantic model, the single definition of every field.

A note's YAML front matter (docs/corpus-format.md), a document added with `corpus add`, the
citation fields shown with every passage and the metadata kept in the index all come from
`SourceMetadata`. Adding a metadata field means adding it here (with its description and rule)
and to docs/corpus-format.md; the loader, `corpus add` (field order of a written note),
listings and the index follow. A citation field is also named in `CITATION_FIELDS`.

Every rule fails with a message that names the field, what is wrong and what is expected; the
loader (corpus.py) puts the file and the line of the offending key in front of it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Literal, NoReturn, TypeAlias, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

SourceType = Literal[
    "review",
    "guideline",
    "rct",
    "meta-analysis",
    "cohort",
    "case-series",
    "consensus",
    "textbook",
    "other",
]
SOURCE_TYPES: tuple[str, ...] = get_args(SourceType)
ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
PMID_RE = re.compile(r"^\d{1,9}$")
DOI_PREFIX = "10."
FIRST_YEAR = 1800


def last_year() -> int:
    """The latest publication year accepted: next year (issues dated ahead of print)."""
    return date.today().year + 1


def is_scalar(value: Any) -> bool:
    """Text, a number or a date: what a single-valued field may hold."""
    return isinstance(value, str | int | float | date) and not isinstance(value, bool)


def is_blank(value: Any) -> bool:
    """None or whitespace-only text: a field written with no value counts as absent."""
    return value is None or (isinstance(value, str) and not value.strip())


# ------------------------------------------------------------------------- rules
def _fail(problem: str) -> NoReturn:
    # the message is passed as context so that braces in a value are never formatted
    raise PydanticCustomError("source_metadata", "{problem}", {"problem": problem})


def _single(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not is_scalar(value):
        _fail(f"{name} must be a single value, not a list or mapping")
    return str(value).strip()


def _text(value: Any, info: Any) -> str | None:
    return _single(value, info.field_name)


def _items(value: Any, info: Any) -> tuple[str, ...]:
    name = info.field_name
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        _fail(f"{name} must be a list, e.g. [a, b]")
    if not all(is_scalar(v) for v in value):
        _fail(f"every item of {name} must be a single value")
    return tuple(str(v).strip() for v in value)


def _slug(value: Any, info: Any) -> str | None:
    text = _single(value, info.field_name)
    if text is not None and not ID_RE.match(text):
        _fail(f"id '{text}' must be a slug of a-z, 0-9 and '-'")
    return text


def _year(value: Any, info: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(f"year must be a whole number, got {value!r}")
    if not FIRST_YEAR <= value <= last_year():
        _fail(f"year {value} is out of range ({FIRST_YEAR} to {last_year()})")
    return value


def _source_type(value: Any, info: Any) -> Any:
    if value not in SOURCE_TYPES:
        _fail(f"source_type '{value}' is not one of {', '.join(SOURCE_TYPES)}")
    return value


def _pmid(value: Any, info: Any) -> str | None:
    text = _single(value, "pmid")
    if text is not None and not PMID_RE.match(text):
        _fail(f"pmid must be digits only (1 to 9 of them), got {value!r}")
    return text


def _doi(value: Any, info: Any) -> str | None:
    text = _single(value, "doi")
    if text is not None and not text.startswith(DOI_PREFIX):
        _fail(f"doi must start with '{DOI_PREFIX}', got {value!r}")
    return text


def _whole(value: Any, info: Any) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        _fail(f"{info.field_name} must be a whole number, got {value!r}")
    return value


def _mapping(value: Any, info: Any) -> Any:
    if value is not None and not (
        isinstance(value, dict) and all(is_scalar(v) for v in value.values())
    ):
        _fail(f"{info.field_name} must be a mapping of single values")
    return None if value is None else {str(k): v for k, v in value.items()}


Text = Annotated[str | None, BeforeValidator(_text)]
Items = Annotated[tuple[str, ...], BeforeValidator(_items)]


# ------------------------------------------------------------------------- the model
class SourceMetadata(BaseModel):
    """A source's metadata: the YAML front matter of its note. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, BeforeValidator(_slug)] = Field(
        pattern=ID_RE.pattern,
        description="Unique slug of a-z, 0-9 and '-' (the note's file name without .md), "
        "e.g. rinke-2009-promid.",
    )
    title: Annotated[str, BeforeValidator(_text)] = Field(
        description="The source's own title.", min_length=1
    )
    year: Annotated[int, BeforeValidator(_year)] = Field(
        description=f"Publication year, a whole number from {FIRST_YEAR} to next year."
    )
    source_type: Annotated[SourceType, BeforeValidator(_source_type)] = Field(
        description="The kind of source: " + ", ".join(SOURCE_TYPES) + "."
    )
    authors: Items = Field(
        default=(),
        description='Authors as "Surname Initials", in order; the list may end with "et al.".',
    )
    journal: Text = Field(default=None, description="Journal, as its NLM abbreviation.")
    volume: Text = Field(default=None, description="Volume (text).")
    issue: Text = Field(default=None, description="Issue (text).")
    pages: Text = Field(default=None, description='Page range as printed, e.g. "4656-4663".')
    pmid: Annotated[str | None, BeforeValidator(_pmid)] = Field(
        default=None, pattern=PMID_RE.pattern, description="PubMed id: 1 to 9 digits."
    )
    doi: Annotated[str | None, BeforeValidator(_doi)] = Field(
        default=None,
        pattern=rf"^{re.escape(DOI_PREFIX)}",
        description=f"DOI without a resolver prefix; starts with '{DOI_PREFIX}'.",
    )
    url: Text = Field(default=None, description="Web address of the source.")
    topics: Items = Field(
        default=(), description="Topic slugs from the list in docs/corpus-format.md."
    )
    summary: Text = Field(default=None, description="One or two sentences in our own words.")
    verified: Items = Field(
        default=(),
        description="Which identifiers (pmid, doi, ...) were checked against a stored page.",
    )
    page_count: Annotated[int | None, BeforeValidator(_whole)] = Field(
        default=None, description="Pages of the original file (PDFs added with `corpus add`)."
    )
    provenance: Annotated[dict[str, Any] | None, BeforeValidator(_mapping)] = Field(
        default=None,
        description="Where an added document came from: a mapping of single values (original "
        "file, format, sha256, date added); written by `corpus add`.",
    )


# The citation fields every source carries, in the order they are shown (Document.source_dict,
# passages' `source`, references, the API's citation models).
CITATION_FIELDS: tuple[str, ...] = (
    "id", "title", "authors", "journal", "year", "pmid", "doi", "url", "source_type",
)  # fmt: skip
# Listed after the citation fields by Document.metadata_dict; every other field goes under
# its "extra" (issue, page_count, provenance, and any field added later).
LISTING_FIELDS: tuple[str, ...] = ("volume", "pages", "topics", "summary", "verified")
FIELD_ORDER: tuple[str, ...] = tuple(SourceMetadata.model_fields)  # front matter of a note
REQUIRED_FIELDS: tuple[str, ...] = tuple(
    name for name, info in SourceMetadata.model_fields.items() if info.is_required()
)
OPTIONAL_FIELDS: tuple[str, ...] = tuple(n for n in FIELD_ORDER if n not in REQUIRED_FIELDS)
EXTRA_FIELDS: tuple[str, ...] = tuple(
    n for n in FIELD_ORDER if n not in CITATION_FIELDS and n not in LISTING_FIELDS
)
assert set(CITATION_FIELDS) | set(LISTING_FIELDS) <= set(FIELD_ORDER)
# A source as a plain mapping of these fields by name: `Document.metadata_dict()`, the index's
# `sources`, a passage's `source`; what citations, exports and labels read.
SourceRecord: TypeAlias = Mapping[str, Any]


# ------------------------------------------------------------------------- validation
def present(meta: dict[Any, Any]) -> dict[str, Any]:
    """The fields given a value (a key with no value counts as absent), keys as text."""
    return {str(k): v for k, v in meta.items() if not is_blank(v)}


def problems_of(exc: ValidationError) -> list[tuple[str | None, str]]:
    """(field, what is wrong and the fix) for each error of validating SourceMetadata; the
    field is None for a missing one (there is no key to point at)."""
    out: list[tuple[str | None, str]] = []
    for err in exc.errors():
        loc = err["loc"]
        name = str(loc[0]) if loc else ""
        if err["type"] == "missing":
            out.append((None, f"missing required field '{name}'"))
        elif err["type"] == "extra_forbidden":
            near = difflib.get_close_matches(name, FIELD_ORDER, n=1)
            fix = f"did you mean '{near[0]}'?" if near else "allowed: " + ", ".join(FIELD_ORDER)
            out.append((name, f"unknown field '{name}'; {fix} (see docs/corpus-format.md)"))
        elif err["type"] == "source_metadata":
            out.append((name, err["msg"]))
        else:
            out.append((name, f"{'.'.join(str(p) for p in loc)}: {err['msg']}"))
    return out


def validate_metadata(meta: dict[Any, Any]) -> SourceMetadata:
    """The metadata of a front-matter mapping; raises pydantic's ValidationError (read it with
    `problems_of`). Keys with no value count as absent."""
    return SourceMetadata.model_validate(present(meta))


def field_problem(name: str, value: Any) -> str | None:
    """What is wrong with `value` for the field `name` by the model's own rule, else None."""
    try:
        SourceMetadata.model_validate({name: value})
    except ValidationError as exc:
        for field, problem in problems_of(exc):
            if field == name:
                return problem
    return None
