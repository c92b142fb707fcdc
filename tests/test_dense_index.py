"""Dense index types (flat, HNSW, IVF), `auto` by size, and the memory-mapped snapshot layout."""

import json

import numpy as np
import pytest
from helpers import FakeEmbedder

from assistant import Assistant, Settings
from assistant import dense as dense_index
from assistant.chunk_store import ChunkStore, VectorFile
from assistant.errors import IndexStateError
from assistant.index import FORMAT_VERSION, load_index
from assistant.retrieve import RetrievalParams, dense_search, retrieve
from assistant.types import Filters

QUESTIONS = [
    "octreotide LAR time to progression in midgut tumours",
    "liver transplantation selection criteria",
    "hepatic artery embolization outcomes",
    "PRRT with lutetium response rate",
]


def clustered(n: int, d: int = 32, centres: int = 40, seed: int = 0) -> np.ndarray:
    """Normalised vectors scattered around random centres (neighbourhoods like real ones)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.35 * rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_auto_keeps_exact_search_for_small_corpora_and_switches_above_the_threshold():
    assert dense_index.resolve({"type": "auto"}, 723, 384)["type"] == "flat"
    big = dense_index.resolve({"type": "auto", "auto_threshold": 1000}, 1_000_000, 384)
    assert big["type"] == "ivf-sq8" and big["factory"] == "IVF4000,SQ8"
    assert big["nprobe"] == 48 and big["refine"] == 2
    hnsw = dense_index.resolve({"type": "hnsw", "hnsw_ef_search": 77}, 10, 384)
    assert hnsw["factory"] == "HNSW32,Flat" and hnsw["ef_search"] == 77


@pytest.mark.parametrize(
    ("kind", "refine"),
    [("hnsw", 2), ("ivf-sq8", 2), pytest.param("ivf-pq", 10, marks=pytest.mark.slow)],
)
def test_approximate_types_agree_with_exact_search(kind: str, refine: int):
    x = clustered(4000)
    config = {"type": kind, "ivf_nlist": 32, "ivf_nprobe": 8, "refine": refine}
    info = dense_index.resolve(config, len(x), 32)
    approx = dense_index.build(x, info)
    flat_info = dense_index.resolve({"type": "flat"}, len(x), 32)
    flat = dense_index.build(x, flat_info)
    rng = np.random.default_rng(1)
    queries = x[rng.integers(0, len(x), 50)] + 0.2 * rng.normal(size=(50, 32)).astype(np.float32)
    recalls = []
    for q in queries:
        exact = dense_index.search(flat, x, flat_info, q, 10)
        got = dense_index.search(approx, x, info, q, 10)
        recalls.append(len({r for r, _ in exact} & {r for r, _ in got}) / 10)
        # re-scored exactly: the scores of what it finds are the exact ones
        exact_scores = dict(exact)
        assert all(abs(s - exact_scores[r]) < 1e-5 for r, s in got if r in exact_scores)
    assert np.mean(recalls) >= 0.9


@pytest.mark.parametrize("kind", ["hnsw", "ivf-sq8"])
def test_fixture_corpus_top_hits_match_exact(kind: str, settings: Settings, tmp_path):
    exact = Assistant(settings, embedder=FakeEmbedder())
    exact.load()
    approx_settings = settings.model_copy(
        update={
            "index_dir": tmp_path / f"index-{kind}",
            "dense_index": kind,
            "ivf_nlist": 2,
            "ivf_nprobe": 1,
        }  # fmt: skip
    )
    approx = Assistant(approx_settings, embedder=FakeEmbedder())
    approx.load()
    manifest = approx.index.manifest["dense"]
    assert manifest["type"] == kind
    assert ("ef_search" in manifest) if kind == "hnsw" else (manifest["nprobe"] == 1)
    embedder = FakeEmbedder()
    for question in QUESTIONS:
        q = embedder.embed_query(question)
        want = dense_search(exact.index, q, 3)
        got = dense_search(approx.index, q, 3)
        assert got[0][0] == want[0][0] and got[0][1] == pytest.approx(want[0][1], abs=0.02)
        assert len({r for r, _ in want} & {r for r, _ in got}) >= 2


def test_approximate_search_respects_filters():
    x = clustered(2000)
    info = dense_index.resolve({"type": "ivf-sq8", "ivf_nlist": 16, "ivf_nprobe": 2}, len(x), 32)
    index = dense_index.build(x, info)
    allowed = np.arange(0, 2000, 7, dtype=np.int64)
    q = clustered(1, seed=3)[0]
    hits = dense_index.search(index, x, info, q, 10, allowed)
    assert len(hits) == 10 and all(r % 7 == 0 for r, _ in hits)
    few = np.array([5, 900, 1999], dtype=np.int64)  # fewer than asked: searched exactly
    assert sorted(r for r, _ in dense_index.search(index, x, info, q, 10, few)) == [5, 900, 1999]


def test_loaded_index_is_memory_mapped_and_read_by_row(fake_assistant: Assistant, settings):
    loaded = load_index(settings.index_dir)
    assert isinstance(loaded.chunks, ChunkStore)
    assert not loaded.vectors.flags.owndata and not loaded.vectors.flags.writeable
    assert isinstance(loaded.bm25.scores["data"], np.memmap)
    built = fake_assistant.index
    assert [c.id for c in loaded.chunks] == [c.id for c in built.chunks]
    row = len(loaded.chunks) - 1
    assert (
        loaded.chunks[row] == built.chunks[row] and loaded.chunk_rows[built.chunks[row].id] == row
    )
    assert loaded.chunk_rows.get("no-such-chunk") is None
    assert loaded.notes.get("prrt-study")["body"] and "nope" not in loaded.notes
    embedder = FakeEmbedder()
    since = Filters(year_min=2010)
    for question in QUESTIONS:
        args = dict(mode="hybrid", query_vector=embedder.embed_query(question),
                    query_tokens=question.lower().split(), n=5,
                    params=RetrievalParams(candidates=20))  # fmt: skip
        assert retrieve(loaded, **args) == retrieve(built, **args)
        assert retrieve(loaded, filters=since, **args) == retrieve(built, filters=since, **args)


def test_older_layout_names_the_rebuild_command(fake_assistant: Assistant, settings: Settings):
    path = settings.index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 2
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexStateError, match="format version 2") as info:
        load_index(settings.index_dir)
    assert f"assistant index --force --index {settings.index_dir}" in info.value.hint
    rebuilt = Assistant(settings, embedder=FakeEmbedder())
    rebuilt.build()  # what `assistant index` runs: the old snapshot is not reused, nothing breaks
    assert load_index(settings.index_dir).manifest["format_version"] == FORMAT_VERSION


def test_vector_file_reads_rows_like_the_array(tmp_path):
    x = clustered(50, d=8)
    np.save(tmp_path / "v.npy", x)
    vf = VectorFile(tmp_path / "v.npy")
    assert len(vf) == 50 and vf.shape == (50, 8)
    assert np.array_equal(vf[3], x[3]) and np.array_equal(vf[-1], x[-1])
    assert np.array_equal(vf[np.array([7, 2, 7])], x[[7, 2, 7]])
    assert np.array_equal(vf[10:20], x[10:20]) and np.array_equal(np.asarray(vf), x)
    with pytest.raises(IndexError):
        vf[np.array([50])]
