"""Re-order candidates: the sources a question names come up, and no source fills more than
its share of the top ranks."""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from .index import SearchIndex
from .retrieve import Ranked, reciprocal_rank_fusion
from .types import Filters


def named_first(
    index: SearchIndex,
    ranked: Ranked,
    named: Collection[str],
    query_vector: np.ndarray,
    rrf_k: float,
    filters: Filters | None = None,
) -> Ranked:
    """`ranked` fused (reciprocal rank) with the chunks of the sources the question names,
    ordered by their cosine to the question: "What did PROMID find?" is short, and its words
    other than the trial's name pull up guidelines that cite it, so the trial's own passages
    would otherwise rank below them (or not at all). A source `filters` rules out stays out."""
    rows = index.rows_of(
        doc for doc in named if filters is None or filters.allows(index.sources[doc])
    )
    if not len(rows):
        return ranked
    sims = index.vectors[rows] @ query_vector.astype(np.float32)
    order = np.argsort(-sims, kind="stable")
    own: Ranked = [(int(rows[i]), float(sims[i])) for i in order]
    return reciprocal_rank_fusion([ranked, own], [1.0, 1.0], rrf_k)


def diversify(
    ranked: Ranked,
    doc_of_row: Callable[[int], str],
    max_per_source: int,
    exempt: Collection[str] = (),
    keep_above: float = 1.0,
) -> Ranked:
    """The same rows, with no source holding more than `max_per_source` places before every
    other candidate has had its place: a source's further rows move down, in their order.

    Sources in `exempt` (named by the question) keep all their places, and so does a row
    scoring at least `keep_above` times the best score (1.0: only ties with the best).
    """
    if max_per_source <= 0 or not ranked:
        return list(ranked)
    top = ranked[0][1]
    kept: Ranked = []
    deferred: Ranked = []
    counts: dict[str, int] = {}
    for row, score in ranked:
        doc = doc_of_row(row)
        strong = top > 0 and score >= keep_above * top
        if doc in exempt or strong or counts.get(doc, 0) < max_per_source:
            counts[doc] = counts.get(doc, 0) + 1
            kept.append((row, score))
        else:
            deferred.append((row, score))
    return kept + deferred
