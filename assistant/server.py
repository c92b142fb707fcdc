"""HTTP API and web widget: a thin FastAPI shell over one Assistant built at start-up.

Routes only translate HTTP to `Assistant` calls. Encoding runs in worker threads (never on the
event loop). Every client mistake becomes a 4xx with a JSON body naming the field at fault:
`{"error": code, "message": ..., "field": ..., "hint": ..., "errors": [...]}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any, Literal, TypeVar

import anyio
from fastapi import APIRouter, Body, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__
from .assistant import Assistant
from .citation_export import FORMATS, MEDIA_TYPES, SUFFIXES, export
from .currency import REVIEW_YEAR
from .errors import AssistantError, InputError
from .settings import Settings
from .types import MODES, SOURCE_TYPES, Filters

log = logging.getLogger("assistant.server")

API_KEY_HEADER = "X-API-Key"
MAX_K = 50
MAX_OFFSET = 1000
MAX_HISTORY_TURNS = 50
MAX_TURN_CHARS = 20000
HARD_MAX_QUESTION_CHARS = 100000  # the schema's bound; the configured limit is checked per request
HIDDEN_SOURCE_FIELDS = ("path", "fingerprint")  # server-side details never sent to clients

Mode = Literal["hybrid", "dense", "bm25"]
SourceType = Literal[SOURCE_TYPES]  # type: ignore[valid-type]
assert set(Mode.__args__) == set(MODES)  # type: ignore[attr-defined]

T = TypeVar("T")


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
        default=None, ge=1800, le=2200, description="Earliest publication year."
    )
    year_max: int | None = Field(
        default=None, ge=1800, le=2200, description="Latest publication year."
    )
    source_types: list[SourceType] = Field(  # type: ignore[valid-type]
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
    format: CiteFormat = Field(description="ris or bibtex.")  # type: ignore[valid-type]


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
class SourceOut(BaseModel):
    """Citation fields of a source."""

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
    after_review: bool = Field(
        default=False, description=f"Published after the {REVIEW_YEAR} review (year > {REVIEW_YEAR})."
    )
    label: str | None = Field(
        default=None, description='Short citation label, e.g. "Le Treut 2013".'
    )


class Reference(BaseModel):
    """A source that passage text cites by its label (note ids are never shown)."""

    model_config = ConfigDict(extra="allow")
    id: str
    label: str | None = Field(description='The label the text uses, e.g. "Le Treut 2013".')
    title: str
    authors: list[str]
    journal: str | None
    year: int
    pmid: str | None
    doi: str | None
    url: str | None
    source_type: str
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
        description="Sources the passages cite by label (\"Le Treut 2013\"), with their citations.",
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


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
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


# ---------------------------------------------------------------------------- errors
class ApiError(Exception):
    """An error response with a JSON body naming the field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.field, self.hint, self.headers, self.errors = field, hint, headers, errors or []

    def response(self) -> JSONResponse:
        body = {"error": self.code, "message": self.message, "field": self.field,
                "hint": self.hint, "errors": self.errors}  # fmt: skip
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    for e in errors:
        if e.get("type") == "json_invalid":
            detail = (e.get("ctx") or {}).get("error", "")
            return ApiError(
                400,
                "malformed_json",
                f"the request body is not valid JSON{': ' + str(detail) if detail else ''}",
                field="body",
                hint="send a JSON object with Content-Type: application/json",
            )
    problems = []
    for e in errors:
        field = _field_name(e.get("loc", ()))
        msg = str(e.get("msg", "invalid value"))
        if e.get("type") == "extra_forbidden":
            msg = "unknown field; check its spelling against /docs"
        problems.append({"field": field, "message": msg})
    first = problems[0] if problems else {"field": "body", "message": "invalid request"}
    return ApiError(
        422,
        "invalid_input",
        f"{first['field']}: {first['message']}",
        field=first["field"],
        hint="see the request schema at /docs",
        errors=problems,
    )


def _input_error(exc: InputError, field: str) -> ApiError:
    return ApiError(422, "invalid_input", f"{field}: {exc.message}", field=field, hint=exc.hint,
                    errors=[{"field": field, "message": exc.message}])  # fmt: skip


# ---------------------------------------------------------------------------- guard middleware
class RateLimiter:
    """Token bucket per client: `per_minute` requests a minute, bursts up to that many."""

    def __init__(self, per_minute: int, max_clients: int = 10000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds to wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[client] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if len(self._buckets) > self.max_clients:
                self._prune(now)
            return wait

    def _prune(self, now: float) -> None:
        full = [c for c, (t, last) in self._buckets.items()
                if t + (now - last) * self.rate >= self.capacity]  # fmt: skip
        for c in full:
            del self._buckets[c]
        while len(self._buckets) > self.max_clients:  # all busy: forget the oldest
            del self._buckets[min(self._buckets, key=lambda c: self._buckets[c][1])]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _within(host: str, networks: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in networks)


def forwarded_hops(scope: Scope) -> list[str]:
    """The X-Forwarded-For addresses of a request, nearest last (every header line joined)."""
    headers = scope.get("headers", [])
    values = [v.decode("latin-1") for k, v in headers if k.lower() == b"x-forwarded-for"]
    return [hop.strip() for v in values for hop in v.split(",") if hop.strip()]


def client_address(scope: Scope, trusted: Sequence[Network]) -> str:
    """The address a request is counted against: the connecting peer, unless that peer is a
    trusted proxy; then the nearest X-Forwarded-For address that is not a trusted proxy.

    With no trusted proxies (the default) X-Forwarded-For is ignored, so a client cannot pick
    a new identity per request by sending the header.
    """
    client = str((scope.get("client") or ("unknown", 0))[0])
    if not trusted or not _within(client, trusted):
        return client
    for hop in reversed(forwarded_hops(scope)):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # not an address: keep the last one a trusted proxy vouched for
        client = hop
        if not _within(hop, trusted):
            break
    return client


class GuardMiddleware:
    """Before any route runs: rate limit and API key on /v1, body size limit, safe headers."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        per_minute = settings.rate_limit_per_minute
        self.limiter = RateLimiter(per_minute) if per_minute > 0 else None
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        is_api = path == "/v1" or path.startswith("/v1/")
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}

        async def send_safe(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"no-referrer")]  # fmt: skip
                if is_api:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        error = self._check(scope, headers, is_api)
        if error is None and scope["method"] in ("POST", "PUT", "PATCH"):
            body, error = await self._read_body(receive, headers)
            if error is None:
                receive = _replay(body, receive)
        if error is not None:
            await error.response()(scope, receive, send_safe)
            return
        await self.app(scope, receive, send_safe)

    def _check(self, scope: Scope, headers: dict[str, bytes], is_api: bool) -> ApiError | None:
        if not is_api:
            return None
        if self.limiter is not None:
            wait = self.limiter.check(client_address(scope, self.trusted))
            if wait > 0:
                return ApiError(
                    429,
                    "rate_limited",
                    f"more than {self.settings.rate_limit_per_minute} requests a minute "
                    "from this client",
                    hint=f"wait {math.ceil(wait)} s and try again",
                    headers={"Retry-After": str(math.ceil(wait))},
                )
        key = self.settings.api_key
        if key:
            given = headers.get(API_KEY_HEADER.lower(), b"")
            if not hmac.compare_digest(given, key.encode("utf-8")):
                return ApiError(
                    401,
                    "unauthorized",
                    "missing or wrong API key" if given else "this API requires an API key",
                    field=API_KEY_HEADER,
                    hint=f"send the key in the {API_KEY_HEADER} header",
                    headers={"WWW-Authenticate": API_KEY_HEADER},
                )
        return None

    async def _read_body(
        self, receive: Receive, headers: dict[str, bytes]
    ) -> tuple[bytes, ApiError | None]:
        limit = self.settings.max_body_bytes
        too_big = ApiError(
            413,
            "body_too_large",
            f"the request body is larger than {limit} bytes",
            field="body",
            hint="shorten the question or the history sent with it",
        )
        declared = headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    return b"", too_big
            except ValueError:
                return b"", ApiError(400, "bad_request", "invalid Content-Length header",
                                     field="Content-Length")  # fmt: skip
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", too_big
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# ---------------------------------------------------------------------------- app factory
def _web_file(name: str) -> bytes:
    return resources.files("assistant").joinpath("web", name).read_bytes()


def _public(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in HIDDEN_SOURCE_FIELDS}


CITE_CONTENT: dict[str, Any] = {
    MEDIA_TYPES[f]: {"schema": {"type": "string"}} for f in FORMATS
}


def cite_response(records: list[dict[str, Any]], fmt: str, name: str) -> Response:
    """Sources as a RIS or BibTeX download (`name` + .ris/.bib as the file name)."""
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80] or "sources"
    return Response(
        export(records, fmt),
        media_type=f"{MEDIA_TYPES[fmt]}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}{SUFFIXES[fmt]}"'},
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


DEMO_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the swagger-ui-bundle package's files, so it works offline."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-static", StaticFiles(directory=swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon-32x32.png",
        )
        page.headers["Content-Security-Policy"] = docs_csp(bytes(page.body))
        return page


def docs_csp(html: bytes) -> str:
    """A Content-Security-Policy for the Swagger UI page: its own files, plus its one inline
    script allowed by hash (no 'unsafe-inline' for scripts)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() + "'"
        for m in re.finditer(rb"<script>(.*?)</script>", html, re.S)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def create_app(assistant_or_settings: Assistant | Settings | None = None) -> FastAPI:
    """The FastAPI app over one Assistant (built here from Settings when given those).

    An Assistant that is not loaded yet is loaded in a background thread at start-up: `/healthz`
    answers at once, `/readyz` and `/v1` answer 503 until the model and index are in memory.
    """
    if isinstance(assistant_or_settings, Assistant):
        assistant = assistant_or_settings
    else:
        assistant = Assistant(assistant_or_settings or Settings())
    settings = assistant.settings
    widget_js = _web_file("widget.js")
    demo_html = _web_file("demo.html")

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202 - Starlette's lifespan protocol
        if not assistant.is_loaded and app.state.loader is None:
            app.state.loader = threading.Thread(target=_load, name="assistant-load", daemon=True)
            app.state.loader.start()
        stop = threading.Event()
        if settings.index_watch_seconds > 0:
            threading.Thread(target=_watch, args=(stop,), name="index-watch", daemon=True).start()
        yield
        stop.set()

    def reload_index(origin: str) -> dict[str, Any]:
        """Make the index saved in the index folder live if it is new (see Assistant.reload)."""
        result = assistant.reload()
        if result["reloaded"]:
            log.info("index reloaded (%s): snapshot %s built %s", origin, result["snapshot"],
                     result["created_at"])  # fmt: skip
        return result

    def _watch(stop: threading.Event) -> None:
        """Poll the index folder; switch to a newly saved index between requests."""
        reported = None
        while not stop.wait(settings.index_watch_seconds):
            if not assistant.is_loaded:
                continue
            try:
                reload_index("new index saved")
                reported = None
            except Exception as exc:  # noqa: BLE001 - keep serving the live snapshot
                if str(exc) != reported:
                    reported = str(exc)
                    log.error("cannot switch to the new index; the live one stays: %s", exc)

    def _load() -> None:
        try:
            assistant.load()
            for warning in assistant.warnings:
                log.warning("%s", warning)
            log.info("assistant ready: %s", assistant.status()["sources"])
        except Exception as exc:  # noqa: BLE001 - reported by /readyz
            app.state.load_error = str(exc)
            log.error("cannot load the assistant: %s", exc)

    app = FastAPI(
        title="GEP-NET liver metastases literature assistant",
        version=__version__,
        description=(
            "Retrieves and cites passages from the indexed literature on liver metastases of "
            "gastro-entero-pancreatic neuroendocrine tumours. It does not replace clinical "
            "judgement. Errors are JSON objects naming the field at fault."
        ),
        lifespan=lifespan,
        docs_url=None,  # served below from the swagger-ui-bundle package: no CDN
    )
    _offline_docs(app)
    app.state.assistant = assistant
    app.state.settings = settings
    app.state.loader = None
    app.state.load_error = None
    app.state.reload = reload_index  # `assistant serve` calls it on SIGHUP

    # -- errors
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        ctype = request.headers.get("content-type", "")
        media = ctype.split(";", 1)[0].strip().lower()
        on_body = any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors())
        if on_body and media and media != "application/json" and not media.endswith("+json"):
            return ApiError(415, "unsupported_media_type",
                            f"the body must be JSON sent as Content-Type: application/json, "
                            f"not {ctype[:100]}", field="Content-Type",
                            hint="send a JSON object with Content-Type: application/json",
                            ).response()  # fmt: skip
        return _validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and request.method in ("POST", "PUT", "PATCH"):
            # FastAPI's "error parsing the body": not UTF-8 text, or JSON nested too deeply
            return ApiError(400, "malformed_json", "the request body is not valid JSON (not "
                            "UTF-8 text, or nested too deeply)", field="body",
                            hint="send a JSON object with Content-Type: application/json",
                            ).response()  # fmt: skip
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: f"no route {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(
            exc.status_code, str(exc.detail))  # fmt: skip
        return ApiError(exc.status_code, code, message, hint="see /docs",
                        headers=getattr(exc, "headers", None)).response()  # fmt: skip

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s: %s", request.method, request.url.path,
                  type(exc).__name__, exc_info=settings.debug)  # fmt: skip
        return ApiError(
            500, "internal_error", "internal error", hint="see the server log"
        ).response()

    # -- helpers
    limiter = anyio.CapacityLimiter(settings.api_workers)

    def ready() -> Assistant:
        if not assistant.is_loaded:
            if app.state.load_error:
                raise ApiError(503, "not_ready", f"the assistant failed to load: "
                               f"{scrub(app.state.load_error)}", hint="see the server log")  # fmt: skip
            raise ApiError(503, "not_ready", "the model and index are still loading",
                           hint="retry in a few seconds", headers={"Retry-After": "5"})  # fmt: skip
        return assistant

    async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs), limiter=limiter)

    def check_question(text: str, field: str) -> str:
        try:
            return assistant.validate_question(text)
        except InputError as exc:
            raise _input_error(exc, field) from None

    async def run(fn: Callable[..., T], *args: Any, field: str, **kwargs: Any) -> T:
        try:
            return await in_thread(fn, *args, **kwargs)
        except InputError as exc:
            raise _input_error(exc, field) from None
        except AssistantError as exc:
            log.error("assistant error: %s", exc)
            raise ApiError(503, "unavailable", scrub(exc.message), hint=scrub(exc.hint or "")
                           or None) from None  # fmt: skip

    def scrub(text: str) -> str:
        """A message without server paths: the corpus and index folders by their role."""
        for folder, name in ((settings.index_dir, "<index>"), (settings.corpus_dir, "<corpus>")):
            for form in sorted({str(folder.resolve()), str(folder.absolute()), str(folder)},
                               key=len, reverse=True):  # fmt: skip
                text = text.replace(form, name)
        return text

    # -- open routes
    @app.get("/healthz", response_model=Health, tags=["health"], summary="The process is up")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get(
        "/readyz",
        response_model=Ready,
        responses=_errors(503),
        tags=["health"],
        summary="The model and the index are loaded",
    )
    async def readyz() -> dict[str, Any]:
        status = ready().status()
        keys = ("sources", "chunks", "model", "built", "corpus", "snapshot", "corpus_fingerprint")
        return {k: status[k] for k in keys} | {"status": "ready"}

    @app.get("/widget.js", include_in_schema=False)
    async def widget() -> Response:
        return Response(
            widget_js,
            media_type="application/javascript; charset=utf-8",
            headers={
                "Cache-Control": "public, max-age=300",
                "Cross-Origin-Resource-Policy": "cross-origin",
            },  # fmt: skip
        )

    @app.get("/", include_in_schema=False)
    async def demo() -> Response:
        return Response(
            demo_html,
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": DEMO_CSP, "Cache-Control": "no-cache"},
        )

    # -- /v1
    key_scheme = APIKeyHeader(
        name=API_KEY_HEADER, auto_error=False, description="Required when ASSISTANT_API_KEY is set."
    )

    async def documented_key(key: str | None = Security(key_scheme)) -> None:
        """The key is enforced by GuardMiddleware before the body is read; this documents it."""

    v1 = APIRouter(
        prefix="/v1",
        responses=_errors(*V1_ERRORS),
        dependencies=[Security(documented_key)] if settings.api_key else [],
    )

    @v1.post("/ask", response_model=AskResponse, tags=["questions"], summary="Answer a question")
    async def ask(
        body: Annotated[AskRequest, Body(openapi_examples=ASK_EXAMPLES)],
    ) -> Response:
        """The same JSON object as `assistant ask --json`: the answer with `[n]` markers (or an
        abstention), the cited passages with their sources, the query searched and timings."""
        a = ready()
        question = check_question(body.question, "question")
        if settings.log_questions:
            log.info("question: %s", question)
        answer = await run(
            a.ask,
            question,
            k=body.k,
            mode=body.mode,
            history=[t.model_dump() for t in body.history],
            filters=body.filters.to_filters() if body.filters else None,
            field="question",
        )
        return JSONResponse(answer.to_dict())

    @v1.post("/search", response_model=SearchResponse, tags=["questions"],
             summary="Retrieve passages only")  # fmt: skip
    async def search(body: SearchRequest) -> Response:
        """Ranked passages for a query, without composing an answer."""
        a = ready()
        query = check_question(body.query, "query")
        if settings.log_questions:
            log.info("search: %s", query)
        timings: dict[str, float] = {}
        passages = await run(
            a.search,
            query,
            k=body.k,
            mode=body.mode,
            filters=body.filters.to_filters() if body.filters else None,
            offset=body.offset,
            timings=timings,
            field="query",
        )
        return JSONResponse(
            {
                "query": query,
                "mode": body.mode or settings.mode,
                "offset": body.offset,
                "passages": [p.to_dict() for p in passages],
                "timings_ms": {k: round(v, 2) for k, v in timings.items()},
            }
        )

    @v1.get("/sources", response_model=SourceList, tags=["sources"], summary="List sources")
    async def sources(page: Annotated[SourcesQuery, Query()]) -> dict[str, Any]:
        """Metadata of the indexed sources, sorted by id, one page at a time."""
        offset, limit = page.offset, page.limit
        rows = ready().sources()
        items = [_public(r) for r in rows[offset : offset + limit]]
        return {"total": len(rows), "offset": offset, "limit": limit, "items": items}

    @v1.get(
        "/sources/{source_id}",
        response_model=SourceDetail,
        responses=_errors(404) | {200: {"content": CITE_CONTENT}},
        tags=["sources"],
        summary="One source with its full note, or as RIS / BibTeX",
    )
    async def source(
        source_id: str, query: Annotated[SourceQuery, Query()]
    ) -> dict[str, Any] | Response:
        """A source's metadata and the full text of its note; with `format=ris` or
        `format=bibtex`, the source as a reference-manager file. 404 for an unknown id."""
        a = ready()
        if source_id not in a.index.sources:
            raise ApiError(404, "not_found", f"unknown source id '{source_id}'", field="id",
                           hint="list the ids with GET /v1/sources")  # fmt: skip
        if query.format != "json":
            return cite_response(a.source_records([source_id]), query.format, source_id)
        try:  # the check above and this call may see different snapshots across a reload
            return _public(await in_thread(a.source, source_id))
        except InputError:
            raise ApiError(404, "not_found", f"unknown source id '{source_id}'", field="id",
                           hint="list the ids with GET /v1/sources") from None  # fmt: skip

    @v1.post(
        "/cite",
        response_class=Response,
        responses=_errors(404) | {200: {"content": CITE_CONTENT,
                                        "description": "The sources as RIS or BibTeX"}},
        tags=["sources"],
        summary="Export sources (e.g. an answer's) as RIS or BibTeX",
    )  # fmt: skip
    async def cite(body: CiteRequest) -> Response:
        """The sources named by `ids` as one RIS or BibTeX file, in the order given (each once).
        For an answer's sources send the `source.id` of its passages. 404 names an unknown id."""
        a = ready()
        for i, source_id in enumerate(body.ids):
            if source_id not in a.index.sources:
                raise ApiError(404, "not_found", f"unknown source id '{source_id}'",
                               field=f"ids.{i}", hint="list the ids with GET /v1/sources")  # fmt: skip
        return cite_response(a.source_records(body.ids), body.format, "sources")

    @v1.post(
        "/reload",
        response_model=Reloaded,
        responses=_errors(403),
        tags=["index"],
        summary="Switch to the index saved since the server started",
    )
    async def reload(request: Request) -> dict[str, Any]:
        """Make the index now saved in the index folder live without dropping requests: each
        request is answered wholly from the old or wholly from the new snapshot. Nothing is
        rebuilt (run `assistant index` first). Needs the API key; without one configured, only
        direct requests from this machine are accepted."""
        ready()
        if not settings.api_key:
            peer = str((request.scope.get("client") or ("",))[0])
            relayed = bool(forwarded_hops(request.scope)) or "forwarded" in request.headers
            if not _is_loopback(peer) or relayed:
                raise ApiError(403, "forbidden", "without an API key the index can be reloaded "
                               "only by a direct request from the server's machine",
                               hint="set ASSISTANT_API_KEY and send it in X-API-Key, or send "
                               "SIGHUP to the server process")  # fmt: skip
        try:
            result = await in_thread(reload_index, "POST /v1/reload")
        except AssistantError as exc:
            log.error("reload refused; the live snapshot stays: %s", exc)
            raise ApiError(503, "unavailable", "the saved index cannot be loaded; the live "
                           f"snapshot stays: {scrub(exc.message)}",
                           hint=scrub(exc.hint or "") or None) from None  # fmt: skip
        return result

    app.include_router(v1)

    # Outermost last: CORS answers preflights and decorates every response, errors included.
    app.add_middleware(GuardMiddleware, settings=settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", API_KEY_HEADER],
            max_age=600,
        )
    if not _is_loopback(settings.host) and not settings.api_key:
        log.warning("serving on %s without an API key (set ASSISTANT_API_KEY)", settings.host)
    return app
