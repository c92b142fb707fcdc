"""Test helpers shared by several test modules (import them from here, never from a test module).

A deterministic fake embedder, the fixture corpus paths, a TestClient factory, a real uvicorn
server in a thread, and a byte snapshot of a folder.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.embed import EmbedderBase
from assistant.lexical import tokenize

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from assistant import Assistant

DATA = Path(__file__).parent / "data"
FIXTURE_CORPUS = DATA / "corpus"


class FakeEmbedder(EmbedderBase):
    """Hashed bag of stemmed words: texts sharing words get similar vectors. Deterministic."""

    def __init__(self, dimension: int = 64, name: str = "fake-embedder") -> None:
        self.name = name
        self.dimension = dimension
        self.fingerprint = hashlib.sha256(f"{name}:{dimension}".encode()).hexdigest()[:16]
        self.calls = 0
        self.embedded = 0

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dimension, dtype=np.float32)
        for token in tokenize(text):
            digest = hashlib.md5(token.encode()).digest()
            vec[int.from_bytes(digest[:4], "little") % self.dimension] += 1.0
            vec[int.from_bytes(digest[4:8], "little") % self.dimension] += 0.5
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm else vec

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        self.calls += 1
        self.embedded += len(texts)
        out = np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension))
        if progress:
            progress(len(texts), len(texts))
        return out.astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)


def client_for(assistant: Assistant, **overrides: object) -> TestClient:
    """A TestClient on an app over `assistant`, with some settings changed."""
    from fastapi.testclient import TestClient

    from assistant.server import create_app

    for key, value in overrides.items():
        setattr(assistant.settings, key, value)
    return TestClient(create_app(assistant), raise_server_exceptions=False)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Run `app` under a real uvicorn server on 127.0.0.1 in a thread; yield its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes), to show that nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
