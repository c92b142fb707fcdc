"""The default store: FAISS (exact inner product) and bm25s, in the index snapshot's files.

An adapter over the public search functions of `retrieve`: everything lives in the snapshot,
so publishing and activating are the snapshot's own save and switch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import Ranked, recorded_kind

if TYPE_CHECKING:
    from ..index import SearchIndex
    from ..types import Chunk, Filters


class LocalStore:
    """Search over the snapshot in memory (`retrieve.dense_search`, `retrieve.bm25_search`)."""

    kind = "local"

    def __init__(self) -> None:
        self._allowed_lock = threading.Lock()
        # the rows the last filters allowed: hybrid search asks twice for the same filters
        self._allowed: tuple[int, str, np.ndarray | None] | None = None

    def open(self) -> None:
        return None  # nothing to connect to

    def close(self) -> None:
        return None

    def allowed(self, index: SearchIndex, filters: Filters | None) -> np.ndarray | None:
        from ..retrieve import allowed_rows

        if filters is None or filters.is_empty():
            return None
        key = (id(index), repr(filters))
        with self._allowed_lock:
            cached = self._allowed
        if cached is not None and cached[:2] == key:
            return cached[2]
        rows = allowed_rows(index, filters)
        with self._allowed_lock:
            self._allowed = (*key, rows)
        return rows

    def dense_search(
        self, index: SearchIndex, query_vector: np.ndarray, n: int, filters: Filters | None
    ) -> Ranked:
        from ..retrieve import dense_search

        return dense_search(index, query_vector, n, self.allowed(index, filters))

    def lexical_search(
        self, index: SearchIndex, query_tokens: Sequence[str], n: int, filters: Filters | None
    ) -> Ranked:
        from ..retrieve import bm25_search

        return bm25_search(index, query_tokens, n, self.allowed(index, filters))

    def hybrid_search(self, *args: Any, **kwargs: Any) -> Ranked | None:
        return None  # the caller fuses the two lists

    def fetch_chunks(self, index: SearchIndex, rows: Sequence[int]) -> list[Chunk]:
        return [index.chunks[int(r)] for r in rows]

    def fetch_sources(self, index: SearchIndex, doc_ids: Sequence[str]) -> dict[str, Any]:
        return {d: index.sources[d] for d in doc_ids if d in index.sources}

    def publish(
        self, index: SearchIndex, previous: SearchIndex | None, changes: dict[str, list[str]]
    ) -> dict[str, Any]:
        return self.describe()

    def activate(self, index: SearchIndex) -> None:
        return None  # the snapshot switch (index.save_index) is the activation

    def check(self, index: SearchIndex) -> None:
        return None  # the snapshot itself was checked when it was loaded

    def stale_reason(self, manifest: dict[str, Any]) -> str | None:
        return None  # every snapshot carries its FAISS and BM25 files

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}


__all__ = ["LocalStore", "recorded_kind"]
