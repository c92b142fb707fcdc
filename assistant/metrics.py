"""Evaluation measures: ranking metrics via ir_measures, answer recall by regex, abstention.

Ranking metrics (nDCG, MRR, recall) are computed by `ir_measures` (pytrec_eval underneath), not
by formulas of ours; answer recall@k (the regex match used in dense-passage-retrieval papers)
and the abstention counts are simple enough to be ours and are checked on hand-computed sets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any

import numpy as np

from .manifest import library_versions

# our metric name -> ir_measures measure name
RANKING_MEASURES: dict[str, str] = {
    "ndcg@10": "nDCG@10",
    "mrr@10": "RR@10",
    "recall@5": "R@5",
    "recall@10": "R@10",
    "recall@100": "R@100",
}

Qrels = Mapping[str, Mapping[str, int]]  # query id -> {doc id: relevance}
Run = Mapping[str, Sequence[str]]  # query id -> doc ids, best first


def ranking_metrics(
    qrels: Qrels, run: Run, names: Sequence[str] = ("ndcg@10", "mrr@10", "recall@100")
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query values of ranking metrics over every query in `qrels`.

    The run gives each query's documents in rank order; scores passed to ir_measures are
    derived from the rank, so ties cannot reorder them. A query of `qrels` missing from the
    run, or without a relevant document retrieved, scores 0.
    """
    import ir_measures

    unknown = [n for n in names if n not in RANKING_MEASURES]
    if unknown:
        raise ValueError(f"unknown ranking metric(s) {unknown}; known: {sorted(RANKING_MEASURES)}")
    queries = [q for q, rel in qrels.items() if any(v > 0 for v in rel.values())]
    per_query: dict[str, dict[str, float]] = {q: {n: 0.0 for n in names} for q in queries}
    if not queries:
        return {n: 0.0 for n in names}, per_query
    measures = {ir_measures.parse_measure(RANKING_MEASURES[n]): n for n in names}
    qrel_rows = [ir_measures.Qrel(q, d, int(r)) for q in queries for d, r in qrels[q].items()]
    run_rows: list[ir_measures.ScoredDoc] = []
    for q in queries:
        docs = _dedupe(run.get(q, ()))
        run_rows.extend(
            ir_measures.ScoredDoc(q, d, float(len(docs) - i)) for i, d in enumerate(docs)
        )
    for metric in ir_measures.iter_calc(list(measures), qrel_rows, run_rows):
        per_query[metric.query_id][measures[metric.measure]] = float(metric.value)
    means = {n: float(np.mean([per_query[q][n] for q in queries])) for n in names}
    return means, per_query


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def compile_answers(patterns: Sequence[str]) -> list[re.Pattern[str]]:
    """Case-insensitive regular expressions (raises re.error for a bad one)."""
    return [re.compile(p, re.IGNORECASE) for p in patterns]


def first_answer_rank(patterns: Sequence[re.Pattern[str]], texts: Sequence[str]) -> int | None:
    """1-based rank of the first text any pattern matches, or None."""
    for rank, text in enumerate(texts, start=1):
        if any(p.search(text) for p in patterns):
            return rank
    return None


def first_source_rank(sources: Iterable[str], ranked_docs: Sequence[str]) -> int | None:
    """1-based rank (among distinct documents) of the first relevant one, or None."""
    wanted = set(sources)
    for rank, doc in enumerate(_dedupe(ranked_docs), start=1):
        if doc in wanted:
            return rank
    return None


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of questions whose first hit is within the top k (None: never hit)."""
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def abstention_metrics(answerable: Sequence[bool], abstained: Sequence[bool]) -> dict[str, Any]:
    """abstain_precision (abstentions that were right), abstain_recall (unanswerable questions
    abstained on), false_abstain_rate (answerable questions abstained on). None when undefined."""
    pairs = list(zip(answerable, abstained, strict=True))
    n_abstained = sum(1 for _, a in pairs if a)
    n_unanswerable = sum(1 for ans, _ in pairs if not ans)
    n_answerable = len(pairs) - n_unanswerable
    correct = sum(1 for ans, a in pairs if a and not ans)
    false = sum(1 for ans, a in pairs if a and ans)
    return {
        "abstain_precision": correct / n_abstained if n_abstained else None,
        "abstain_recall": correct / n_unanswerable if n_unanswerable else None,
        "false_abstain_rate": false / n_answerable if n_answerable else None,
    }


def latency_percentiles(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 of latencies in milliseconds (linear interpolation)."""
    if not latencies_ms:
        return {"latency_ms_p50": None, "latency_ms_p95": None}
    arr = np.asarray(latencies_ms, dtype=float)
    return {
        "latency_ms_p50": round(float(np.percentile(arr, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(arr, 95)), 2),
    }


def threshold_sweep(
    similarity: Sequence[float],
    answerable: Sequence[bool],
    correct: Sequence[bool],
    thresholds: Sequence[float] | None = None,
) -> list[dict[str, float | None]]:
    """Coverage against accuracy as the abstention threshold moves.

    `similarity` is each question's best passage similarity; a question is answered when it is
    at least the threshold. `correct` says whether an answered answerable question found its
    answer. For each threshold: coverage (share answered), accuracy (share of answered ones
    that are answerable and correct), the three abstention measures, and balanced accuracy
    (mean of answering answerable questions and abstaining on unanswerable ones).
    """
    if thresholds is None:
        thresholds = [round(float(t), 3) for t in np.arange(0.0, 0.805, 0.01)]
    rows: list[dict[str, float | None]] = []
    n = len(similarity)
    for t in thresholds:
        abstained = [s < t for s in similarity]
        answered = [not a for a in abstained]
        n_answered = sum(answered)
        good = sum(1 for i in range(n) if answered[i] and answerable[i] and correct[i])
        row: dict[str, float | None] = {
            "threshold": t,
            "coverage": n_answered / n if n else 0.0,
            "accuracy": good / n_answered if n_answered else None,
        }
        row.update(abstention_metrics(answerable, abstained))
        far, rec = row["false_abstain_rate"], row["abstain_recall"]
        row["balanced_accuracy"] = (
            ((1 - far) + rec) / 2 if far is not None and rec is not None else None
        )
        rows.append(row)
    return rows


def best_threshold(
    sweep: Sequence[Mapping[str, float | None]], max_false_abstain: float = 0.05
) -> dict[str, float | None]:
    """The threshold that abstains on most unanswerable questions while wrongly abstaining on
    at most `max_false_abstain` of the answerable ones (the lowest threshold among ties)."""
    scored = [r for r in sweep if r.get("abstain_recall") is not None
              and r.get("false_abstain_rate") is not None]  # fmt: skip
    if not scored:
        raise ValueError("the sweep needs both answerable and unanswerable questions")

    def value(row: Mapping[str, float | None], key: str) -> float:
        v = row[key]
        assert v is not None  # every row has a threshold; `scored` has both rates
        return float(v)

    within = [r for r in scored if value(r, "false_abstain_rate") <= max_false_abstain + 1e-12]
    pool = within or [min(scored, key=lambda r: value(r, "false_abstain_rate"))]
    best = max(pool, key=lambda r: (round(value(r, "abstain_recall"), 9), -value(r, "threshold")))
    return dict(best)


def eval_libraries() -> dict[str, str]:
    """Versions of the libraries that shape retrieval and the metrics."""
    out = library_versions()
    for name in ("ir_measures", "pytrec_eval-terrier", "matplotlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
