"""The routes: health and the web widget open, `/v1` behind the guard middleware.

Each route translates HTTP into one Assistant call (run in a worker thread) and returns its
response model; errors are raised as ApiError.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Query, Request, Security
from fastapi.responses import HTMLResponse, Response
from fastapi.security import APIKeyHeader

from .. import __version__
from ..citation_export import FORMATS, MEDIA_TYPES, SUFFIXES, export
from ..errors import AssistantError, InputError
from .errors import ApiError
from .middleware import forwarded_hops
from .models import (
    API_KEY_HEADER,
    ASK_EXAMPLES,
    HIDDEN_SOURCE_FIELDS,
    AskRequest,
    AskResponse,
    CiteRequest,
    Health,
    Ready,
    Reloaded,
    SearchRequest,
    SearchResponse,
    SourceDetail,
    SourceList,
    SourceMeta,
    SourceQuery,
    SourcesQuery,
    error_responses,
)
from .runtime import AssistantDep, RuntimeDep

log = logging.getLogger("assistant.server")

DEMO_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
CITE_CONTENT: dict[str, Any] = {MEDIA_TYPES[f]: {"schema": {"type": "string"}} for f in FORMATS}


@cache
def web_file(name: str) -> bytes:
    """A file of the web widget shipped in the package (assistant/web)."""
    return resources.files("assistant").joinpath("web", name).read_bytes()


def public(meta: dict[str, Any]) -> dict[str, Any]:
    """Source metadata without the server-side fields (paths, fingerprints)."""
    return {k: v for k, v in meta.items() if k not in HIDDEN_SOURCE_FIELDS}


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine (an address or 'localhost')."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def cite_response(records: list[dict[str, Any]], fmt: str, name: str) -> Response:
    """Sources as a RIS or BibTeX download (`name` + .ris/.bib as the file name)."""
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80] or "sources"
    return Response(
        export(records, fmt),
        media_type=f"{MEDIA_TYPES[fmt]}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}{SUFFIXES[fmt]}"'},
    )


def not_found(source_id: str, field: str = "id") -> ApiError:
    """The 404 for a source id the index does not hold."""
    return ApiError(404, "not_found", f"unknown source id '{source_id}'", field=field,
                    hint="list the ids with GET /v1/sources")  # fmt: skip


# ---------------------------------------------------------------------------- offline /docs
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


def add_offline_docs(app: FastAPI) -> None:
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


# ---------------------------------------------------------------------------- open routes
open_routes = APIRouter()


@open_routes.get("/healthz", tags=["health"], summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok", version=__version__)


@open_routes.get(
    "/readyz",
    responses=error_responses(503),
    tags=["health"],
    summary="The model and the index are loaded",
)
async def readyz(assistant: AssistantDep, rt: RuntimeDep) -> Ready:
    status = rt.ready(assistant).status()
    keys = ("sources", "chunks", "model", "built", "corpus", "snapshot", "corpus_fingerprint")
    return Ready.model_validate({k: status[k] for k in keys} | {"status": "ready"})


@open_routes.get("/widget.js", include_in_schema=False)
async def widget() -> Response:
    return Response(
        web_file("widget.js"),
        media_type="application/javascript; charset=utf-8",
        headers={
            "Cache-Control": "public, max-age=300",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },  # fmt: skip
    )


@open_routes.get("/", include_in_schema=False)
async def demo() -> Response:
    return Response(
        web_file("demo.html"),
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": DEMO_CSP, "Cache-Control": "no-cache"},
    )


# ---------------------------------------------------------------------------- /v1
v1 = APIRouter()
key_scheme = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="Required when ASSISTANT_API_KEY is set."
)


async def documented_key(key: str | None = Security(key_scheme)) -> None:
    """The key is enforced by GuardMiddleware before the body is read; this documents it."""


@v1.post(
    "/ask",
    response_model_exclude_unset=True,  # `page` only for PDF passages, as in `ask --json`
    tags=["questions"],
    summary="Answer a question",
)
async def ask(
    body: Annotated[AskRequest, Body(openapi_examples=ASK_EXAMPLES)],
    assistant: AssistantDep,
    rt: RuntimeDep,
) -> AskResponse:
    """The same JSON object as `assistant ask --json`: the answer with `[n]` markers (or an
    abstention), the cited passages with their sources, the query searched and timings."""
    a = rt.ready(assistant)
    question = rt.check_question(a, body.question, "question")
    if rt.settings.log_questions:
        log.info("question: %s", question)
    answer = await rt.run(
        a.ask,
        question,
        k=body.k,
        mode=body.mode,
        history=[t.model_dump() for t in body.history],
        filters=body.filters.to_filters() if body.filters else None,
        field="question",
    )
    return AskResponse.model_validate(answer.to_dict())


@v1.post(
    "/search",
    response_model_exclude_unset=True,  # `page` only for PDF passages
    tags=["questions"],
    summary="Retrieve passages only",
)
async def search(body: SearchRequest, assistant: AssistantDep, rt: RuntimeDep) -> SearchResponse:
    """Ranked passages for a query, without composing an answer."""
    a = rt.ready(assistant)
    query = rt.check_question(a, body.query, "query")
    if rt.settings.log_questions:
        log.info("search: %s", query)
    timings: dict[str, float] = {}
    passages = await rt.run(
        a.search,
        query,
        k=body.k,
        mode=body.mode,
        filters=body.filters.to_filters() if body.filters else None,
        offset=body.offset,
        timings=timings,
        field="query",
    )
    return SearchResponse.model_validate(
        {
            "query": query,
            "mode": body.mode or rt.settings.mode,
            "offset": body.offset,
            "passages": [p.to_dict() for p in passages],
            "timings_ms": {k: round(v, 2) for k, v in timings.items()},
        }
    )


@v1.get("/sources", tags=["sources"], summary="List sources")
async def sources(
    page: Annotated[SourcesQuery, Query()], assistant: AssistantDep, rt: RuntimeDep
) -> SourceList:
    """Metadata of the indexed sources, sorted by id, one page at a time."""
    offset, limit = page.offset, page.limit
    rows = rt.ready(assistant).sources()
    items = [SourceMeta.model_validate(public(r)) for r in rows[offset : offset + limit]]
    return SourceList(total=len(rows), offset=offset, limit=limit, items=items)


@v1.get(
    "/sources/{source_id}",
    response_model=SourceDetail,
    responses=error_responses(404) | {200: {"content": CITE_CONTENT}},
    tags=["sources"],
    summary="One source with its full note, or as RIS / BibTeX",
)
async def source(
    source_id: str, query: Annotated[SourceQuery, Query()], assistant: AssistantDep,
    rt: RuntimeDep,
) -> SourceDetail | Response:  # fmt: skip
    """A source's metadata and the full text of its note; with `format=ris` or
    `format=bibtex`, the source as a reference-manager file. 404 for an unknown id."""
    a = rt.ready(assistant)
    if source_id not in a.index.sources:
        raise not_found(source_id)
    if query.format != "json":
        return cite_response(a.source_records([source_id]), query.format, source_id)
    try:  # the check above and this call may see different snapshots across a reload
        return SourceDetail.model_validate(public(await rt.in_thread(a.source, source_id)))
    except InputError:
        raise not_found(source_id) from None


@v1.post(
    "/cite",
    response_class=Response,
    responses=error_responses(404) | {200: {"content": CITE_CONTENT,
                                            "description": "The sources as RIS or BibTeX"}},
    tags=["sources"],
    summary="Export sources (e.g. an answer's) as RIS or BibTeX",
)  # fmt: skip
async def cite(body: CiteRequest, assistant: AssistantDep, rt: RuntimeDep) -> Response:
    """The sources named by `ids` as one RIS or BibTeX file, in the order given (each once).
    For an answer's sources send the `source.id` of its passages. 404 names an unknown id."""
    a = rt.ready(assistant)
    for i, source_id in enumerate(body.ids):
        if source_id not in a.index.sources:
            raise not_found(source_id, field=f"ids.{i}")
    return cite_response(a.source_records(body.ids), body.format, "sources")


@v1.post(
    "/reload",
    responses=error_responses(403),
    tags=["index"],
    summary="Switch to the index saved since the server started",
)
async def reload(request: Request, assistant: AssistantDep, rt: RuntimeDep) -> Reloaded:
    """Make the index now saved in the index folder live without dropping requests: each
    request is answered wholly from the old or wholly from the new snapshot. Nothing is
    rebuilt (run `assistant index` first). Needs the API key; without one configured, only
    direct requests from this machine are accepted."""
    rt.ready(assistant)
    if not rt.settings.api_key:
        peer = str((request.scope.get("client") or ("",))[0])
        relayed = bool(forwarded_hops(request.scope)) or "forwarded" in request.headers
        if not is_loopback(peer) or relayed:
            raise ApiError(403, "forbidden", "without an API key the index can be reloaded "
                           "only by a direct request from the server's machine",
                           hint="set ASSISTANT_API_KEY and send it in X-API-Key, or send "
                           "SIGHUP to the server process")  # fmt: skip
    try:
        result = await rt.in_thread(rt.reload_index, "POST /v1/reload")
    except AssistantError as exc:
        log.error("reload refused; the live snapshot stays: %s", exc)
        raise ApiError(503, "unavailable", "the saved index cannot be loaded; the live "
                       f"snapshot stays: {rt.scrub(exc.message)}",
                       hint=rt.scrub(exc.hint or "") or None) from None  # fmt: skip
    return Reloaded.model_validate(result)
