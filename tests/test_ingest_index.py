"""The incremental index equals a full rebuild after documents are added, changed and removed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant, Settings
from assistant.ingest import CorpusStore, Overrides
from assistant.types import Filters

DATA = Path(__file__).parent / "data" / "ingest"
QUERIES = [
    "chemoembolisation versus bland embolisation response",
    "liver transplantation Milan criteria survival",
    "octreotide time to progression",
    "radioembolisation lung shunt dosimetry",
    "peptide receptor radionuclide therapy kidney toxicity",
]


def _results(assistant: Assistant) -> list[list[tuple[str, float]]]:
    out = []
    for mode in ("hybrid", "dense", "bm25"):
        for q in QUERIES:
            ps = assistant.search(q, k=8, mode=mode)
            out.append([(p.chunk.id, round(float(p.score), 5)) for p in ps])
        ps = assistant.search(QUERIES[0], k=5, mode=mode, filters=Filters(year_min=2010))
        out.append([(p.chunk.id, round(float(p.score), 5)) for p in ps])
    return out


def _edit_corpus(corpus: Path, tmp_path: Path) -> None:
    """Change one note, remove one, add two documents (one in a batch with a refused file)."""
    note = corpus / "liver-transplant.md"
    note.write_text(note.read_text() + "\nA sentence added later about the Milan criteria.\n")
    (corpus / "prrt-study.md").unlink()
    report = CorpusStore(corpus).add([DATA / "pmc_article.xml", DATA / "empty.txt"])
    assert len(report.added) == 1 and len(report.refused) == 1
    (tmp_path / "more.txt").write_text(
        "Tumour board notes\n\nRadioembolisation dosimetry limits the lung shunt fraction.\n"
    )
    assert CorpusStore(corpus).add([tmp_path / "more.txt"], Overrides(year=2021)).ok


def _compare(incremental: Assistant, full: Assistant) -> None:
    a, b = incremental.index, full.index
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks]
    assert [c.to_dict() for c in a.chunks] == [c.to_dict() for c in b.chunks]
    assert np.allclose(a.vectors, b.vectors, atol=1e-5)
    assert a.sources == b.sources
    assert a.doc_freq == b.doc_freq
    assert a.manifest["corpus"] == b.manifest["corpus"]
    assert a.manifest["counts"] == b.manifest["counts"]
    assert _results(incremental) == _results(full)


def _check(tmp_path: Path, corpus: Path, make_embedder) -> None:
    s_inc = Settings(corpus_dir=corpus, index_dir=tmp_path / "inc")
    incremental = Assistant(s_inc, embedder=make_embedder())
    first = incremental.build()
    assert first.embedded_chunks == first.chunks and first.reused_chunks == 0
    store_ids = {d.id for d in CorpusStore(corpus).scan()[0]}
    _edit_corpus(corpus, tmp_path)
    new_ids = {d.id for d in CorpusStore(corpus).scan()[0]}
    report = incremental.build()
    assert report.changed == ["liver-transplant"]
    assert report.removed == ["prrt-study"]
    assert sorted(report.added) == sorted(new_ids - store_ids)
    touched = {"liver-transplant", *report.added}
    n_touched = sum(1 for c in incremental.index.chunks if c.doc_id in touched)
    assert report.embedded_chunks == n_touched
    assert report.reused_chunks == report.chunks - n_touched > 0

    full = Assistant(Settings(corpus_dir=corpus, index_dir=tmp_path / "full"),
                     embedder=make_embedder())  # fmt: skip
    full.build(force=True)
    _compare(incremental, full)
    # the saved incremental index, read back from disk, is the same too
    reopened = Assistant(s_inc, embedder=make_embedder())
    reopened.load(rebuild=False)
    assert not reopened.warnings
    _compare(reopened, full)
    # nothing changed: nothing is embedded
    again = reopened.build()
    assert (again.added, again.changed, again.removed, again.embedded_chunks) == ([], [], [], 0)


def test_incremental_equals_full_rebuild_fake_model(
    tmp_path: Path, corpus_dir: Path, fake_embedder
) -> None:
    _check(tmp_path, corpus_dir, lambda: type(fake_embedder)())


@pytest.mark.slow
def test_incremental_equals_full_rebuild_real_model(
    tmp_path: Path, corpus_dir: Path, real_embedder
) -> None:
    _check(tmp_path, corpus_dir, lambda: real_embedder)


def test_ingested_passage_found_with_source(
    tmp_path: Path, corpus_dir: Path, fake_embedder
) -> None:
    assert CorpusStore(corpus_dir).add([DATA / "pubmed_two.xml"]).ok
    s = Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "i", abstain_threshold=0.0)
    answer = Assistant(s, embedder=fake_embedder).ask("zebrafish-marker response rate")
    top = answer.passages[0]
    assert "zebrafish-marker" in top.chunk.text
    assert top.chunk.section == "Abstract > Results"
    src = top.to_dict()["source"]
    assert src["pmid"] == "90000001" and src["source_type"] == "rct" and src["year"] == 2020
    assert src["authors"][0] == "Quartermain AB"
