"""What the routes share: the Assistant, its loading and reloading, and the worker threads.

Routes get the Assistant and the Runtime through the FastAPI dependencies `get_assistant` and
`get_runtime`, so a test can swap either with `app.dependency_overrides`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request

from ..assistant import Assistant
from ..errors import AssistantError, InputError
from ..settings import Settings
from .errors import ApiError, input_error

log = logging.getLogger("assistant.server")
T = TypeVar("T")


class Runtime:
    """The state of one app: its Assistant, the background load, the worker-thread limiter."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.settings: Settings = assistant.settings
        self.loader: threading.Thread | None = None
        self.load_error: str | None = None
        self.limiter = anyio.CapacityLimiter(self.settings.api_workers)

    # -- loading, watching, reloading (start-up and SIGHUP)
    def start_loading(self) -> None:
        """Load the Assistant in a background thread unless it is loaded or loading."""
        if not self.assistant.is_loaded and self.loader is None:
            self.loader = threading.Thread(target=self._load, name="assistant-load", daemon=True)
            self.loader.start()

    def _load(self) -> None:
        try:
            self.assistant.load()
            for warning in self.assistant.warnings:
                log.warning("%s", warning)
            log.info("assistant ready: %s", self.assistant.status()["sources"])
        except Exception as exc:  # noqa: BLE001 - reported by /readyz
            self.load_error = str(exc)
            log.error("cannot load the assistant: %s", exc)

    def reload_index(self, origin: str) -> dict[str, Any]:
        """Make the index saved in the index folder live if it is new (see Assistant.reload)."""
        result = self.assistant.reload()
        if result["reloaded"]:
            log.info("index reloaded (%s): snapshot %s built %s", origin, result["snapshot"],
                     result["created_at"])  # fmt: skip
        return result

    def watch(self, stop: threading.Event) -> None:
        """Poll the index folder; switch to a newly saved index between requests."""
        reported = None
        while not stop.wait(self.settings.index_watch_seconds):
            if not self.assistant.is_loaded:
                continue
            try:
                self.reload_index("new index saved")
                reported = None
            except Exception as exc:  # noqa: BLE001 - keep serving the live snapshot
                if str(exc) != reported:
                    reported = str(exc)
                    log.error("cannot switch to the new index; the live one stays: %s", exc)

    # -- what routes call
    def ready(self, assistant: Assistant) -> Assistant:
        """`assistant` when loaded; else a 503 saying whether it is loading or failed."""
        if not assistant.is_loaded:
            if self.load_error:
                raise ApiError(503, "not_ready", f"the assistant failed to load: "
                               f"{self.scrub(self.load_error)}", hint="see the server log")  # fmt: skip
            raise ApiError(503, "not_ready", "the model and index are still loading",
                           hint="retry in a few seconds", headers={"Retry-After": "5"})  # fmt: skip
        return assistant

    async def in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking work (encoding, search) in a worker thread, never on the event loop."""
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs), limiter=self.limiter)

    def check_question(self, assistant: Assistant, text: str, field: str) -> str:
        """The question as the Assistant accepts it, or a 422 naming `field`."""
        try:
            return assistant.validate_question(text)
        except InputError as exc:
            raise input_error(exc, field) from None

    async def run(self, fn: Callable[..., T], *args: Any, field: str, **kwargs: Any) -> T:
        """`in_thread`, with input errors as 422 on `field` and other failures as 503."""
        try:
            return await self.in_thread(fn, *args, **kwargs)
        except InputError as exc:
            raise input_error(exc, field) from None
        except AssistantError as exc:
            log.error("assistant error: %s", exc)
            raise ApiError(503, "unavailable", self.scrub(exc.message),
                           hint=self.scrub(exc.hint or "") or None) from None  # fmt: skip

    def scrub(self, text: str) -> str:
        """A message without server paths: the corpus and index folders by their role."""
        settings = self.settings
        for folder, name in ((settings.index_dir, "<index>"), (settings.corpus_dir, "<corpus>")):
            for form in sorted({str(folder.resolve()), str(folder.absolute()), str(folder)},
                               key=len, reverse=True):  # fmt: skip
                text = text.replace(form, name)
        return text


def get_runtime(request: Request) -> Runtime:
    """The app's Runtime (a FastAPI dependency)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_assistant(request: Request) -> Assistant:
    """The app's Assistant, loaded or not (a FastAPI dependency; routes check readiness after
    validating their input, so a bad request is a 422 even while the index loads)."""
    assistant: Assistant = request.app.state.assistant
    return assistant


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
AssistantDep = Annotated[Assistant, Depends(get_assistant)]
