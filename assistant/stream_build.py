"""A full build as a stream: chunks are embedded and written batch by batch, with bounded memory,
and an interrupted build resumes without embedding again what it had done.

Each batch of `build_batch_chunks` chunks takes its vectors from the previous index (unchanged
chunks), from a staged batch of an interrupted build (`staging.py`), or from the embedder; a
batch that needed the embedder is staged before going on. Its chunk rows go into the new
chunks.db, its vectors and answer-unit vectors to the end of .npy files, its term counts into
the BM25 builder (`bm25_build.py`): only per-chunk numbers (row -> source, unit offsets) and the
vocabulary grow in memory. The sources are metadata only: `assistant index` reads each note's
body when it chunks the note and again when it writes the note's row of the notes table (after
the chunks, so chunks.db is the same file however the chunks were batched). Then BM25 and the
dense index are built from the files (IVF trains on a sample) and the manifest written. The
files sit in the staging folder until `save` moves them into a new snapshot and makes it live,
so the previous index serves, intact, until then.

`IndexWriter` writes the files of one index; `write_index` writes an index whose vectors are
ready with it (the delta of an incremental build), so every index is built by this one code.
"""

from __future__ import annotations

import itertools
import json
import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import dense as dense_index
from .bm25_build import BM25Builder
from .chunk import embedding_text
from .chunk_store import CHUNKS_DB, ChunkWriter, MatrixWriter, VectorFile
from .chunk_vectors import VectorSource, document_changes
from .embed import Embedder
from .index import ROW_DOCS, SENTENCE_OFFSETS, SENTENCES, SearchIndex, load_snapshot
from .index_checks import FORMAT_VERSION
from .index_manifest import build_manifest, model_record, sources_of
from .snapshots import MANIFEST, write_snapshot
from .staging import WORK, StagedBatch, Staging, batch_digest, staging_key
from .types import Chunk, Document

StageProgress = Callable[[str, int, int], None]
ChunkSource = Callable[[], Iterable[Chunk]]  # the chunks in index order, anew at each call


@dataclass
class StreamResult:
    """A streamed build: the index opened over its files (not yet a snapshot) and its counts."""

    index: SearchIndex
    changes: dict[str, list[str]]
    chunks: int
    reused: int  # vectors taken from the previous index
    embedded: int  # chunks embedded by this run
    resumed: int  # vectors taken from the staged batches of an interrupted build


class StreamBuild:
    """Build a full index of `docs` into the staging folder of `index_dir`, then `save` it.

    `chunks` gives the chunks in index order; `note_bodies`, when given, reads a note's body for
    its row of the notes table (docs loaded without bodies), so no body is held for the build.
    """

    def __init__(
        self,
        index_dir: Path,
        docs: Sequence[Document],
        chunks: ChunkSource,
        embedder: Embedder,
        *,
        chunker: dict[str, int],
        bm25_stemmer: str | None,
        corpus_files: dict[str, str],
        corpus_fingerprint: str,
        previous: SearchIndex | None = None,
        progress: StageProgress | None = None,
        corpus_root: Path | None = None,
        unit_vectors: bool = True,
        dense: dict[str, Any] | None = None,
        batch_chunks: int = 1024,
        n_chunks: int | None = None,
        note_bodies: Callable[[Document], str] | None = None,
    ) -> None:
        if batch_chunks < 1:
            raise ValueError(f"build_batch_chunks must be at least 1, not {batch_chunks}")
        self.index_dir = index_dir
        self.docs, self.chunks, self.embedder = docs, chunks, embedder
        self.chunker, self.bm25_stemmer = chunker, bm25_stemmer
        self.corpus_files, self.corpus_fingerprint = corpus_files, corpus_fingerprint
        self.previous, self.progress, self.corpus_root = previous, progress, corpus_root
        self.unit_vectors, self.dense, self.batch_chunks = unit_vectors, dense, batch_chunks
        self.n_chunks = n_chunks
        self.note_bodies = note_bodies  # None: each doc holds its body
        self.model = model_record(embedder)
        key = staging_key({"format": FORMAT_VERSION, "model": self.model, "chunker": chunker,
                           "corpus": corpus_fingerprint, "units": unit_vectors,
                           "batch_chunks": batch_chunks})  # fmt: skip
        self.staging = Staging(index_dir, key)
        self.warnings = self.staging.warnings  # damaged staged batches, for the caller to show
        self.work = self.staging.folder / WORK
        self.source = VectorSource(docs, embedder, chunker=chunker, format_version=FORMAT_VERSION,
                                   previous=previous, unit_vectors=unit_vectors)  # fmt: skip
        self.resumed = self.reused = self.embedded = 0

    def _report(self, stage: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(stage, done, total)

    def run(self) -> StreamResult:
        """Embed (or reuse, or resume) and write every batch, then build BM25, the dense index
        and the manifest; the index opened over the files, ready for `save`."""
        self.resumed = self.reused = self.embedded = 0
        self.staging.open()
        total = self.n_chunks if self.n_chunks is not None else _count(self.chunks())
        n_batches = -(-total // self.batch_chunks)
        staged = self.staging.staged(n_batches)
        resumable = sum(min(self.batch_chunks, total - i * self.batch_chunks) for i in staged)
        if resumable:
            self._report("resume", resumable, total)
        work = self.staging.new_work()
        writer = IndexWriter(work, self.staging.folder / "bm25-counts", self.docs,
                             self.embedder.dimension, self.bm25_stemmer)  # fmt: skip
        try:
            if total:
                self._report("embed", 0, total)
            for number, batch in enumerate(_batched(self.chunks(), self.batch_chunks)):
                texts = writer.texts(batch)
                writer.add(batch, self._batch_vectors(number, batch, texts, total), texts)
                self._report("embed", writer.rows, total)
            if writer.rows != total:
                raise ValueError(f"the corpus gave {writer.rows} chunks, {total} were counted")
            info = writer.finish(self._notes(), dense=self.dense, corpus_root=self.corpus_root,
                                 progress=self.progress)  # fmt: skip
        finally:
            writer.close()
        manifest = writer.manifest(model=self.model, chunker=self.chunker,
                                   corpus_files=self.corpus_files,
                                   corpus_fingerprint=self.corpus_fingerprint,
                                   corpus_root=self.corpus_root, dense=info)  # fmt: skip
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        index = load_snapshot(self.index_dir, work)
        return StreamResult(index, document_changes(self.docs, self.previous), total,
                            self.reused, self.embedded, self.resumed)  # fmt: skip

    def _batch_vectors(self, number: int, batch: list[Chunk], texts: list[str],
                       total: int) -> StagedBatch:  # fmt: skip
        """The batch's vectors: staged by an interrupted run, else reused or embedded (and then
        staged, when anything was embedded)."""
        ids = [c.id for c in batch]
        digest = batch_digest(ids, texts)
        dim = self.embedder.dimension
        staged = self.staging.load(number, digest, len(batch), dim)
        if staged is not None:
            self.resumed += len(batch)
            return staged
        start = number * self.batch_chunks
        # of a batch's embedding time, about half goes to its chunk texts, half to their units
        share = 0.5 if self.unit_vectors else 1.0

        def within(stage: str, done: int, of: int) -> None:
            part = done / max(of, 1)
            part = share * part if stage == "embed" else share + (1 - share) * part
            self._report("embed", start + int(part * len(batch)), total)

        ready = self.source.vectors(batch, within if self.progress else None)
        offsets = ready.unit_offsets
        vectors = StagedBatch(ready.vectors, ready.units, np.diff(offsets), ready.reused)
        self.reused += ready.reused
        self.embedded += len(batch) - ready.reused
        if ready.reused < len(batch):
            self.staging.save(number, digest, vectors)
        return vectors

    def _notes(self) -> Iterator[tuple[str, str, int]]:
        """Each source's row of the notes table, its body read when the row is written."""
        read = self.note_bodies
        for doc in self.docs:
            yield doc.id, (read(doc) if read else doc.body), doc.body_offset

    def save(self, index: SearchIndex) -> str:
        """Move the built files into a new snapshot with `index.manifest` (as the caller
        completed it), make it live in one atomic step, and remove the staging folder."""

        def fill(folder: Path) -> None:
            for entry in sorted(self.work.iterdir()):
                if entry.name != MANIFEST:
                    os.replace(entry, folder / entry.name)
            (folder / MANIFEST).write_text(json.dumps(index.manifest, indent=2),
                                           encoding="utf-8")  # fmt: skip

        index.snapshot = write_snapshot(self.index_dir, fill)
        self.staging.remove()
        return index.snapshot


class IndexWriter:
    """The files of one index folder, written batch by batch: chunks.db, the vectors (then the
    dense index built from them), the answer-unit vectors, and BM25 (`bm25_build.py`, its term
    counts spilled to `spill` until `finish`). Only per-chunk numbers and the vocabulary are
    held. A full build (`StreamBuild`) and an incremental delta (`write_index`) both write
    their index with it."""

    def __init__(self, folder: Path, spill: Path, docs: Sequence[Document], dimension: int,
                 stemmer: str | None) -> None:  # fmt: skip
        self.folder, self.docs, self.dimension, self.stemmer = folder, docs, dimension, stemmer
        self.chunks = ChunkWriter(folder / CHUNKS_DB)
        self.vectors = MatrixWriter(folder / dense_index.VECTORS_FILE, dimension)
        self.units = MatrixWriter(folder / SENTENCES, dimension)
        self.bm25 = BM25Builder(spill, stemmer)
        self.offsets = array("q", [0])  # chunk row i owns unit rows offsets[i]:offsets[i + 1]
        self.row_docs = array("i")  # chunk row -> position of its source
        self.positions = {d.id: i for i, d in enumerate(docs)}
        self.titles = {d.id: d.title for d in docs}
        self.per_doc = Counter[str]()  # chunks per source
        self.rows = 0

    def texts(self, batch: Sequence[Chunk]) -> list[str]:
        """What is embedded, and indexed by BM25, for each chunk of `batch`."""
        return [embedding_text(c, self.titles[c.doc_id]) for c in batch]

    def add(self, batch: Sequence[Chunk], vectors: StagedBatch, texts: Sequence[str]) -> None:
        """Append the next chunks with their vectors, answer-unit vectors and texts (`texts`)."""
        self.chunks.add(batch)
        self.vectors.append(vectors.vectors)
        self.units.append(vectors.units)
        self.bm25.add(texts)
        last = self.offsets[-1]
        self.offsets.extend(last + int(n) for n in np.cumsum(vectors.unit_counts).tolist())
        self.row_docs.extend(self.positions.get(c.doc_id, -1) for c in batch)
        self.per_doc.update(c.doc_id for c in batch)
        self.rows += len(batch)

    def finish(
        self,
        notes: Iterable[tuple[str, str, int]],
        *,
        dense: dict[str, Any] | None,
        corpus_root: Path | None,
        progress: StageProgress | None = None,
        bm25_scope: tuple[Mapping[str, int], int] | None = None,
    ) -> dict[str, Any]:
        """Write the notes table, BM25 (`bm25_scope`: see `BM25Builder.finish`), the dense
        index of the configured type (`dense`) and the per-row files; the dense index's
        description for the manifest."""
        report = progress or (lambda stage, done, total: None)
        folder = self.folder
        self.chunks.finish(notes)
        self.vectors.close()
        self.units.close()
        report("bm25", 0, 1)
        self.bm25.finish(folder / "bm25", bm25_scope)
        self.bm25.cleanup()
        (folder / "doc_freq.json").write_text(json.dumps(self.bm25.doc_freq), encoding="utf-8")
        report("bm25", 1, 1)
        report("dense", 0, 1)
        info = dense_index.resolve(dense, self.rows, self.dimension)
        vectors_path = folder / dense_index.VECTORS_FILE
        faiss_index = dense_index.build(VectorFile(vectors_path), info)
        dense_index.save(faiss_index, None, info, folder)
        del faiss_index
        if dense_index.holds_vectors(info):  # the FAISS file holds them: kept once
            vectors_path.unlink()
        report("dense", 1, 1)
        np.save(folder / ROW_DOCS, np.frombuffer(self.row_docs, dtype=np.int32))
        np.save(folder / SENTENCE_OFFSETS, np.frombuffer(self.offsets, dtype=np.int64))
        sources = sources_of(self.docs, corpus_root)
        (folder / "sources.json").write_text(json.dumps(sources, ensure_ascii=False, indent=1),
                                             encoding="utf-8")  # fmt: skip
        return info

    def manifest(self, **fields: Any) -> dict[str, Any]:
        """The manifest of what was written (`fields`: `index_manifest.build_manifest`'s)."""
        return build_manifest(self.docs, self.per_doc, chunks=self.rows,
                              sentences=self.units.rows, bm25_stemmer=self.stemmer,
                              **fields)  # fmt: skip

    def close(self) -> None:
        self.chunks.close()
        self.vectors.close()
        self.units.close()
        self.bm25.close()


def write_index(
    folder: Path,
    docs: Sequence[Document],
    chunks: Sequence[Chunk],
    vectors: StagedBatch,
    *,
    model: dict[str, Any],
    chunker: dict[str, int],
    bm25_stemmer: str | None,
    dense: dict[str, Any] | None = None,
    corpus_root: Path | None = None,
    corpus_files: dict[str, str] | None = None,
    corpus_fingerprint: str = "",
    bm25_scope: tuple[Mapping[str, int], int] | None = None,
) -> dict[str, Any]:
    """Write an index of `chunks` whose vectors are ready (row i: chunk i) into the new folder
    `folder`, with `IndexWriter` as a full build does, and return its manifest (written last).
    `docs` hold their bodies (the notes table). An incremental delta is written so."""
    folder.mkdir(parents=True)
    writer = IndexWriter(folder, folder / ".bm25-counts", docs, vectors.vectors.shape[1],
                         bm25_stemmer)  # fmt: skip
    try:
        writer.add(chunks, vectors, writer.texts(chunks))
        info = writer.finish(((d.id, d.body, d.body_offset) for d in docs), dense=dense,
                             corpus_root=corpus_root, bm25_scope=bm25_scope)  # fmt: skip
    finally:
        writer.close()
    manifest = writer.manifest(model=model, chunker=chunker, corpus_files=corpus_files or {},
                               corpus_fingerprint=corpus_fingerprint, corpus_root=corpus_root,
                               dense=info)  # fmt: skip
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def _batched(chunks: Iterable[Chunk], size: int) -> Iterator[list[Chunk]]:
    it = iter(chunks)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _count(chunks: Iterable[Chunk]) -> int:
    return sum(1 for _ in chunks)
