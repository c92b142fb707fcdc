"""Find candidate chunks: dense (FAISS), lexical (BM25), or both fused by reciprocal rank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from . import dense as dense_index
from .index import SearchIndex
from .types import Filters

if TYPE_CHECKING:
    from .settings import Settings
    from .stores import Store

Ranked = list[tuple[int, float]]  # (chunk row, score), best first


def allowed_rows(index: SearchIndex, filters: Filters | None) -> np.ndarray | None:
    """Rows of chunks whose source passes the filters; None when nothing is filtered."""
    if filters is None or filters.is_empty():
        return None
    ok = [i for i, doc_id in enumerate(index.doc_ids) if filters.allows(index.sources[doc_id])]
    assert index.row_docs is not None
    return np.flatnonzero(np.isin(index.row_docs, ok)).astype(np.int64)


def dense_search(
    index: SearchIndex, query_vector: np.ndarray, n: int, allowed: np.ndarray | None = None
) -> Ranked:
    """Inner-product search over normalised vectors: exact for a flat index, approximate for
    HNSW and IVF (see `dense.search`)."""
    return dense_index.search(
        index.dense, index.vectors, index.dense_info, query_vector, n, allowed
    )


def bm25_search(
    index: SearchIndex, query_tokens: Sequence[str], n: int, allowed: np.ndarray | None = None
) -> Ranked:
    """BM25 over chunk texts; only chunks sharing at least one term are returned."""
    if not query_tokens or not index.chunks:
        return []
    scores = np.asarray(index.bm25.get_scores(list(query_tokens)), dtype=np.float32)
    hits = np.flatnonzero(scores > 0)  # only these are ranked: cheap at a million chunks
    if allowed is not None:
        hits = hits[np.isin(hits, allowed)]
    n = min(n, len(hits))
    if n <= 0:
        return []
    top = hits[np.argpartition(-scores[hits], n - 1)[:n]] if n < len(hits) else hits
    top = top[np.lexsort((top, -scores[top]))]  # best first, ties by row
    return [(int(r), float(scores[r])) for r in top]


def reciprocal_rank_fusion(
    lists: Sequence[Ranked], weights: Sequence[float], k: float = 60.0
) -> Ranked:
    """Sum of weight / (k + rank) over the lists each row appears in (ranks from 1)."""
    fused: dict[int, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        for rank, (row, _) in enumerate(ranked, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def score_fusion(lists: Sequence[Ranked], weights: Sequence[float]) -> Ranked:
    """Weighted sum of each list's min-max normalised scores (a row missing from a list adds 0).

    Unlike RRF it keeps how far apart the scores are, so a clear winner in one list is not
    flattened to a rank.
    """
    fused: dict[int, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        if not ranked:
            continue
        scores = [score for _, score in ranked]
        low, high = min(scores), max(scores)
        span = high - low
        for row, score in ranked:
            norm = (score - low) / span if span > 0 else 1.0
            fused[row] = fused.get(row, 0.0) + weight * norm
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


@dataclass(frozen=True)
class RetrievalParams:
    """How a hybrid search is run and fused: one object for the assistant and the BEIR runner."""

    candidates: int = 50  # rows each list contributes before fusion
    fusion: str = "score"  # "adaptive", "score" or "rrf"
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    rrf_k: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings, **changes: Any) -> RetrievalParams:
        """The parameters the settings give, with `changes` applied."""
        params = cls(candidates=settings.candidates, fusion=settings.fusion,
                     dense_weight=settings.dense_weight, bm25_weight=settings.bm25_weight,
                     rrf_k=settings.rrf_k)  # fmt: skip
        return replace(params, **changes) if changes else params


def retrieve(
    index: SearchIndex,
    *,
    mode: str,
    query_vector: np.ndarray | None,
    query_tokens: Sequence[str],
    n: int,
    params: RetrievalParams = RetrievalParams(),
    filters: Filters | None = None,
    store: Store | None = None,
) -> Ranked:
    """The best `n` chunk rows for a query in the given mode, searched in `store` (default:
    the local FAISS + bm25s files of the snapshot)."""
    if store is not None and store.kind != "local":
        return _retrieve_in(store, index, mode, query_vector, query_tokens, n, params, filters)
    allowed = allowed_rows(index, filters)
    if mode == "dense":
        assert query_vector is not None
        return dense_search(index, query_vector, n, allowed)
    if mode == "bm25":
        return bm25_search(index, query_tokens, n, allowed)
    assert query_vector is not None
    depth = max(params.candidates, n)
    dense = dense_search(index, query_vector, depth, allowed)
    lexical = bm25_search(index, query_tokens, depth, allowed)
    return _fuse(index, dense, lexical, query_tokens, n, params)


def _fuse(
    index: SearchIndex,
    dense: Ranked,
    lexical: Ranked,
    query_tokens: Sequence[str],
    n: int,
    params: RetrievalParams,
) -> Ranked:
    weights = [params.dense_weight, params.bm25_weight]
    if params.fusion == "score":
        return score_fusion([dense, lexical], weights)[:n]
    if params.fusion == "adaptive":
        from .fusion import adaptive_fusion

        n_docs = max(1, len(index.chunks))
        return adaptive_fusion(dense, lexical, query_tokens, index.idf, n_docs)[:n]
    return reciprocal_rank_fusion([dense, lexical], weights, params.rrf_k)[:n]


def _retrieve_in(
    store: Store,
    index: SearchIndex,
    mode: str,
    query_vector: np.ndarray | None,
    query_tokens: Sequence[str],
    n: int,
    params: RetrievalParams,
    filters: Filters | None,
) -> Ranked:
    """`retrieve` against another store: its search, the same fusion (unless it fuses itself)."""
    if mode == "dense":
        assert query_vector is not None
        return store.dense_search(index, query_vector, n, filters)
    if mode == "bm25":
        return store.lexical_search(index, query_tokens, n, filters)
    assert query_vector is not None
    depth = max(params.candidates, n)
    fused = store.hybrid_search(index, query_vector, query_tokens, n, params, filters)
    if fused is not None:
        return fused[:n]
    dense = store.dense_search(index, query_vector, depth, filters)
    lexical = store.lexical_search(index, query_tokens, depth, filters)
    return _fuse(index, dense, lexical, query_tokens, n, params)
