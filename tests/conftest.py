"""Shared fixtures: a deterministic fake embedder, a tiny corpus, and assistants built on them."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant, Settings
from assistant.lexical import tokenize

DATA = Path(__file__).parent / "data"
FIXTURE_CORPUS = DATA / "corpus"


class FakeEmbedder:
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


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A writable copy of the fixture corpus."""
    dest = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, dest)
    return dest


@pytest.fixture
def settings(corpus_dir: Path, tmp_path: Path) -> Settings:
    return Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", abstain_threshold=0.2)


@pytest.fixture
def fake_assistant(settings: Settings, fake_embedder: FakeEmbedder) -> Assistant:
    """An Assistant over the fixture corpus with the fake embedder, index built."""
    assistant = Assistant(settings, embedder=fake_embedder)
    assistant.load()
    return assistant


@pytest.fixture(scope="session")
def real_embedder():
    """The offline MiniLM model, loaded once per test session."""
    from assistant.embed import load_embedder

    return load_embedder("sentence-transformers/all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def real_assistant(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> Assistant:
    """An Assistant over the fixture corpus with the real offline model (index built once)."""
    base = tmp_path_factory.mktemp("real")
    shutil.copytree(FIXTURE_CORPUS, base / "corpus")
    s = Settings(corpus_dir=base / "corpus", index_dir=base / "index")
    assistant = Assistant(s, embedder=real_embedder)
    assistant.load()
    return assistant
