"""The Milvus store on Milvus Lite: incremental builds, the alias switch, an interrupted update,
server-side hybrid ranking and the errors for bad configuration."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import FakeEmbedder

from assistant import Assistant, Settings
from assistant.errors import AssistantError, IndexStateError
from assistant.stores.milvus import MilvusStore, filter_expression
from assistant.types import Filters

pytestmark = pytest.mark.slow  # each test starts Milvus Lite (about a second)


@pytest.fixture
def milvus_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"store": "milvus"})


@pytest.fixture
def milvus_assistant(milvus_settings: Settings) -> Iterator[Assistant]:
    assistant = Assistant(milvus_settings, embedder=FakeEmbedder())
    assistant.load()
    yield assistant
    assistant.store.close()  # stops this test's in-process Milvus Lite server


def _store(assistant: Assistant) -> MilvusStore:
    store = assistant.store
    assert isinstance(store, MilvusStore)
    return store


def _answers(assistant: Assistant) -> list[list[str]]:
    return [[p.chunk.id for p in assistant.search(q, k=5)]
            for q in ("octreotide survival", "embolization complications", "kidney toxicity")]  # fmt: skip


def test_filter_expressions() -> None:
    assert filter_expression(None) == ""
    assert filter_expression(Filters(year_min=2010)) == "year >= 2010"
    assert filter_expression(Filters(year_max=2012)) == "year >= 0 and year <= 2012"
    assert filter_expression(Filters(source_types=("rct", 'o"dd'))) == (
        'source_type in ["rct", "o\\"dd"]'
    )


def test_update_copies_unchanged_sources_and_switches_the_alias(
    milvus_assistant: Assistant,
) -> None:
    store = _store(milvus_assistant)
    first = store.collection_of(milvus_assistant.index)
    assert store.live_collection() == first and store.collections() == [first]
    corpus = milvus_assistant.settings.corpus_dir
    note = corpus / "prrt-study.md"
    note.write_text(note.read_text(encoding="utf-8") + "\nA quokka note was added.\n")
    (corpus / "embolization-review.md").unlink()
    report = milvus_assistant.build()
    assert report.changed == ["prrt-study"] and report.removed == ["embolization-review"]
    index = milvus_assistant.index
    prrt = sum(1 for c in index.chunks if c.doc_id == "prrt-study")
    assert store.last_publish["inserted_rows"] == prrt  # only the changed source is written
    assert store.last_publish["copied_rows"] == len(index.chunks) - prrt
    second = store.collection_of(index)
    assert second != first
    # the replaced collection stays for readers still on the previous snapshot, one build long
    assert store.live_collection() == second and store.collections() == [first, second]
    rows = sorted((e["row"], e["chunk_id"]) for e in store.rows(index))
    assert rows == [(i, c.id) for i, c in enumerate(index.chunks)]
    hits = store.lexical_search(index, ["quokka"], 3, None)
    assert hits and index.doc_of_row(hits[0][0]) == "prrt-study"
    note.write_text(note.read_text(encoding="utf-8") + "\nA wombat note too.\n")
    milvus_assistant.build()
    third = store.collection_of(milvus_assistant.index)
    assert store.collections() == [second, third]  # the first is dropped now


def test_interrupted_update_leaves_queries_on_the_old_data(
    milvus_assistant: Assistant, milvus_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _answers(milvus_assistant)
    store = _store(milvus_assistant)
    live = store.live_collection()
    corpus = milvus_settings.corpus_dir
    (corpus / "octreotide-trial.md").unlink()
    note = corpus / "prrt-study.md"
    note.write_text(note.read_text(encoding="utf-8") + "\nA quokka note was added.\n")
    calls = []

    def failing_insert(self: MilvusStore, name: str, entities: list) -> None:
        calls.append(len(entities))
        if len(calls) > 1:
            raise RuntimeError("killed half-way")
        self.client.insert(name, entities)

    monkeypatch.setattr(MilvusStore, "_insert", failing_insert)
    with pytest.raises(AssistantError, match="killed half-way"):
        milvus_assistant.build()
    assert len(calls) == 2  # the unchanged rows were copied into the new collection
    monkeypatch.undo()
    assert store.live_collection() == live
    orphans = [c for c in store.collections() if c != live]
    assert len(orphans) == 1  # the half-written collection is left, unused
    fresh = Assistant(milvus_settings.model_copy(update={"auto_rebuild": False}),
                      embedder=FakeEmbedder())  # fmt: skip
    fresh.load(rebuild=False)
    assert _answers(fresh) == before  # the old collection, the old snapshot
    assert "octreotide-trial" in {c.doc_id for c in fresh.index.chunks}
    milvus_assistant.build()  # the next build drops the orphan
    assert orphans[0] not in store.collections()
    assert store.collections() == [live, store.live_collection()]
    assert "octreotide-trial" not in {c.doc_id for c in milvus_assistant.index.chunks}


def test_local_index_is_published_without_embedding_again(settings: Settings) -> None:
    embedder = FakeEmbedder()
    Assistant(settings, embedder=embedder).load()
    embedded = embedder.embedded
    milvus = Assistant(settings.model_copy(update={"store": "milvus"}), embedder=embedder)
    milvus.load()
    assert embedder.embedded == embedded
    assert milvus.index.manifest["store"]["kind"] == "milvus"
    assert _store(milvus).last_publish["inserted_rows"] == len(milvus.index.chunks)


def test_server_side_hybrid_ranks_the_same_candidates(milvus_settings: Settings) -> None:
    client = Assistant(milvus_settings, embedder=FakeEmbedder())
    server = Assistant(milvus_settings.model_copy(update={"milvus_hybrid": "server"}),
                       embedder=FakeEmbedder())  # fmt: skip
    client.load()
    server.load()
    for q in ("octreotide survival", "liver transplant outcomes"):
        a = [p.chunk.id for p in client.search(q, k=3, mode="hybrid")]
        b = [p.chunk.id for p in server.search(q, k=3, mode="hybrid")]
        assert a[0] == b[0]  # the clear winner; lower ranks may differ (arctan vs min-max)
    filtered = server.search("liver", k=10, filters=Filters(year_min=2015))
    assert filtered and all(p.source["year"] >= 2015 for p in filtered)


def test_collection_built_with_another_model_is_refused(
    milvus_assistant: Assistant, milvus_settings: Settings
) -> None:
    store = _store(milvus_assistant)
    name = store.collection_of(milvus_assistant.index)
    store.client.alter_collection_properties(
        name, properties={"assistant.identity": '{"model": "other", "fingerprint": "abc"}'}
    )
    fresh = Assistant(milvus_settings, embedder=FakeEmbedder())
    with pytest.raises(IndexStateError) as info:
        fresh.load()
    assert "built with embedding model 'other'" in info.value.message
    assert "assistant index --force" in str(info.value.hint)


def test_missing_collection_names_the_fix(milvus_assistant: Assistant,
                                          milvus_settings: Settings) -> None:  # fmt: skip
    store = _store(milvus_assistant)
    store.client.drop_collection(store.collection_of(milvus_assistant.index))
    with pytest.raises(IndexStateError, match="has no collection") as info:
        Assistant(milvus_settings, embedder=FakeEmbedder()).load()
    assert "ASSISTANT_MILVUS_URI" in str(info.value.hint)


def test_unreachable_milvus_names_the_setting(tmp_path: Path) -> None:
    for uri in ("http://127.0.0.1:9", str(tmp_path / "missing" / "m.db")):
        s = Settings(index_dir=tmp_path, store="milvus", milvus_uri=uri, milvus_timeout=2)
        with pytest.raises(AssistantError) as info:
            MilvusStore(s).open()
        assert "cannot reach Milvus" in info.value.message
        assert "ASSISTANT_MILVUS_URI" in str(info.value.hint)


def test_refused_credentials_name_the_token_setting(tmp_path: Path) -> None:
    """Milvus Lite has no users, so the server's refusal is built here and translated."""
    from pymilvus.exceptions import MilvusException

    store = MilvusStore(Settings(index_dir=tmp_path, store="milvus", milvus_uri="http://h:19530"))
    error = store.config_error(
        MilvusException(code=1800, message="auth check failure, please check username")
    )
    assert "refused the credentials" in error.message and "ASSISTANT_MILVUS_TOKEN" in str(
        error.hint
    )
    tls = store.config_error(MilvusException(code=2, message="SSL handshake failed"))
    assert "ASSISTANT_MILVUS_TLS_CA" in str(tls.hint)


def test_cli_reports_bad_uri_in_one_line(tmp_path: Path, corpus_dir: Path) -> None:
    env = {"ASSISTANT_STORE": "milvus", "ASSISTANT_MILVUS_URI": "http://127.0.0.1:9",
           "ASSISTANT_MILVUS_TIMEOUT": "2", "PATH": "/usr/bin:/bin"}  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", "octreotide?", "--corpus", str(corpus_dir),
         "--index", str(tmp_path / "index")],
        capture_output=True, text=True, env=env | {"PYTHONPATH": str(root)}, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: cannot reach Milvus") and "ASSISTANT_MILVUS_URI" in lines[0]
