"""RM3 pseudo-relevance feedback for the BM25 side (Lavrenko and Croft's relevance model).

The first BM25 pass's top passages are taken as relevant: each term's weight is its share of
each passage (tf / length) weighted by the passage's normalised score; the heaviest terms are
kept and mixed with the original query (`original_weight` for the query's own term shares). The
expanded query is scored as a weighted sum of single-term BM25 scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def rm3_weights(
    query_tokens: Sequence[str],
    feedback: Sequence[tuple[Sequence[str], float]],
    n_terms: int = 10,
    original_weight: float = 0.5,
) -> dict[str, float]:
    """Term -> weight of the expanded query (weights sum to 1 when there is anything to weigh).

    `feedback` holds (tokens, retrieval score) of the top passages; passages with no tokens or
    a score <= 0 are ignored. With no usable feedback the original query's term shares return.
    """
    query = Counter(query_tokens)
    total_q = sum(query.values())
    original = {t: c / total_q for t, c in query.items()} if total_q else {}
    docs = [(Counter(toks), float(s)) for toks, s in feedback if toks and s > 0]
    mass = sum(s for _, s in docs)
    if not docs or mass <= 0 or n_terms <= 0:
        return original
    model: dict[str, float] = {}
    for counts, score in docs:
        length = sum(counts.values())
        for term, c in counts.items():
            model[term] = model.get(term, 0.0) + (score / mass) * c / length
    top = sorted(model.items(), key=lambda kv: (-kv[1], kv[0]))[:n_terms]
    top_mass = sum(w for _, w in top)
    expanded: dict[str, float] = {}
    for term, w in original.items():
        expanded[term] = original_weight * w
    for term, w in top:
        expanded[term] = expanded.get(term, 0.0) + (1 - original_weight) * w / top_mass
    return expanded


def weighted_bm25_scores(bm25: object, weights: dict[str, float], n_rows: int) -> np.ndarray:
    """Sum over terms of weight * BM25 score of the term alone (bm25s index), per row."""
    scores = np.zeros(n_rows, dtype=np.float32)
    for term, weight in weights.items():
        if weight:
            scores += weight * np.asarray(bm25.get_scores([term]), dtype=np.float32)  # type: ignore[attr-defined]
    return scores
