"""`assistant serve`: the HTTP API and the web widget, served by uvicorn."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import Annotated, Any

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
@with_settings(overrides=lambda options: {"host": options["host"], "port": options["port"]})
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
    no_rebuild: NoRebuildOpt = False,
) -> None:
    """Serve the HTTP API (/v1, docs at /docs) and the web widget (demo page at /)."""
    import uvicorn

    from ..server import create_app

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
    api = create_app(assistant)
    reload_on_sighup(api.state.reload)
    uvicorn.run(api, **uvicorn_options(settings, settings.debug))
