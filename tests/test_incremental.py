"""Incremental snapshots (a base plus a delta): forced on the fixture corpus by setting
incremental_min_chunks to 0, and compared with full rebuilds of the same corpus."""

from pathlib import Path

import pytest
from helpers import FakeEmbedder

from assistant import Assistant, Settings
from assistant.index import SearchIndex, load_index
from assistant.lexical import tokenize
from assistant.retrieve import retrieve
from assistant.types import Filters

QUESTIONS = [
    "octreotide LAR time to progression in midgut tumours",
    "liver transplantation selection criteria",
    "lutetium dotatate progression-free survival kidney toxicity",
    "cryoablation of small liver metastases",
]
NEW_NOTE = """---
id: ablation-note
title: "A fixture note on cryoablation of liver metastases"
year: 2021
source_type: review
authors: [Theta T]
journal: Fixture Med
topics: [ablation]
---

# Cryoablation

## Findings
Cryoablation of small liver metastases gave local control in most patients, with few
complications. Larger lesions recurred more often than small ones after cryoablation.
"""


def settings_for(corpus_dir: Path, index_dir: Path, **kw: object) -> Settings:
    return Settings(corpus_dir=corpus_dir, index_dir=index_dir, abstain_threshold=0.2,
                    **kw)  # type: ignore[arg-type]  # fmt: skip


def hits(index: SearchIndex, mode: str, n: int = 5, **kw: object) -> list[list[str]]:
    """Chunk ids of the top `n` of each question."""
    emb = FakeEmbedder()
    out = []
    for q in QUESTIONS:
        ranked = retrieve(index, mode=mode, query_vector=emb.embed_query(q),
                          query_tokens=tokenize(q, "english"), n=n, **kw)  # type: ignore[arg-type]  # fmt: skip
        out.append([index.chunks[r].id for r, _ in ranked])
    return out


def edit_corpus(corpus: Path) -> None:
    note = corpus / "prrt-study.md"
    note.write_text(note.read_text().replace("65%", "66%"), encoding="utf-8")
    (corpus / "embolization-review.md").unlink()
    (corpus / "ablation-note.md").write_text(NEW_NOTE, encoding="utf-8")


def rebuilt(corpus_dir: Path, tmp_path: Path) -> SearchIndex:
    """A full build of the corpus as it is now, in its own folder."""
    full = Assistant(settings_for(corpus_dir, tmp_path / "full"), embedder=FakeEmbedder())
    full.build()
    return full.index


@pytest.fixture
def delta_assistant(corpus_dir: Path, tmp_path: Path) -> Assistant:
    """The fixture corpus indexed, then edited (one note changed, one removed, one added) and
    updated as a delta."""
    s = settings_for(corpus_dir, tmp_path / "index", incremental_min_chunks=0)
    Assistant(s, embedder=FakeEmbedder()).build()
    edit_corpus(corpus_dir)
    assistant = Assistant(s, embedder=FakeEmbedder())
    assistant.build()
    return assistant


def test_adding_changing_and_removing_sources_as_a_delta_matches_a_rebuild(
    delta_assistant: Assistant, corpus_dir: Path, tmp_path: Path
):
    index = delta_assistant.index
    report = delta_assistant.last_build
    assert report is not None and report.added == ["ablation-note"]
    assert report.changed == ["prrt-study"] and report.removed == ["embolization-review"]
    info = index.manifest["delta"]
    assert info["tombstones"] > 0 and info["chunks"] == report.embedded_chunks
    # the base was hard-linked, not rewritten
    folder = tmp_path / "index" / "current"
    assert (folder / "dense.faiss").stat().st_nlink == 2
    full = rebuilt(corpus_dir, tmp_path)
    assert index.manifest["counts"]["chunks"] == full.manifest["counts"]["chunks"]
    assert set(index.sources) == set(full.sources) and index.doc_freq == full.doc_freq
    # dense search over exact vectors: the same ranking; BM25 and hybrid: the same best hit
    assert hits(index, "dense") == hits(full, "dense")
    for mode in ("bm25", "hybrid"):
        assert [h[:1] for h in hits(index, mode)] == [h[:1] for h in hits(full, mode)]
        assert [set(h) for h in hits(index, mode, n=3)] == [set(h) for h in hits(full, mode, n=3)]
    # reopened from disk, the same
    assert hits(load_index(tmp_path / "index"), "hybrid") == hits(index, "hybrid")
    assert "Cryoablation of small liver" in index.notes["ablation-note"]["body"]
    assert "embolization-review" not in index.notes


def test_tombstoned_rows_never_come_back(delta_assistant: Assistant):
    index = delta_assistant.index
    everything = len(index.chunks)
    old = [r for r, c in enumerate(index.chunks) if c.doc_id == "embolization-review"
           or (c.doc_id == "prrt-study" and "65%" in c.text)]  # fmt: skip
    assert old, "the removed and changed sources' base rows are still stored"
    since = Filters(year_min=2000)
    for mode in ("dense", "bm25", "hybrid"):
        for found in hits(index, mode, n=everything) + hits(index, mode, n=everything,
                                                            filters=since):  # fmt: skip
            assert not {index.chunk_rows.get(c) for c in found} & set(old)
            assert all("65%" not in index.chunks[index.chunk_rows[c]].text for c in found)
    assert all(index.chunks[index.chunk_rows[c.id]].doc_id != "embolization-review"
               for c in index.chunks if c.id in index.chunk_rows)  # fmt: skip


def test_a_second_delta_keeps_the_first_and_compaction_equals_a_rebuild(
    delta_assistant: Assistant, corpus_dir: Path, tmp_path: Path
):
    first = delta_assistant.index.manifest["delta"]
    note = corpus_dir / "liver-transplant.md"
    note.write_text(note.read_text() + "\nA closing sentence about Milan criteria.\n")
    s = delta_assistant.settings
    again = Assistant(s, embedder=FakeEmbedder())
    again.build()
    second = again.index.manifest["delta"]
    assert second["base_chunks"] == first["base_chunks"]
    assert second["tombstones"] > first["tombstones"]
    assert again.last_build is not None and again.last_build.changed == ["liver-transplant"]
    assert any(c.doc_id == "ablation-note" for c in again.index.chunks)
    full = rebuilt(corpus_dir, tmp_path)
    assert hits(again.index, "dense") == hits(full, "dense")
    # the first delta's source kept its note (from the snapshot: only changed notes are read)
    assert dict(again.index.notes) == dict(full.notes)
    compacted = Assistant(s, embedder=FakeEmbedder())
    compacted.build(compact=True)
    assert "delta" not in compacted.index.manifest
    assert compacted.last_build is not None and compacted.last_build.embedded_chunks == 0
    assert compacted.index.doc_freq == full.doc_freq
    for mode in ("dense", "bm25", "hybrid"):
        assert hits(compacted.index, mode) == hits(full, mode)
    assert list(compacted.index.sources) == list(full.sources)


def test_the_compaction_suggestion_appears_past_the_share(corpus_dir: Path, tmp_path: Path):
    s = settings_for(corpus_dir, tmp_path / "index", incremental_min_chunks=0,
                     incremental_compact_share=0.5)  # fmt: skip
    Assistant(s, embedder=FakeEmbedder()).build()
    (corpus_dir / "ablation-note.md").write_text(NEW_NOTE, encoding="utf-8")
    small = Assistant(s, embedder=FakeEmbedder())
    small.build()
    assert "delta" in small.index.manifest
    assert not any("--compact" in w for w in small.warnings)
    edit_corpus(corpus_dir)  # now a changed and a removed source too
    large = Assistant(s.model_copy(update={"incremental_compact_share": 0.05}),
                      embedder=FakeEmbedder())  # fmt: skip
    large.build()
    assert any("assistant index --compact" in w for w in large.warnings)


def test_small_indexes_are_rebuilt_whole(fake_assistant: Assistant, corpus_dir: Path):
    (corpus_dir / "ablation-note.md").write_text(NEW_NOTE, encoding="utf-8")
    again = Assistant(fake_assistant.settings, embedder=FakeEmbedder())
    again.build()
    assert "delta" not in again.index.manifest
    assert not (fake_assistant.settings.index_dir / "current" / "delta").exists()


def test_a_delta_of_removals_only(corpus_dir: Path, tmp_path: Path):
    s = settings_for(corpus_dir, tmp_path / "index", incremental_min_chunks=0)
    Assistant(s, embedder=FakeEmbedder()).build()
    (corpus_dir / "embolization-review.md").unlink()
    again = Assistant(s, embedder=FakeEmbedder())
    again.build()
    assert again.index.manifest["delta"]["chunks"] == 0
    full = rebuilt(corpus_dir, tmp_path)
    assert hits(again.index, "dense") == hits(full, "dense")
    for mode in ("bm25", "hybrid"):
        found = {c for h in hits(again.index, mode, n=50) for c in h}
        assert found and not any(c.startswith("embolization-review") for c in found)


@pytest.mark.parametrize("kind", ["hnsw", "ivf-sq8"])
def test_tombstones_are_left_out_of_approximate_base_indexes(
    kind: str, corpus_dir: Path, tmp_path: Path
):
    s = settings_for(corpus_dir, tmp_path / "index", incremental_min_chunks=0, dense_index=kind)
    Assistant(s, embedder=FakeEmbedder()).build()
    edit_corpus(corpus_dir)
    again = Assistant(s, embedder=FakeEmbedder())
    again.build()
    index = again.index
    assert index.manifest["delta"]["base_dense"]["type"] == kind
    for found in hits(index, "dense", n=len(index.chunks)) + hits(
        index, "dense", n=5, filters=Filters(year_min=2000)
    ):
        assert found and not any(c.startswith("embolization-review") for c in found)
    full = Assistant(settings_for(corpus_dir, tmp_path / "full", dense_index=kind),
                     embedder=FakeEmbedder())  # fmt: skip
    full.build()
    assert [h[:1] for h in hits(index, "dense")] == [h[:1] for h in hits(full.index, "dense")]
