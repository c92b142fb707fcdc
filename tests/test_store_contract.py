"""The store contract: the same tests against the local store and the Milvus store (Milvus Lite
in a temporary folder; `pymilvus` and `milvus-lite` come with the `scale` extra)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import FakeEmbedder

from assistant import Assistant, Settings
from assistant.stores import LocalStore, Store, open_store
from assistant.types import Filters

STORES = ["local", pytest.param("milvus", marks=pytest.mark.slow)]  # Milvus Lite: ~1 s each
ZEBRA = """---
id: zebra-study
title: "A fixture zebrafish xenograft study"
year: 2019
source_type: cohort
authors: [Zed Z]
journal: Fixture Med
---

# Zebrafish fixture

## Key findings
Zebrafish xenograft quokka model of hepatic tumour spread.
"""


@pytest.fixture(params=STORES)
def store_assistant(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Assistant]:
    """An Assistant over the fixture corpus, index built into the store under test."""
    s = settings.model_copy(update={"store": request.param})
    assistant = Assistant(s, embedder=FakeEmbedder())
    assistant.load()
    yield assistant
    assistant.store.close()  # for Milvus Lite: stops this test's in-process server


def _rows(assistant: Assistant) -> list[int]:
    return list(range(len(assistant.index.chunks)))


def test_store_is_the_one_selected(store_assistant: Assistant) -> None:
    store = store_assistant.store
    assert isinstance(store, Store)
    assert store.kind == store_assistant.settings.store
    assert store_assistant.index.manifest["store"]["kind"] == store.kind
    store.check(store_assistant.index)  # the store holds this snapshot


def test_dense_search_ranks_by_inner_product(store_assistant: Assistant) -> None:
    index, store = store_assistant.index, store_assistant.store
    query = store_assistant.embedder.embed_query("octreotide survival")
    got = store.dense_search(index, query, 5, None)
    expected = np.argsort(-(index.vectors @ query), kind="stable")[:5]
    assert [r for r, _ in got] == [int(r) for r in expected]
    assert [s for _, s in got] == pytest.approx([float(index.vectors[r] @ query) for r in expected],
                                                abs=1e-5)  # fmt: skip


def test_lexical_search_matches_bm25s(store_assistant: Assistant) -> None:
    """BM25 rows and scores are the local store's (bm25s, Lucene variant) for every store."""
    from assistant.lexical import tokenize
    from assistant.retrieve import bm25_search

    index, store = store_assistant.index, store_assistant.store
    for question in ("liver transplant outcomes", "embolization complications", "zzzqqq"):
        tokens = tokenize(question)
        got = store.lexical_search(index, tokens, 6, None)
        want = bm25_search(index, tokens, 6)
        assert [r for r, _ in got] == [r for r, _ in want], question
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-3)
    assert store.lexical_search(index, [], 5, None) == []


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_search_through_the_assistant_keeps_every_shape(store_assistant: Assistant, mode: str,
                                                        settings: Settings) -> None:  # fmt: skip
    """Passages above the store are the same whichever store searched."""
    local = Assistant(settings, embedder=FakeEmbedder())
    local.load()
    for q in ("octreotide survival", "liver transplant outcomes"):
        got = [p.to_dict() for p in store_assistant.search(q, k=4, mode=mode)]
        want = [p.to_dict() for p in local.search(q, k=4, mode=mode)]
        assert [g["chunk_id"] for g in got] == [w["chunk_id"] for w in want]
        assert [round(g["score"], 3) for g in got] == [round(w["score"], 3) for w in want]
        assert got[0].keys() == want[0].keys()


@pytest.mark.parametrize(
    "filters",
    [Filters(year_min=2015), Filters(year_max=2012), Filters(year_min=2010, year_max=2016),
     Filters(source_types=("review",)), Filters(source_types=("trial", "cohort"), year_min=2000)],
)  # fmt: skip
def test_filters_allow_only_matching_sources(store_assistant: Assistant, filters: Filters) -> None:
    index, store = store_assistant.index, store_assistant.store
    ok = {doc for doc, meta in index.sources.items() if filters.allows(meta)}
    expected = {r for r in _rows(store_assistant) if index.doc_of_row(r) in ok}
    query = store_assistant.embedder.embed_query("liver")
    dense = store.dense_search(index, query, 100, filters)
    assert {r for r, _ in dense} == expected
    lexical = store.lexical_search(index, ["liver"], 100, filters)
    assert {r for r, _ in lexical} <= expected
    for p in store_assistant.search("liver metastases", k=10, filters=filters):
        assert p.chunk.doc_id in ok


def test_fetch_chunks_and_sources(store_assistant: Assistant) -> None:
    index, store = store_assistant.index, store_assistant.store
    chunks = store.fetch_chunks(index, [0, 2])
    assert [c.id for c in chunks] == [index.chunks[0].id, index.chunks[2].id]
    sources = store.fetch_sources(index, [chunks[0].doc_id, "no-such-source"])
    assert list(sources) == [chunks[0].doc_id]


def test_adding_and_removing_sources(store_assistant: Assistant) -> None:
    corpus = store_assistant.settings.corpus_dir
    (corpus / "prrt-study.md").unlink()
    (corpus / "zebra-study.md").write_text(ZEBRA, encoding="utf-8")
    report = store_assistant.build()
    assert report.added == ["zebra-study"] and report.removed == ["prrt-study"]
    index, store = store_assistant.index, store_assistant.store
    docs = {index.doc_of_row(r) for r in _rows(store_assistant)}
    assert "prrt-study" not in docs and "zebra-study" in docs
    hits = store.lexical_search(index, ["quokka"], 5, None)
    assert hits and index.doc_of_row(hits[0][0]) == "zebra-study"
    query = store_assistant.embedder.embed_query("prrt lutetium")
    every = store.dense_search(index, query, 1000, None)
    assert len(every) == len(index.chunks)
    assert all(index.doc_of_row(r) != "prrt-study" for r, _ in every)


def test_open_store_defaults_to_local(tmp_path: Path) -> None:
    assert isinstance(open_store(Settings(index_dir=tmp_path)), LocalStore)
