"""`assistant serve`: the HTTP API and the web widget, served by uvicorn."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Annotated, Any

from ..errors import AssistantError
from ..settings import Settings
from .app import app
from .common import NoRebuildOpt, open_assistant, setting_option, with_settings


def uvicorn_options(settings: Settings, debug: bool = False) -> dict[str, Any]:
    """How `assistant serve` runs uvicorn. uvicorn's own X-Forwarded-For handling is off (it
    believes 127.0.0.1 by default): the app reads the header only from ASSISTANT_TRUSTED_PROXIES."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": "debug" if debug else "info",
        "server_header": False,
        "proxy_headers": False,
        "forwarded_allow_ips": "",
    }


def reload_on_sighup(reload: Callable[[str], Any]) -> None:
    """`kill -HUP <pid>` switches the server to the index saved since it started."""
    if not hasattr(signal, "SIGHUP"):
        return

    def run() -> None:
        try:
            reload("SIGHUP")
        except Exception as exc:  # noqa: BLE001 - the live snapshot stays
            print(f"error: cannot switch to the new index; the live one stays: {exc}",
                  file=sys.stderr)  # fmt: skip

    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=run, daemon=True).start())


@app.command("serve")
@with_settings(overrides=lambda o: {k: o[k] for k in ("host", "port", "processes")})
def serve_cmd(
    settings: Settings,
    host: Annotated[
        str | None,
        setting_option("--host", help="Address to bind [env ASSISTANT_HOST; default 127.0.0.1]."),
    ] = None,
    port: Annotated[
        int | None,
        setting_option("--port", min=1, max=65535, help="Port [env ASSISTANT_PORT; default 8000]."),
    ] = None,
    processes: Annotated[
        int | None,
        setting_option(
            "--processes",
            min=1,
            max=64,
            help="Server processes [env ASSISTANT_PROCESSES; default 1].",
        ),
    ] = None,  # fmt: skip
    no_rebuild: NoRebuildOpt = False,
) -> None:
    """Serve the HTTP API (/v1, docs at /docs) and the web widget (demo page at /)."""
    import uvicorn

    from ..server import create_app
    from ..server.app import WORKER_SETTINGS_ENV

    if (
        settings.processes > 1
        and settings.store == "milvus"
        and "://" not in (settings.milvus_uri or "")
    ):
        raise AssistantError(
            f"--processes {settings.processes} with a Milvus Lite file: one process holds the file",
            "serve with --processes 1, or point ASSISTANT_MILVUS_URI at a Milvus server "
            "(http://host:19530)",
        )

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
    if settings.processes > 1:
        # each worker loads the index checked above; SIGHUP makes uvicorn restart them all, and
        # a restarted worker loads the newest saved index
        print(f"{settings.processes} server processes; kill -HUP {os.getpid()} restarts them on "
              "the newest index.", file=sys.stderr)  # fmt: skip
        os.environ[WORKER_SETTINGS_ENV] = settings.model_dump_json()
        del assistant  # the workers load their own; the supervisor needs none
        uvicorn.run("assistant.server.app:worker_app", factory=True, workers=settings.processes,
                    **uvicorn_options(settings, settings.debug))  # fmt: skip
        return
    api = create_app(assistant)
    reload_on_sighup(api.state.reload)
    uvicorn.run(api, **uvicorn_options(settings, settings.debug))
