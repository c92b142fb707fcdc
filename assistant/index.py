"""The search index: what it holds, saving one held in memory as a snapshot, loading a snapshot
memory-mapped. Dense search is FAISS (type chosen by size, `dense.py`), lexical search BM25
(bm25s); chunk texts and notes live in an on-disk store read by row (`chunk_store.py`). Indexes
are built by `stream_build.py` (a full build, and the delta of an incremental one)."""

from __future__ import annotations

import bisect
import functools
import json
import math
import re
import sqlite3
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import dense as dense_index
from .chunk_store import (
    CHUNKS_DB,
    ChunkRows,
    ChunkStore,
    NoteStore,
    RowStore,
    VectorFile,
    write_store,
)
from .chunk_vectors import index_backend
from .currency import is_after_review
from .dense import Vectors
from .errors import IndexStateError
from .index_checks import (
    FORMAT_VERSION,
    check_backend,
    check_dimension,
    check_format,
    check_model,
    stale_reason,
)
from .references import source_labels, source_names
from .snapshots import (
    CURRENT,
    MANIFEST,
    SNAPSHOTS,
    LiveManifest,
    read_manifest,
    snapshot_dir,
    write_snapshot,
)
from .source import CITATION_FIELDS
from .types import Chunk

__all__ = [
    "CURRENT",
    "FORMAT_VERSION",
    "MANIFEST",
    "SNAPSHOTS",
    "check_backend",
    "check_dimension",
    "check_model",
    "index_backend",
    "read_manifest",
    "snapshot_dir",
    "stale_reason",
]

SENTENCES = "sentences.npy"  # vectors of the chunks' answer units
SENTENCE_OFFSETS = "sentence_offsets.npy"  # chunk row i owns sentence rows [i] .. [i + 1]
ROW_DOCS = "row_docs.npy"  # chunk row -> position of its source in sources.json


@dataclass
class SearchIndex:
    """An index: chunks, their sources, vectors and the two search structures.

    Built in memory, `chunks` is a list; loaded from a snapshot, it is a sequence read row by row
    from disk and the vectors, dense index and BM25 are memory-mapped.
    """

    manifest: dict[str, Any]
    chunks: Sequence[Chunk]
    sources: dict[str, dict[str, Any]]
    vectors: Vectors  # row i: chunk i's vector (in memory, memory-mapped or read by row)
    bm25: Any
    doc_freq: dict[str, int]
    dense: Any = None
    chunk_rows: Mapping[str, int] = field(default_factory=dict)
    # note body and its offset in the file, per source id: what /v1/sources/{id} serves
    notes: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    # vectors of the chunks' answer units; chunk row i owns rows unit_offsets[i]:[i + 1]
    unit_vectors: Vectors | None = None
    unit_offsets: np.ndarray | None = None
    snapshot: str = ""  # name of the snapshot folder it was saved as / loaded from
    row_docs: np.ndarray | None = None  # chunk row -> position of its source in `doc_ids`

    def __post_init__(self) -> None:
        import faiss

        faiss.omp_set_num_threads(1)
        if self.dense is None:
            self.dense = faiss.IndexFlatIP(self.vectors.shape[1])
            if len(self.vectors):
                self.dense.add(self.vectors)
        if not self.chunk_rows:
            self.chunk_rows = {c.id: i for i, c in enumerate(self.chunks)}
        self.doc_ids = list(self.sources)
        if self.row_docs is None:
            pos = self._doc_pos
            self.row_docs = np.array([pos.get(c.doc_id, -1) for c in self.chunks], dtype=np.int32)
        self.n_docs_lexical = max(1, len(self.chunks))

    @property
    def dense_info(self) -> dict[str, Any]:
        """The dense index's type and parameters as recorded in the manifest."""
        return dict(self.manifest.get("dense") or {"type": "flat"})

    @functools.cached_property
    def _terms(self) -> list[str]:
        return sorted(self.doc_freq)

    def has_term(self, stem: str) -> bool:
        """Whether a stemmed token, or a longer term it is a prefix of, occurs in the corpus.

        The prefix match lets 'jejunal' (stem 'jejun') find 'jejunum' in the corpus.
        """
        if stem in self.doc_freq:
            return True
        if len(stem) < 4:
            return False
        i = bisect.bisect_left(self._terms, stem)
        return i < len(self._terms) and self._terms[i].startswith(stem)

    @functools.cached_property
    def labels(self) -> dict[str, str]:
        """Source id -> short citation label ("Le Treut 2013")."""
        return source_labels(self.sources)

    @functools.cached_property
    def _by_name(self) -> dict[str, set[str]]:
        """First-author and trial name -> ids of the sources it names (looked up per word, so a
        question costs the same with 100 sources or 50,000)."""
        out: dict[str, set[str]] = {}
        for doc_id, meta in self.sources.items():
            for name in source_names(meta):
                out.setdefault(name, set()).add(doc_id)
        return out

    def named_sources(self, question: str, common: Collection[str] | None = None) -> set[str]:
        """Ids of the sources whose first author or trial name the question mentions. A name
        that is also an everyday word (in `common`: "Hope", "CLARINET", an author "Long") counts
        only when written with a capital and not as the question's first word."""
        out: set[str] = set()
        for i, match in enumerate(re.finditer(r"\w+(?:-\w+)*", question)):
            word = match.group(0)
            docs = self._by_name.get(word.lower())
            if not docs:
                continue
            if common is not None and word.lower() in common and (i == 0 or word.islower()):
                continue
            out |= docs
        return out

    @functools.cached_property
    def _doc_pos(self) -> dict[str, int]:
        return {doc_id: i for i, doc_id in enumerate(self.doc_ids)}

    @functools.cached_property
    def _rows_by_doc(self) -> tuple[np.ndarray, np.ndarray]:
        """Chunk rows grouped by source (in `doc_ids` order) and where each source's rows start;
        a tombstoned row (source -1) belongs to none."""
        assert self.row_docs is not None
        row_docs = np.asarray(self.row_docs)
        order = np.argsort(row_docs, kind="stable")
        return order, np.searchsorted(row_docs[order], np.arange(len(self.doc_ids) + 1))

    def rows_of(self, doc_ids: Iterable[str]) -> np.ndarray:
        """The chunk rows of these sources, in row order (a question's cost is their chunks,
        not the index's size; the grouping is made once)."""
        order, starts = self._rows_by_doc
        positions = [self._doc_pos[d] for d in doc_ids if d in self._doc_pos]
        parts = [order[starts[p] : starts[p + 1]] for p in positions]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def doc_of_row(self, row: int) -> str:
        assert self.row_docs is not None
        return self.doc_ids[int(self.row_docs[row])]

    def units_of(self, row: int) -> np.ndarray | None:
        """The answer-unit vectors of chunk row `row` (None for an index without them)."""
        if self.unit_vectors is None or self.unit_offsets is None:
            return None
        return self.unit_vectors[int(self.unit_offsets[row]) : int(self.unit_offsets[row + 1])]

    def unit_vectors_of(self, chunk_id: str) -> np.ndarray | None:
        """The answer-unit vectors of a chunk by id (for the answer stage)."""
        row = self.chunk_rows.get(chunk_id)
        return None if row is None else self.units_of(row)

    def idf(self, token: str) -> float:
        """Inverse document frequency of a (stemmed) token over chunks."""
        df = self.doc_freq.get(token, 0)
        return math.log(1 + (self.n_docs_lexical - df + 0.5) / (df + 0.5))

    def source_of(self, chunk: Chunk) -> dict[str, Any]:
        meta = self.sources[chunk.doc_id]
        out = {k: meta.get(k) for k in CITATION_FIELDS}
        out["after_review"] = is_after_review(meta.get("year"))
        return out


@dataclass
class BuildReport:
    """What a build did."""

    documents: int
    chunks: int
    seconds: float
    added: list[str]
    changed: list[str]
    removed: list[str]
    reused_chunks: int
    embedded_chunks: int
    index_dir: Path
    resumed_chunks: int = 0  # vectors taken from the staged batches of an interrupted build

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["index_dir"] = str(self.index_dir)
        return out


def save_index(index: SearchIndex, index_dir: Path) -> None:
    """Write the index as a new snapshot folder, then make it live in one atomic step
    (`snapshots.write_snapshot`): a reader sees the old snapshot or the new one, never a mix,
    and a kill at any point leaves a complete index."""
    index.snapshot = write_snapshot(index_dir, lambda folder: _write_files(index, folder))


def _write_files(index: SearchIndex, folder: Path) -> None:
    """Every file of one snapshot, the manifest last."""
    info = index.manifest.get("dense") or {"type": "flat"}
    dense_index.save(index.dense, index.vectors, info, folder)
    if index.bm25 is not None:
        index.bm25.save(str(folder / "bm25"), show_progress=False)
    write_store(folder / CHUNKS_DB, index.chunks, index.notes)
    (folder / "sources.json").write_text(
        json.dumps(index.sources, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    (folder / "doc_freq.json").write_text(json.dumps(index.doc_freq), encoding="utf-8")
    assert index.row_docs is not None
    np.save(folder / ROW_DOCS, np.asarray(index.row_docs, dtype=np.int32))
    if index.unit_vectors is not None and index.unit_offsets is not None:
        np.save(folder / SENTENCES, np.asarray(index.unit_vectors))
        np.save(folder / SENTENCE_OFFSETS, np.asarray(index.unit_offsets))
    # the manifest goes last: a folder without one is never taken for an index
    (folder / MANIFEST).write_text(json.dumps(index.manifest, indent=2), encoding="utf-8")


def load_index(index_dir: Path, live: LiveManifest | None = None) -> SearchIndex:
    """Open the live snapshot of an index written by `save_index`; `live` is that snapshot with
    its manifest when already read (`snapshots.read_live`), so the manifest is not read again.

    A save that switches `current` while this reads is noticed and the new snapshot read.
    """
    for _ in range(3):
        folder = live.folder if live else snapshot_dir(index_dir)
        try:
            return load_snapshot(index_dir, folder, live.manifest if live else None)
        except IndexStateError:
            if folder is None or snapshot_dir(index_dir) == folder:
                raise
        live = None  # switched meanwhile: read the new one from disk
    return load_snapshot(index_dir, snapshot_dir(index_dir))


def load_snapshot(
    index_dir: Path, folder: Path | None, manifest: dict[str, Any] | None = None
) -> SearchIndex:
    """The index in one snapshot `folder` of `index_dir` (named in messages), memory-mapped:
    nothing a query does not need is read. `manifest` is the folder's, when already read."""
    if manifest is None and folder is not None:
        manifest = read_manifest(folder)
    if folder is None or manifest is None:
        raise IndexStateError(
            f"no index in {index_dir}", f"build it: assistant index --index {index_dir}"
        )
    check_format(manifest, index_dir)
    rebuild = f"rebuild it: assistant index --force --index {index_dir}"
    name = folder.name if folder != index_dir else ""
    try:
        if manifest.get("delta"):  # a base plus a delta (`incremental.py`)
            from .incremental import open_incremental

            return open_incremental(index_dir, folder, manifest, open_parts, name)
        dense, vectors, store, bm25, unit_vectors, unit_offsets = open_parts(
            folder, manifest.get("dense") or {"type": "flat"}, index_dir
        )
        sources = json.loads((folder / "sources.json").read_text(encoding="utf-8"))
        doc_freq = json.loads((folder / "doc_freq.json").read_text(encoding="utf-8"))
        row_docs = np.load(folder / ROW_DOCS, mmap_mode="r")
    except (OSError, ValueError, RuntimeError, TypeError, sqlite3.Error) as exc:
        raise IndexStateError(f"index in {index_dir} is incomplete or damaged: {exc}",
                              rebuild) from exc  # fmt: skip
    if len(row_docs) != store.n_chunks:
        raise IndexStateError(f"index in {index_dir} is inconsistent ({store.n_chunks} chunks, "
                              f"{len(row_docs)} rows)", rebuild)  # fmt: skip
    return SearchIndex(manifest, ChunkStore(store), sources, vectors, bm25, doc_freq, dense=dense,
                       chunk_rows=ChunkRows(store), notes=NoteStore(store),
                       unit_vectors=unit_vectors, unit_offsets=unit_offsets, snapshot=name,
                       row_docs=row_docs)  # fmt: skip


def open_parts(folder: Path, info: dict[str, Any], index_dir: Path) -> tuple[Any, ...]:
    """The memory-mapped parts of one index in `folder`: FAISS index, vectors, chunk store,
    BM25, answer-unit vectors and offsets (checked to hold the same number of chunks)."""
    import bm25s

    dense, vectors = dense_index.open_dense(folder, info)
    store = RowStore(folder / CHUNKS_DB)
    bm25 = None
    if store.n_chunks or (folder / "bm25").is_dir():
        bm25 = bm25s.BM25.load(str(folder / "bm25"), mmap=True, show_progress=False, verbosity=0)
    unit_vectors = VectorFile(folder / SENTENCES)
    unit_offsets = np.load(folder / SENTENCE_OFFSETS, mmap_mode="r")
    if not (store.n_chunks == dense.ntotal == len(vectors)):
        raise IndexStateError(
            f"index in {index_dir} is inconsistent ({store.n_chunks} chunks, {dense.ntotal} "
            f"vectors)",
            f"rebuild it: assistant index --force --index {index_dir}",
        )
    return dense, vectors, store, bm25, unit_vectors, unit_offsets
