"""Incremental snapshots of a large index: a base plus a delta.

Adding or changing a few sources in a large index does not rebuild it. The new snapshot
hard-links the base's large files (FAISS, vectors, BM25, chunks.db, answer-unit vectors) and
writes a small delta beside them in `delta/`: a complete small index (its own FAISS index, bm25s
index and chunks.db) over the chunks of the added and changed sources, and `tombstones.npy`, the
base rows of changed and removed sources, which no search returns. A later addition rebuilds the
delta (its surviving chunks keep their vectors) and keeps the same base; `assistant index
--compact` merges both into a fresh full index. Rows: base rows first, then delta rows.

The delta is written by the code a full build writes with (`stream_build.write_index`). Its
BM25 scores are on the scale of the whole index: each term is scored with its idf over all live
chunks, not over the delta alone (the length normalisation stays the delta's own). docs/performance.md measures how close this is to
a full rebuild.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import dense as dense_index
from .chunk import embedding_text
from .chunk_store import RowSequence
from .dense import Vectors
from .lexical import tokenize
from .types import Chunk, Document

DELTA = "delta"  # snapshot/delta/: the small index of the delta chunks
TOMBSTONES = "tombstones.npy"  # base rows that no search returns
BASE_FILES = ("dense.faiss", "vectors.npy", "chunks.db", "sentences.npy", "sentence_offsets.npy")


class StackedChunks(RowSequence):
    """Base chunks then delta chunks (tombstoned base rows are still there, never searched)."""

    def __init__(self, base: Sequence[Chunk], delta: Sequence[Chunk]) -> None:
        self.base, self.delta, self.n_base = base, delta, len(base)

    def __len__(self) -> int:
        return self.n_base + len(self.delta)

    def _chunk(self, row: int) -> Chunk:
        return self.base[row] if row < self.n_base else self.delta[row - self.n_base]

    def __iter__(self) -> Iterator[Chunk]:
        yield from self.base
        yield from self.delta


class StackedRows(Mapping[str, int]):
    """Chunk id -> row: the delta's first, then the base's unless tombstoned."""

    def __init__(self, base: Mapping[str, int], delta: Mapping[str, int], n_base: int,
                 tombstones: np.ndarray) -> None:  # fmt: skip
        self.base, self.delta, self.n_base = base, delta, n_base
        self.dead = set(np.asarray(tombstones).tolist())

    def __getitem__(self, chunk_id: str) -> int:
        if chunk_id in self.delta:
            return self.n_base + self.delta[chunk_id]
        row = self.base[chunk_id]
        if row in self.dead:
            raise KeyError(chunk_id)
        return row

    def __len__(self) -> int:
        return self.n_base - len(self.dead) + len(self.delta)

    def __iter__(self) -> Iterator[str]:
        for chunk_id in self.base:
            if self.get(chunk_id) is not None and chunk_id not in self.delta:
                yield chunk_id
        yield from self.delta


class StackedNotes(Mapping[str, dict[str, Any]]):
    """Source id -> note body: the delta's first, then the base's, for live sources only."""

    def __init__(self, base: Mapping[str, Any], delta: Mapping[str, Any], live: Mapping[str, Any]):
        self.base, self.delta, self.live = base, delta, live

    def __getitem__(self, doc_id: str) -> dict[str, Any]:
        if doc_id not in self.live:
            raise KeyError(doc_id)
        return dict(self.delta[doc_id] if doc_id in self.delta else self.base[doc_id])

    def __len__(self) -> int:
        return len(self.live)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.live))


class MergedBM25:
    """The base's and the delta's bm25s indexes scored as one: a row per chunk, tombstones 0."""

    def __init__(self, base: Any, delta: Any, tombstones: np.ndarray) -> None:
        self.base, self.delta, self.tombstones = base, delta, tombstones

    def get_scores(self, query_tokens: list[str]) -> np.ndarray:
        base = np.asarray(self.base.get_scores(query_tokens), dtype=np.float32)
        if len(self.tombstones):
            base = base.copy()
            base[self.tombstones] = 0.0
        if self.delta is None:  # a delta of removals only
            return base
        delta = np.asarray(self.delta.get_scores(query_tokens), dtype=np.float32)
        return np.concatenate([base, delta])


class DeltaDense:
    """The base's and the delta's FAISS indexes searched as one (`dense.search` calls
    `merged_search`): base hits leave the tombstones out, delta rows come after the base's."""

    def __init__(self, base: Any, base_vectors: Vectors, base_info: dict[str, Any], delta: Any,
                 delta_vectors: Vectors, delta_info: dict[str, Any],
                 tombstones: np.ndarray) -> None:  # fmt: skip
        self.base, self.base_vectors, self.base_info = base, base_vectors, base_info
        self.delta, self.delta_vectors, self.delta_info = delta, delta_vectors, delta_info
        self.tombstones = np.ascontiguousarray(tombstones, dtype=np.int64)
        self.n_base = int(base.ntotal)
        self.ntotal = self.n_base + int(delta.ntotal)

    def merged_search(
        self, query: np.ndarray, n: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        if allowed is None:
            base = dense_index.search(self.base, self.base_vectors, self.base_info, query, n,
                                      exclude=self.tombstones)  # fmt: skip
            delta = dense_index.search(self.delta, self.delta_vectors, self.delta_info, query, n)
        else:
            allowed = np.asarray(allowed, dtype=np.int64)
            low = allowed[allowed < self.n_base]
            high = allowed[allowed >= self.n_base] - self.n_base
            base = dense_index.search(self.base, self.base_vectors, self.base_info, query, n,
                                      low, exclude=self.tombstones)  # fmt: skip
            delta = dense_index.search(self.delta, self.delta_vectors, self.delta_info, query, n,
                                       high)  # fmt: skip
        hits = base + [(r + self.n_base, s) for r, s in delta]
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:n]


def token_doc_freq(chunks: Sequence[Chunk], titles: Mapping[str, str], stemmer: str | None
                   ) -> Counter[str]:  # fmt: skip
    """How many of `chunks` each BM25 token occurs in (as the index counts them)."""
    out: Counter[str] = Counter()
    for c in chunks:
        out.update(set(tokenize(embedding_text(c, titles.get(c.doc_id, "")), stemmer)))
    return out


def link_base(base_folder: Path, folder: Path) -> None:
    """Hard-link the base's immutable files into a new snapshot folder (copy across file
    systems): nothing large is rewritten."""
    names = [n for n in BASE_FILES if (base_folder / n).is_file()]
    names += [f"bm25/{p.name}" for p in sorted((base_folder / "bm25").iterdir())]
    (folder / "bm25").mkdir()
    for name in names:
        try:
            os.link(base_folder / name, folder / name)
        except OSError:
            shutil.copy2(base_folder / name, folder / name)


def drift(manifest: dict[str, Any]) -> float:
    """The share of an incremental index that is delta: (delta chunks + tombstones) / base."""
    info = manifest.get("delta")
    if not info:
        return 0.0
    return (info["chunks"] + info["tombstones"]) / max(1, info["base_chunks"])


def touched_docs(docs: Sequence[Document], changes: dict[str, list[str]]) -> list[Document]:
    """The added and changed documents."""
    wanted = set(changes["added"]) | set(changes["changed"])
    return [d for d in docs if d.id in wanted]
