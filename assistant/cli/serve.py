"""`assistant serve`: the HTTP API and the web widget, served by uvicorn."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .app import app
from .common import (
    CorpusOpt,
    DebugOpt,
    IndexOpt,
    NoRebuildOpt,
    guarded,
    open_assistant,
    settings_from,
)


@app.command("serve")
def serve_cmd(
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            help="Address to bind [env ASSISTANT_HOST; default 127.0.0.1].",
            show_default=False,
        ),  # fmt: skip
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=1,
            max=65535,
            help="Port [env ASSISTANT_PORT; default 8000].",
            show_default=False,
        ),  # fmt: skip
    ] = None,
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
    no_rebuild: NoRebuildOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Serve the HTTP API (/v1, docs at /docs) and the web widget (demo page at /)."""

    def run() -> None:
        import uvicorn

        from ..server import create_app

        settings = settings_from(corpus, index, debug=debug, host=host, port=port)
        # Load before binding so a missing index or a bad corpus is one clear line, exit 1.
        assistant = open_assistant(settings, no_rebuild)
        if not settings.api_key and settings.host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"warning: listening on {settings.host} without an API key; "
                "set ASSISTANT_API_KEY to require one",
                file=sys.stderr,
            )
        status = assistant.status()
        url = f"http://{settings.host}:{settings.port}"
        print(
            f"Serving {status['sources']} sources ({status['chunks']} passages) on {url} — "
            f"widget demo {url}/, API docs {url}/docs. Ctrl+C stops.",
            file=sys.stderr,
        )
        uvicorn.run(
            create_app(assistant),
            host=settings.host,
            port=settings.port,
            log_level="debug" if debug else "info",
            server_header=False,
        )

    guarded(debug, run)
