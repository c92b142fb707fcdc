"""Query-adaptive fusion of the dense and BM25 lists.

Fixed-weight fusion trusts BM25 as much on a question whose topic word is in hundreds of
passages ("What are the symptoms of ...?") as on one that names a rare drug. Here the dense
list's weight is set per query from features of the two ranked lists and the query
(`query_features`) by a model of the form low + (high - low) * sigmoid(w . features); the lists
are then fused by the weighted sum of min-max normalised scores (`retrieve.score_fusion`).

`bench/tune_fusion.py` compares, on the training queries of the shared BEIR sets (SciFact,
MedQuAD cancer), fixed weights, models fitted over all features (logistic regression, direct
fit) and hand-set rules. The default is the rule below: the fitted models won a little on the
benchmarks but put many of our own gold questions on the dense side and lost there (see
docs/evaluation.md, "Fusion on public benchmarks").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Ranked = list[tuple[int, float]]  # (row, score), best first

FEATURE_NAMES = (
    "overlap10",  # share of the top-10 rows the two lists have in common
    "dense_top",  # best dense (cosine) score
    "dense_gap",  # best dense score minus the mean of the top 10
    "bm25_gap",  # (best BM25 score - mean of the top 10) / best
    "bm25_cover",  # best BM25 score / the summed idf of the query's terms
    "query_terms",  # number of query terms (after stop words)
    "idf_mean",  # mean idf of the query's terms / log(1 + number of passages)
    "idf_max",  # largest idf of a query term / log(1 + number of passages)
)
TOP = 10


def overlap_at(a: Ranked, b: Ranked, k: int = TOP) -> float:
    """|top-k rows of a ∩ top-k rows of b| / k (0 when either list is empty)."""
    if not a or not b or k <= 0:
        return 0.0
    return len({r for r, _ in a[:k]} & {r for r, _ in b[:k]}) / k


def top_gap(ranked: Ranked, k: int = TOP, relative: bool = False) -> float:
    """How far the best score stands above the mean of the top k (0 for an empty list).

    `relative` divides by the best score (for unbounded scores such as BM25's).
    """
    if not ranked:
        return 0.0
    scores = [s for _, s in ranked[:k]]
    gap = scores[0] - sum(scores) / len(scores)
    if relative:
        return gap / scores[0] if scores[0] > 0 else 0.0
    return gap


def query_features(
    dense: Ranked,
    lexical: Ranked,
    query_tokens: Sequence[str],
    idf: Callable[[str], float],
    n_passages: int,
) -> dict[str, float]:
    """The features of FEATURE_NAMES for one query, from its two ranked lists (best first)."""
    idfs = [idf(t) for t in query_tokens]
    scale = math.log(1 + max(1, n_passages))
    idf_sum = sum(idfs)
    return {
        "overlap10": overlap_at(dense, lexical),
        "dense_top": dense[0][1] if dense else 0.0,
        "dense_gap": top_gap(dense),
        "bm25_gap": top_gap(lexical, relative=True),
        "bm25_cover": lexical[0][1] / idf_sum if lexical and idf_sum > 0 else 0.0,
        "query_terms": float(len(query_tokens)),
        "idf_mean": (idf_sum / len(idfs)) / scale if idfs else 0.0,
        "idf_max": max(idfs) / scale if idfs else 0.0,
    }


@dataclass(frozen=True)
class AdaptiveModel:
    """Dense weight = low + (high - low) * sigmoid(intercept + sum(coef * feature)).

    The BM25 weight is 1 - dense weight. Features missing from `coefs` count 0.
    """

    intercept: float = 0.0
    coefs: dict[str, float] = field(default_factory=dict)
    low: float = 0.5
    high: float = 0.5

    def dense_weight(self, features: dict[str, float]) -> float:
        z = self.intercept + sum(c * features.get(name, 0.0) for name, c in self.coefs.items())
        p = 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0
        return self.low + (self.high - self.low) * p


# Chosen by `python bench/tune_fusion.py` on qrels/train.tsv of SciFact and MedQuAD cancer: a
# step (a steep sigmoid) on BM25's flatness. When the best BM25 score stands less than 15 % above
# the mean of the top 10, many passages share the query's terms about equally (a common topic
# word) and BM25 cannot tell them apart: the dense list gets weight 0.8, otherwise 0.4.
DEFAULT_MODEL = AdaptiveModel(intercept=30.0, coefs={"bm25_gap": -200.0}, low=0.4, high=0.8)


def adaptive_fusion(
    dense: Ranked,
    lexical: Ranked,
    query_tokens: Sequence[str],
    idf: Callable[[str], float],
    n_passages: int,
    model: AdaptiveModel = DEFAULT_MODEL,
) -> Ranked:
    """Score fusion of the two lists with the dense weight the model gives this query."""
    from .retrieve import score_fusion

    weight = model.dense_weight(query_features(dense, lexical, query_tokens, idf, n_passages))
    return score_fusion([dense, lexical], [weight, 1.0 - weight])
