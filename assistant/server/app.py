"""The app factory: one Runtime over one Assistant, the routes, the error handlers, the guard."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Security
from starlette.middleware.cors import CORSMiddleware

from .. import __version__
from ..assistant import Assistant
from ..settings import Settings
from .errors import install_error_handlers
from .middleware import GuardMiddleware
from .models import API_KEY_HEADER, V1_ERRORS, error_responses
from .routes import add_offline_docs, documented_key, is_loopback, open_routes, v1
from .runtime import Runtime

log = logging.getLogger("assistant.server")
WORKER_SETTINGS_ENV = "_ASSISTANT_SERVE_SETTINGS"  # the parent's settings, as JSON, for workers


def worker_app() -> FastAPI:
    """The app of one `assistant serve --processes N` process (a uvicorn factory).

    It serves the settings the parent resolved (flags, environment, defaults), passed as JSON in
    `_ASSISTANT_SERVE_SETTINGS`, and loads the index the parent checked or built: a worker never
    rebuilds (N processes would race), it uses a stale index as it is, with a warning.
    """
    raw = os.environ.get(WORKER_SETTINGS_ENV)
    if raw is None:
        raise RuntimeError(
            f"{WORKER_SETTINGS_ENV} is not set: start workers with `assistant serve`"
        )
    settings = Settings.model_validate_json(raw).model_copy(update={"auto_rebuild": False})
    return create_app(settings)


def create_app(assistant_or_settings: Assistant | Settings | None = None) -> FastAPI:
    """The FastAPI app over one Assistant (built here from Settings when given those).

    An Assistant that is not loaded yet is loaded in a background thread at start-up: `/healthz`
    answers at once, `/readyz` and `/v1` answer 503 until the model and index are in memory.
    """
    if isinstance(assistant_or_settings, Assistant):
        assistant = assistant_or_settings
    else:
        assistant = Assistant(assistant_or_settings or Settings())
    rt = Runtime(assistant)
    settings = rt.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt.start_loading()
        app.state.loader = rt.loader
        stop = threading.Event()
        if settings.index_watch_seconds > 0:
            threading.Thread(target=rt.watch, args=(stop,), name="index-watch", daemon=True).start()
        yield
        stop.set()

    app = FastAPI(
        title="GEP-NET liver metastases literature assistant",
        version=__version__,
        description=(
            "Retrieves and cites passages from the indexed literature on liver metastases of "
            "gastro-entero-pancreatic neuroendocrine tumours. It does not replace clinical "
            "judgement. Errors are JSON objects naming the field at fault."
        ),
        lifespan=lifespan,
        docs_url=None,  # served by add_offline_docs from the swagger-ui-bundle package: no CDN
    )
    add_offline_docs(app)
    app.state.runtime = rt
    app.state.assistant = assistant
    app.state.loader = None
    app.state.reload = rt.reload_index  # `assistant serve` calls it on SIGHUP
    install_error_handlers(app, settings)
    app.include_router(open_routes)
    app.include_router(
        v1,
        prefix="/v1",
        responses=error_responses(*V1_ERRORS),
        dependencies=[Security(documented_key)] if settings.api_key else [],
    )
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
    if not is_loopback(settings.host) and not settings.api_key:
        log.warning("serving on %s without an API key (set ASSISTANT_API_KEY)", settings.host)
    return app
