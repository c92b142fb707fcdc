"""The streamed full build (`stream_build.py`): the files the libraries themselves write for the
same chunks and vectors (bm25s, FAISS, SQLite, NumPy), batch by batch; resumed after an interruption without embedding again; the previous index kept intact
until the new one is saved. Batches of 3 chunks over the fixture corpus (17 chunks: 6 batches)."""

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import FakeEmbedder
from pydantic import ValidationError
from typer.testing import CliRunner

from assistant import Assistant, Settings
from assistant import dense as dense_index
from assistant.bm25_build import BM25Builder
from assistant.chunk import chunk_documents, embedding_text
from assistant.chunk_store import MatrixWriter, VectorFile
from assistant.corpus import load_corpus
from assistant.errors import AssistantError
from assistant.index import SearchIndex, load_index, load_snapshot, save_index
from assistant.lexical import tokenize
from assistant.retrieve import retrieve
from assistant.staging import BUILDING, StagedBatch
from assistant.stream_build import write_index
from assistant.types import Document

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "octreotide LAR time to progression in midgut tumours",
    "liver transplantation selection criteria",
    "lutetium dotatate progression-free survival kidney toxicity",
    "embolization contraindications",
]
BATCH = 3


class Interrupted(Exception):
    """What the embedder raises to stand for Ctrl-C or a kill in the middle of a build."""


class RecordingEmbedder(FakeEmbedder):
    """The fake embedder, remembering every text; raises at call `fail_at` (counted from 1)."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.texts: list[str] = []

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        if self.fail_at is not None and self.calls + 1 >= self.fail_at:
            raise Interrupted(f"interrupted at call {self.calls + 1}")
        self.texts.extend(texts)
        return super().embed_documents(texts, progress)


def settings_for(corpus_dir: Path, index_dir: Path, **kw: object) -> Settings:
    kw.setdefault("build_batch_chunks", BATCH)
    return Settings(corpus_dir=corpus_dir, index_dir=index_dir, abstain_threshold=0.2,
                    **kw)  # type: ignore[arg-type]  # fmt: skip


def build(settings: Settings, embedder: FakeEmbedder, force: bool = False) -> Assistant:
    assistant = Assistant(settings, embedder=embedder)
    assistant.build(force=force)
    return assistant


def interrupted(settings: Settings, batches: int) -> None:
    """A build stopped while embedding batch `batches` (each batch: chunks, then sentences)."""
    with pytest.raises(Interrupted):
        build(settings, RecordingEmbedder(fail_at=2 * batches + 1), force=True)


def hits(index: SearchIndex) -> list[list[tuple[str, float]]]:
    emb = FakeEmbedder()
    out = []
    for q in QUESTIONS:
        for mode in ("hybrid", "dense", "bm25"):
            ranked = retrieve(index, mode=mode, query_vector=emb.embed_query(q),
                              query_tokens=tokenize(q, "english"), n=8)  # fmt: skip
            out.append([(index.chunks[r].id, round(s, 6)) for r, s in ranked])
    return out


def chunk_texts(index: SearchIndex) -> list[str]:
    """What was embedded for each chunk of an index, in row order."""
    return [embedding_text(c, index.sources[c.doc_id]["title"]) for c in index.chunks]


def same_index(a: SearchIndex, b: SearchIndex) -> None:
    assert [c.to_dict() for c in a.chunks] == [c.to_dict() for c in b.chunks]
    assert np.array_equal(np.asarray(a.vectors), np.asarray(b.vectors))
    assert np.array_equal(np.asarray(a.unit_vectors), np.asarray(b.unit_vectors))
    assert np.array_equal(np.asarray(a.unit_offsets), np.asarray(b.unit_offsets))
    assert hits(a) == hits(b)


def token_ids(
    texts: Sequence[str], stemmer: str | None
) -> tuple[list[list[int]], dict[str, int], dict[str, int]]:
    """The reference BM25 input: each text's tokens as vocabulary ids (an empty text gets a
    placeholder token, as bm25s needs one per document), the vocabulary and the document
    frequencies (without the placeholder) in vocabulary order."""
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in (tokenize(x, stemmer) or ["\u2205"])]
           for x in texts]  # fmt: skip
    df = Counter(i for row in ids for i in set(row))
    return ids, vocab, {t: df[i] for t, i in vocab.items() if t != "\u2205"}


def reference_index(index: SearchIndex, stemmer: str | None) -> SearchIndex:
    """The index in memory as the libraries build it from `index`'s chunks and vectors: bm25s
    over the token ids, FAISS of the recorded type over the vectors (`save_index` writes it)."""
    import bm25s

    chunks = list(index.chunks)
    ids, vocab, doc_freq = token_ids(chunk_texts(index), stemmer)
    bm25 = bm25s.BM25()
    bm25.index((ids, vocab), show_progress=False)
    vectors = np.asarray(index.vectors)
    return SearchIndex(dict(index.manifest), chunks, dict(index.sources), vectors, bm25, doc_freq,
                       dense=dense_index.build(vectors, index.dense_info), notes=dict(index.notes),
                       unit_vectors=np.asarray(index.unit_vectors),
                       unit_offsets=np.asarray(index.unit_offsets))  # fmt: skip


def same_files(a: Path, b: Path) -> None:
    """Every file under `a` and `b` the same byte for byte (the manifests apart)."""
    names = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    for name in names:  # chunks.db, BM25, FAISS, vectors ...
        if name.name != "manifest.json":
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("corpus", [ROOT / "tests" / "data" / "corpus", ROOT / "corpus"])
def test_streamed_build_writes_what_the_libraries_write(corpus: Path, tmp_path: Path) -> None:
    """On the fixture and the bundled corpus (fake embedder), in batches of 3: the snapshot is
    file for file the index bm25s, FAISS, SQLite and NumPy write for the same chunks and
    vectors, and `write_index` (all at once, as an incremental delta is written) writes it too."""
    s = settings_for(corpus, tmp_path / "streamed")
    streamed = build(s, FakeEmbedder()).index
    memory = reference_index(streamed, s.bm25_stemmer)
    save_index(memory, tmp_path / "memory")
    same_index(streamed, load_index(tmp_path / "memory"))
    same_files(tmp_path / "streamed" / "current", tmp_path / "memory" / "current")
    docs, _ = load_corpus(corpus)
    vectors = StagedBatch(memory.vectors, np.asarray(memory.unit_vectors),
                          np.diff(np.asarray(memory.unit_offsets)))  # fmt: skip
    m = streamed.manifest
    manifest = write_index(tmp_path / "at-once", docs, list(memory.chunks), vectors,
                           model=m["model"], chunker=m["chunker"], bm25_stemmer=s.bm25_stemmer,
                           dense=s.dense_config(), corpus_root=corpus,
                           corpus_files=m["corpus"]["files"],
                           corpus_fingerprint=m["corpus"]["fingerprint"])  # fmt: skip
    same_files(tmp_path / "streamed" / "current", tmp_path / "at-once")
    skip = {"created_at", "build_seconds", "store"}
    assert {k: v for k, v in manifest.items() if k not in skip} == {
        k: v for k, v in m.items() if k not in skip
    }
    assert dict(load_snapshot(tmp_path, tmp_path / "at-once").notes) == dict(streamed.notes)


def test_a_full_build_reads_each_note_as_it_chunks_it(
    corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The corpus is loaded without bodies; each note's body is read when the note is chunked
    (once to count the chunks, once to index them, batch after batch) and when its row of the
    notes table is written: never the whole corpus at once."""
    from assistant import corpus, lifecycle

    events: list[tuple[str, str]] = []
    real_read, real_load = corpus.read_body, corpus.load_corpus

    def read(doc: Document) -> str:
        events.append(("read", doc.id))
        return real_read(doc)

    loaded: list[list[Document]] = []

    def load(*args: Any, **kwargs: Any) -> tuple[list[Document], list[str]]:
        docs, warnings = real_load(*args, **kwargs)
        loaded.append(docs)
        return docs, warnings

    class Recording(FakeEmbedder):
        def embed_documents(self, texts: Sequence[str],
                            progress: Callable[[int, int], None] | None = None) -> np.ndarray:  # fmt: skip
            events.append(("embed", str(len(texts))))
            return super().embed_documents(texts, progress)

    monkeypatch.setattr(corpus, "read_body", read)  # what with_body calls
    monkeypatch.setattr(lifecycle, "read_body", read)
    monkeypatch.setattr(lifecycle, "load_corpus", load)
    s = settings_for(corpus_dir, tmp_path / "index")
    built = build(s, Recording(), force=True)
    assert [d.body for d in loaded[0]] == [""] * 4
    full, _ = real_load(corpus_dir)
    first = [d.id for d in full]  # each note's first chunk row: when the stream needs it
    firsts = {}
    for row, chunk in enumerate(chunk_documents(full, s.chunk_max_tokens, s.chunk_overlap_tokens)):
        firsts.setdefault(chunk.doc_id, row)
    reads = [doc_id for kind, doc_id in events if kind == "read"]
    assert reads == first * 3  # counted, chunked for the stream, written to the notes table
    embeds = [i for i, (kind, _) in enumerate(events) if kind == "embed"]
    assert events[: len(first)] == [("read", d) for d in first]  # counted before embedding
    for batch, at in enumerate(embeds[::2]):  # each batch: its chunk texts, then its sentences
        streamed = sum(1 for kind, _ in events[:at] if kind == "read") - len(first)
        needed = sum(1 for row in firsts.values() if row < BATCH * (batch + 1))
        assert streamed == needed, batch  # the notes of this batch's chunks, no more
    assert all(kind == "read" for kind, _ in events[embeds[-1] + 1 :])  # the notes table last
    assert dict(built.index.notes) == {d.id: {"body": d.body, "body_offset": d.body_offset}
                                       for d in full}  # fmt: skip


def test_a_note_edited_during_the_build_stops_it_clearly(corpus_dir: Path, tmp_path: Path) -> None:
    """A note that changes between loading and indexing is not indexed half old, half new: the
    build stops naming the note and the fix, and the previous index stays live."""
    s = settings_for(corpus_dir, tmp_path / "index")
    before = build(s, FakeEmbedder()).index.snapshot
    note = sorted(corpus_dir.glob("*.md"))[-1]

    class Editing(FakeEmbedder):
        def embed_documents(self, texts: Sequence[str],
                            progress: Callable[[int, int], None] | None = None) -> np.ndarray:  # fmt: skip
            if not self.calls:  # while the first batch embeds, someone saves the last note
                note.write_text(note.read_text(encoding="utf-8") + "\nAn edit.\n", "utf-8")
            return super().embed_documents(texts, progress)

    with pytest.raises(AssistantError) as info:
        build(s, Editing(), force=True)
    assert info.value.message == f"{note}: the note changed while the index was being built"
    assert "assistant index" in (info.value.hint or "")
    assert load_index(s.index_dir).snapshot == before
    assert build(s, FakeEmbedder(), force=True).last_build is not None  # and the rerun builds


@pytest.mark.parametrize("corpus", [ROOT / "tests" / "data" / "corpus", ROOT / "corpus"])
def test_bm25_builder_writes_what_bm25s_writes(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the fixture and the bundled corpus, plus an empty text, with the score matrix written
    a few terms and documents at a time: every file equals bm25s's own index."""
    import bm25s

    monkeypatch.setattr("assistant.bm25_build.RANGE_ENTRIES", 500)
    monkeypatch.setattr("assistant.bm25_build.BLOCK_ENTRIES", 300)
    s = Settings()
    docs, _ = load_corpus(corpus)
    titles = {d.id: d.title for d in docs}
    chunks = chunk_documents(docs, s.chunk_max_tokens, s.chunk_overlap_tokens)
    texts = [embedding_text(c, titles[c.doc_id]) for c in chunks] + ["", "of the"]
    ids, vocab, doc_freq = token_ids(texts, s.bm25_stemmer)
    reference = bm25s.BM25()
    reference.index((ids, vocab), show_progress=False)
    reference.save(str(tmp_path / "bm25s"), show_progress=False)
    built = BM25Builder(tmp_path / "counts", s.bm25_stemmer)
    for start in range(0, len(texts), 7):
        built.add(texts[start : start + 7])
    assert built.finish(tmp_path / "streamed")
    assert list(built.doc_freq.items()) == list(doc_freq.items())
    for path in sorted((tmp_path / "bm25s").iterdir()):
        assert path.read_bytes() == (tmp_path / "streamed" / path.name).read_bytes(), path.name


def test_bm25_builder_scores_a_part_with_the_idf_of_the_whole(tmp_path: Path) -> None:
    """An incremental delta's BM25 (`scope`): bm25s's index of the part, each term's scores
    scaled by the ratio of its idf over the whole collection to its idf over the part."""
    import bm25s

    s = Settings()
    docs, _ = load_corpus(ROOT / "tests" / "data" / "corpus")
    titles = {d.id: d.title for d in docs}
    chunks = chunk_documents(docs, s.chunk_max_tokens, s.chunk_overlap_tokens)
    texts = [embedding_text(c, titles[c.doc_id]) for c in chunks]
    part = texts[:6]
    ids, vocab, part_df = token_ids(part, s.bm25_stemmer)
    whole_df = token_ids(texts, s.bm25_stemmer)[2]
    reference = bm25s.BM25()
    reference.index((ids, vocab), show_progress=False)
    built = BM25Builder(tmp_path / "counts", s.bm25_stemmer)
    built.add(part)
    assert built.finish(tmp_path / "part", (whole_df, len(texts)))
    got = bm25s.BM25.load(str(tmp_path / "part"), show_progress=False)

    def idf(n: int, size: int) -> float:
        return float(np.log(1 + (size - n + 0.5) / (n + 0.5)))

    want, indptr = reference.scores["data"], reference.scores["indptr"]
    assert np.array_equal(got.scores["indptr"], indptr)
    assert np.array_equal(got.scores["indices"], reference.scores["indices"])
    scaled = 0
    for term, n in part_df.items():  # (bm25s adds an empty token to `vocab`: never scored)
        tid = vocab[term]
        ratio = idf(whole_df[term], len(texts)) / idf(n, len(part))
        span = slice(indptr[tid], indptr[tid + 1])
        np.testing.assert_allclose(got.scores["data"][span], want[span] * ratio, rtol=1e-5)
        scaled += abs(ratio - 1) > 0.01
    assert scaled > len(part_df) // 2  # the whole's idf differs from the part's for most terms


def test_interrupted_build_resumes_without_embedding_again(
    corpus_dir: Path, tmp_path: Path
) -> None:
    s = settings_for(corpus_dir, tmp_path / "index")
    interrupted(s, batches=2)
    staged = sorted(p.name for p in (s.index_dir / BUILDING).rglob("batch-*.npz"))
    assert staged == ["batch-000000.npz", "batch-000001.npz"]
    again = RecordingEmbedder()
    resumed = build(s, again)
    report = resumed.last_build
    assert report is not None
    assert (report.resumed_chunks, report.embedded_chunks, report.chunks) == (6, 11, 17)
    texts = chunk_texts(resumed.index)
    assert not set(texts[:6]) & set(again.texts)  # what the first run embedded is not again
    assert set(texts[6:]) <= set(again.texts)
    assert again.calls == 8  # 4 batches left: chunk texts and answer sentences each
    same_index(resumed.index, build(settings_for(corpus_dir, tmp_path / "clean"),
                                    FakeEmbedder()).index)  # fmt: skip
    assert not (s.index_dir / BUILDING).exists()  # the staging folder goes after the save


KILLED_BUILD = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from helpers import FakeEmbedder
from assistant import Assistant, Settings

class Killed(FakeEmbedder):
    def embed_documents(self, texts, progress=None):
        if self.calls == 5:  # batches 0 and 1 are staged, batch 2's sentences never come
            os.kill(os.getpid(), signal.SIGKILL)
        return super().embed_documents(texts, progress)

s = Settings(corpus_dir={corpus!r}, index_dir={index!r}, build_batch_chunks=3)
Assistant(s, embedder=Killed()).build(force=True)
"""


def test_a_killed_build_resumes(corpus_dir: Path, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    script = KILLED_BUILD.format(tests=str(Path(__file__).parent), corpus=str(corpus_dir),
                                 index=str(tmp_path / "index"))  # fmt: skip
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=False)
    assert killed.returncode == -signal.SIGKILL
    s = settings_for(corpus_dir, tmp_path / "index")
    report = build(s, RecordingEmbedder()).last_build
    assert report is not None and (report.resumed_chunks, report.embedded_chunks) == (6, 11)


def test_staged_batches_of_another_key_are_not_used(corpus_dir: Path, tmp_path: Path) -> None:
    s = settings_for(corpus_dir, tmp_path / "index")
    interrupted(s, batches=2)
    old_keys = list((s.index_dir / BUILDING).iterdir())
    note = corpus_dir / "prrt-study.md"  # another corpus: another key
    note.write_text(note.read_text().replace("65%", "66%"), encoding="utf-8")
    again = RecordingEmbedder()
    report = build(s, again).last_build
    assert report is not None and report.resumed_chunks == 0
    assert report.embedded_chunks == report.chunks == 17
    assert all(not k.exists() for k in old_keys)
    interrupted(s, batches=2)
    other = settings_for(corpus_dir, s.index_dir, build_batch_chunks=4)
    report = build(other, RecordingEmbedder(), force=True).last_build  # another batch size
    assert report is not None and report.resumed_chunks == 0 and report.embedded_chunks == 17


def test_a_damaged_staged_batch_is_embedded_again(corpus_dir: Path, tmp_path: Path) -> None:
    s = settings_for(corpus_dir, tmp_path / "index")
    interrupted(s, batches=3)
    batch = next((s.index_dir / BUILDING).rglob("batch-000001.npz"))
    batch.write_bytes(batch.read_bytes()[:100])  # truncated, as a full disk might leave it
    assistant = build(s, RecordingEmbedder())
    report = assistant.last_build
    assert report is not None and (report.resumed_chunks, report.embedded_chunks) == (6, 11)
    assert any("batch-000001.npz" in w and "embedding it again" in w for w in assistant.warnings)
    same_index(assistant.index, build(settings_for(corpus_dir, tmp_path / "clean"),
                                      FakeEmbedder()).index)  # fmt: skip


def test_the_previous_index_stays_live_while_a_build_fails(
    corpus_dir: Path, tmp_path: Path
) -> None:
    s = settings_for(corpus_dir, tmp_path / "index")
    first = build(s, FakeEmbedder())
    before = hits(first.index)
    snapshot = first.index.snapshot
    (corpus_dir / "embolization-review.md").unlink()
    interrupted(s, batches=1)
    live = load_index(s.index_dir)
    assert live.snapshot == snapshot and len(live.chunks) == 17
    assert hits(live) == before
    assert [p.name for p in (s.index_dir / "snapshots").iterdir()] == [snapshot]
    served = Assistant(s, embedder=FakeEmbedder())
    assert served.load(rebuild=False).snapshot == snapshot  # stale, with a warning, but served
    assert served.search("octreotide", k=2)


def test_unchanged_chunks_are_reused_batch_by_batch(corpus_dir: Path, tmp_path: Path) -> None:
    s = settings_for(corpus_dir, tmp_path / "index")
    build(s, FakeEmbedder())
    note = corpus_dir / "prrt-study.md"
    note.write_text(note.read_text().replace("65%", "66%"), encoding="utf-8")
    again = RecordingEmbedder()
    assistant = build(s, again)
    report = assistant.last_build
    assert report is not None and report.changed == ["prrt-study"]
    assert (report.reused_chunks, report.embedded_chunks, report.resumed_chunks) == (13, 4, 0)
    index = assistant.index
    changed = {t for c, t in zip(index.chunks, chunk_texts(index), strict=True)
               if c.doc_id == "prrt-study"}  # fmt: skip
    assert changed == set(chunk_texts(index)) & set(again.texts)
    same_index(assistant.index, build(settings_for(corpus_dir, tmp_path / "clean"),
                                      FakeEmbedder()).index)  # fmt: skip


def test_cli_says_it_resumes(
    corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from assistant.cli import app

    s = settings_for(corpus_dir, tmp_path / "idx")
    interrupted(s, batches=2)
    fake = FakeEmbedder()
    monkeypatch.setattr("assistant.lifecycle.load_embedder", lambda *a, **k: fake)
    monkeypatch.setattr("assistant.lifecycle.describe_model", lambda name: (name, fake.fingerprint))
    monkeypatch.setenv("ASSISTANT_BUILD_BATCH_CHUNKS", str(BATCH))
    args = ["index", "--corpus", str(corpus_dir), "--index", str(s.index_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "resuming: 6 of 17 chunks already embedded" in result.output
    assert "resumed 6" in result.stdout
    interrupted(s, batches=1)
    result = CliRunner().invoke(app, [*args, "--force", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["resumed_chunks"], report["embedded_chunks"], report["reused_chunks"]) == (
        3, 14, 0)  # fmt: skip


def test_progress_counts_chunks_batch_by_batch(corpus_dir: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    s = settings_for(corpus_dir, tmp_path / "index")
    Assistant(s, embedder=FakeEmbedder(), progress=lambda *a: seen.append(a)).build()
    embed = [done for stage, done, total in seen if stage == "embed" and total == 17]
    assert embed == sorted(embed) and embed[0] == 0 and embed[-1] == 17
    assert {3, 6, 9, 12, 15} <= set(embed)  # the end of every batch at least
    assert [s for s, _, _ in seen].index("embed") < [s for s, _, _ in seen].index("bm25")


def test_build_batch_chunks_is_validated() -> None:
    with pytest.raises(ValidationError, match="build_batch_chunks"):
        Settings(build_batch_chunks=0)
    assert Settings().build_batch_chunks == 1024


def test_matrix_writer_appends_a_npy_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(n, 5)).astype(np.float32) for n in (3, 0, 4)]
    writer = MatrixWriter(tmp_path / "m.npy", 5)
    for block in blocks:
        writer.append(block)
    writer.close()
    whole = np.concatenate(blocks)
    assert np.array_equal(np.load(tmp_path / "m.npy"), whole)
    assert np.array_equal(VectorFile(tmp_path / "m.npy")[2:5], whole[2:5])


def test_a_ray_build_streams_batches_that_give_every_actor_many_calls() -> None:
    """Each streamed batch is one Ray Data job whose actors load the model: on Ray a batch is
    at least CALLS_PER_ACTOR calls of ray_batch_size texts per actor (a larger setting wins)."""
    from assistant.ray_embed import CALLS_PER_ACTOR, RayEmbedder

    s = Settings(ray_batch_size=16, ray_actors=2)
    remote = RayEmbedder(FakeEmbedder(), s)  # nothing starts Ray before the first embedding
    assert remote.build_batch_chunks(100) == CALLS_PER_ACTOR * 16 * 2
    assert remote.build_batch_chunks(100_000) == 100_000
