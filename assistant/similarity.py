"""Candidates become passages, each with its cosine similarity to the question.

The fused rank decides the order; the similarity is an absolute relevance signal on one scale
for every mode, which the answer stage uses to decide whether to abstain.
"""

from __future__ import annotations

import numpy as np

from .index import SearchIndex
from .retrieve import Ranked
from .types import Passage


def with_similarity(
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
