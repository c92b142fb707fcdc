"""Shared fixtures: a deterministic fake embedder, a tiny corpus, and assistants built on them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import DATA, FIXTURE_CORPUS, FakeEmbedder

from assistant import Assistant, Settings

__all__ = ["DATA", "FIXTURE_CORPUS", "FakeEmbedder"]  # older tests import these from conftest


@pytest.fixture(autouse=True, scope="session")
def _no_caller_settings() -> Iterator[None]:
    """The suite does not depend on the caller's environment: no ASSISTANT_* variables."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("ASSISTANT_"):
                mp.delenv(name)
        yield


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
