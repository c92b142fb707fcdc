"""Metrics on toy sets whose values were computed by hand."""

from __future__ import annotations

import math

import pytest

from assistant.metrics import (
    abstention_metrics,
    best_threshold,
    compile_answers,
    first_answer_rank,
    first_source_rank,
    latency_percentiles,
    ranking_metrics,
    recall_at,
    threshold_sweep,
)

QRELS = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}, "q3": {"d": 1}}
RUN = {"q1": ["x", "a", "y"], "q2": ["b", "x", "c"]}  # q3 retrieved nothing


def test_ranking_metrics_match_hand_computation() -> None:
    means, per_query = ranking_metrics(QRELS, RUN, ("ndcg@10", "mrr@10", "recall@5"))
    # q1: hit at rank 2 -> RR 1/2, nDCG 1/log2(3); q2: ranks 1 and 3 -> RR 1,
    # DCG 1 + 1/log2(4) = 1.5 over IDCG 1 + 1/log2(3); q3: nothing -> 0.
    ndcg_q1 = 1 / math.log2(3)
    ndcg_q2 = 1.5 / (1 + 1 / math.log2(3))
    assert per_query["q1"]["mrr@10"] == pytest.approx(0.5)
    assert per_query["q1"]["ndcg@10"] == pytest.approx(ndcg_q1)
    assert per_query["q2"]["ndcg@10"] == pytest.approx(ndcg_q2)
    assert per_query["q3"] == {"ndcg@10": 0.0, "mrr@10": 0.0, "recall@5": 0.0}
    assert means["mrr@10"] == pytest.approx(0.5)
    assert means["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 3)
    assert means["recall@5"] == pytest.approx(2 / 3)


def test_ranking_metrics_cut_off_and_duplicates() -> None:
    qrels = {"q": {"a": 1, "b": 1}}
    run = {"q": ["x", "x", "a"] + [f"n{i}" for i in range(10)] + ["b"]}
    means, _ = ranking_metrics(qrels, run, ("recall@10", "recall@100", "mrr@10"))
    # the duplicate x counts once: a is at rank 2, b at rank 13 (outside the top 10)
    assert means["mrr@10"] == pytest.approx(0.5)
    assert means["recall@10"] == pytest.approx(0.5)
    assert means["recall@100"] == pytest.approx(1.0)


def test_ranking_metrics_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown ranking metric"):
        ranking_metrics(QRELS, RUN, ("map",))


def test_answer_and_source_ranks() -> None:
    patterns = compile_answers([r"14\.3 months", r"hazard ratio 0\.34"])
    assert first_answer_rank(patterns, ["nothing here", "median 14.3 MONTHS", "x"]) == 2
    assert first_answer_rank(patterns, ["14.35 weeks"]) is None
    assert first_source_rank(["b"], ["a", "a", "b"]) == 2
    assert first_source_rank(["z"], ["a", "b"]) is None
    assert recall_at([1, 3, None, 6], 5) == 0.5
    assert recall_at([], 5) == 0.0


def test_abstention_metrics() -> None:
    out = abstention_metrics([True, True, False, False], [True, False, True, False])
    assert out == {"abstain_precision": 0.5, "abstain_recall": 0.5, "false_abstain_rate": 0.5}
    none = abstention_metrics([True, False], [False, False])
    assert none["abstain_precision"] is None
    assert none["abstain_recall"] == 0.0
    assert none["false_abstain_rate"] == 0.0


def test_latency_percentiles() -> None:
    assert latency_percentiles([10, 20, 30, 40]) == {"latency_ms_p50": 25.0, "latency_ms_p95": 38.5}
    assert latency_percentiles([])["latency_ms_p50"] is None


def test_threshold_sweep_and_choice() -> None:
    rows = threshold_sweep(
        [0.9, 0.5, 0.3, 0.6],
        [True, True, False, False],
        [True, False, False, False],
        thresholds=[0.4, 0.55],
    )
    low, high = rows
    assert low["coverage"] == 0.75 and low["accuracy"] == pytest.approx(1 / 3)
    assert low["abstain_precision"] == 1.0 and low["abstain_recall"] == 0.5
    assert low["false_abstain_rate"] == 0.0 and low["balanced_accuracy"] == 0.75
    assert high["coverage"] == 0.5 and high["accuracy"] == 0.5
    assert high["false_abstain_rate"] == 0.5
    assert best_threshold(rows)["threshold"] == 0.4
    # allowing half the answerable ones to be refused does not buy more recall: still 0.4
    assert best_threshold(rows, max_false_abstain=0.5)["threshold"] == 0.4
    with pytest.raises(ValueError):
        best_threshold(threshold_sweep([0.5], [True], [True], thresholds=[0.1]))


def test_score_fusion_by_hand() -> None:
    from assistant.retrieve import score_fusion

    dense = [(1, 10.0), (2, 5.0), (3, 0.0)]  # normalised 1, 0.5, 0
    lexical = [(3, 2.0), (4, 1.0)]  # normalised 1, 0
    fused = score_fusion([dense, lexical], [0.5, 0.5])
    assert fused == [(1, 0.5), (3, 0.5), (2, 0.25), (4, 0.0)]
    assert score_fusion([[(7, 3.0)], []], [1.0, 1.0]) == [(7, 1.0)]
