"""The store interface: where chunks are searched (dense, lexical, hybrid) and kept.

A build writes the index snapshot (manifest, chunks, sources, notes, answer-unit vectors) as
always; the store holds what is searched. `publish` adds and removes sources for the new
snapshot without making them visible, `activate` makes them live once the snapshot is saved.
Rows are the chunks' rows in the snapshot, so fusion, filters, abstention and answer composition
above the store are the same for every store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from ..index import SearchIndex
    from ..retrieve import RetrievalParams
    from ..types import Chunk, Filters

Ranked = list[tuple[int, float]]  # (chunk row, score), best first


@runtime_checkable
class Store(Protocol):
    """Search and storage of one index's chunks."""

    kind: str  # "local" or "milvus": recorded in the manifest

    def open(self) -> None:
        """Connect now, so bad settings fail before any work (one line naming the setting)."""
        ...

    def close(self) -> None:
        """Let go of connections (and, for Milvus Lite, of its file)."""
        ...

    def dense_search(
        self, index: SearchIndex, query_vector: np.ndarray, n: int, filters: Filters | None
    ) -> Ranked:
        """The `n` rows nearest the query vector (inner product), best first."""
        ...

    def lexical_search(
        self, index: SearchIndex, query_tokens: Sequence[str], n: int, filters: Filters | None
    ) -> Ranked:
        """The `n` best BM25 rows for the (stemmed) query tokens; rows sharing no term omitted."""
        ...

    def hybrid_search(
        self,
        index: SearchIndex,
        query_vector: np.ndarray,
        query_tokens: Sequence[str],
        n: int,
        params: RetrievalParams,
        filters: Filters | None,
    ) -> Ranked | None:
        """Rows ranked by the store's own fusion, or None to have the caller fuse the dense and
        lexical lists (the assistant's fusion, `retrieve.retrieve`)."""
        ...

    def fetch_chunks(self, index: SearchIndex, rows: Sequence[int]) -> list[Chunk]:
        """The chunks at these rows."""
        ...

    def fetch_sources(self, index: SearchIndex, doc_ids: Sequence[str]) -> dict[str, Any]:
        """Metadata of these sources (unknown ids left out)."""
        ...

    def publish(
        self, index: SearchIndex, previous: SearchIndex | None, changes: dict[str, list[str]]
    ) -> dict[str, Any]:
        """Write `index` into the store, adding and removing only the changed sources against
        `previous`, without making it visible to queries; returns the description the manifest
        records (`describe`)."""
        ...

    def activate(self, index: SearchIndex) -> None:
        """Make what `publish` wrote for `index` (now saved) live, and drop what it replaced."""
        ...

    def check(self, index: SearchIndex) -> None:
        """Raise IndexStateError (with the command or setting that fixes it) when the store does
        not hold this snapshot, or holds it for another embedding model."""
        ...

    def stale_reason(self, manifest: dict[str, Any]) -> str | None:
        """Why a saved index must be published again for this store (another store), or None."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the manifest records about the store (kind, and where its data is)."""
        ...


def recorded_kind(manifest: dict[str, Any]) -> str:
    """The store an index was published to (indexes from before stores: local)."""
    return str(manifest.get("store", {}).get("kind") or "local")
