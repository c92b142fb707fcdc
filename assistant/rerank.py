"""Order and annotate candidates: attach each one's cosine similarity to the question.

The fused rank decides the order; the similarity is an absolute relevance signal on one scale
for every mode, which the answer stage uses to decide whether to abstain.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from .index import SearchIndex
from .retrieve import Ranked
from .types import Passage


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


def rerank(
    index: SearchIndex, ranked: Ranked, query_vector: np.ndarray, offset: int = 0
) -> list[Passage]:
    """Passages for ranked rows, numbered from `offset + 1`, with their cosine similarity."""
    if not ranked:
        return []
    rows = np.array([row for row, _ in ranked], dtype=np.int64)
    sims = index.vectors[rows] @ query_vector.astype(np.float32)
    passages = []
    for i, ((row, score), sim) in enumerate(zip(ranked, sims, strict=True)):
        chunk = index.chunks[row]
        passages.append(
            Passage(
                rank=offset + i + 1,
                score=score,
                chunk=chunk,
                source=index.source_of(chunk),
                similarity=float(sim),
            )
        )
    return passages
