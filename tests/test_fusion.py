"""Fusion of ranked lists (RRF, score, adaptive), query features and RM3, on hand-made lists."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.beir import FUSIONS, evaluate_beir
from assistant.cli.evaluate import beir_folders
from assistant.errors import InputError
from assistant.fusion import (
    DEFAULT_MODEL,
    FEATURE_NAMES,
    AdaptiveModel,
    adaptive_fusion,
    overlap_at,
    query_features,
    top_gap,
)
from assistant.prf import rm3_weights, weighted_bm25_scores
from assistant.retrieve import reciprocal_rank_fusion, score_fusion

BEIR = Path(__file__).parent / "data" / "beir" / "tiny"
DENSE = [(1, 0.9), (2, 0.6), (3, 0.3)]
LEXICAL = [(2, 12.0), (4, 6.0), (1, 2.0)]
IDF = {"octreotid": 2.0, "liver": 0.5}.get


def idf(token: str) -> float:
    return IDF(token) or 0.0


# ------------------------------------------------------------------ plain fusions
@pytest.mark.parametrize("fuse", ["rrf", "score"])
def test_empty_and_one_sided_lists(fuse: str) -> None:
    def run(lists):  # type: ignore[no-untyped-def]
        if fuse == "rrf":
            return reciprocal_rank_fusion(lists, [1.0, 1.0], k=60)
        return score_fusion(lists, [1.0, 1.0])

    assert run([[], []]) == []
    only_dense = run([DENSE, []])
    assert [r for r, _ in only_dense] == [1, 2, 3]  # the one list's order survives
    only_lexical = run([[], LEXICAL])
    assert [r for r, _ in only_lexical] == [2, 4, 1]


def test_score_fusion_by_hand_and_ties() -> None:
    fused = dict(score_fusion([DENSE, LEXICAL], [0.5, 0.5]))
    # dense min-max: 1 -> 1, 2 -> 0.5, 3 -> 0; BM25: 2 -> 1, 4 -> 0.4, 1 -> 0
    assert fused[1] == pytest.approx(0.5)
    assert fused[2] == pytest.approx(0.75)
    assert fused[4] == pytest.approx(0.2)
    assert fused[3] == pytest.approx(0.0)
    tied = score_fusion([[(7, 1.0), (5, 1.0)], []], [1.0, 1.0])
    assert tied == [(5, 1.0), (7, 1.0)]  # equal scores: lower row first, every run the same


def test_identical_lists() -> None:
    same = score_fusion([DENSE, DENSE], [0.3, 0.7])
    assert [r for r, _ in same] == [1, 2, 3] and same[0][1] == pytest.approx(1.0)
    rrf = reciprocal_rank_fusion([DENSE, DENSE], [1.0, 1.0], k=60)
    assert [r for r, _ in rrf] == [1, 2, 3]


# ------------------------------------------------------------------ features
def test_overlap_and_gap() -> None:
    assert overlap_at(DENSE, LEXICAL) == pytest.approx(2 / 10)
    assert overlap_at(DENSE, LEXICAL, k=2) == pytest.approx(1 / 2)
    assert overlap_at(DENSE, DENSE, k=3) == 1.0
    assert overlap_at([], LEXICAL) == 0.0 and overlap_at(DENSE, []) == 0.0
    assert top_gap(DENSE) == pytest.approx(0.9 - 0.6)
    assert top_gap(LEXICAL, relative=True) == pytest.approx((12 - 20 / 3) / 12)
    assert top_gap([]) == 0.0 and top_gap([], relative=True) == 0.0
    assert top_gap([(1, 0.5), (2, 0.5)]) == 0.0  # a tie at the top is flat
    assert top_gap([(1, 0.0)], relative=True) == 0.0  # no division by a zero score


def test_query_features_by_hand() -> None:
    f = query_features(DENSE, LEXICAL, ["octreotid", "liver"], idf, n_passages=99)
    assert list(f) == list(FEATURE_NAMES)
    scale = math.log(100)
    assert f["overlap10"] == pytest.approx(0.2)
    assert f["dense_top"] == pytest.approx(0.9)
    assert f["bm25_cover"] == pytest.approx(12 / 2.5)
    assert f["query_terms"] == 2
    assert f["idf_mean"] == pytest.approx(1.25 / scale)
    assert f["idf_max"] == pytest.approx(2.0 / scale)


def test_query_features_of_empty_lists_and_query() -> None:
    f = query_features([], [], [], idf, n_passages=0)
    assert all(v == 0.0 for v in f.values())
    one_sided = query_features(DENSE, [], ["liver"], idf, n_passages=10)
    assert one_sided["overlap10"] == 0.0 and one_sided["bm25_gap"] == 0.0
    assert one_sided["bm25_cover"] == 0.0 and one_sided["dense_top"] == pytest.approx(0.9)


# ------------------------------------------------------------------ adaptive fusion
def test_adaptive_weight_follows_the_features() -> None:
    model = AdaptiveModel(intercept=0.0, coefs={"overlap10": -10.0}, low=0.2, high=0.8)
    assert model.dense_weight({"overlap10": 0.0}) == pytest.approx(0.5)
    assert model.dense_weight({"overlap10": 1.0}) == pytest.approx(0.2, abs=1e-3)
    assert model.dense_weight({"overlap10": -1.0}) == pytest.approx(0.8, abs=1e-3)
    assert model.dense_weight({}) == pytest.approx(0.5)  # missing features count 0
    assert AdaptiveModel(intercept=-1e6, low=0.1, high=0.9).dense_weight({}) == 0.1  # no overflow


def test_adaptive_fusion_equals_score_fusion_at_its_weight() -> None:
    model = AdaptiveModel(intercept=0.0, coefs={"dense_top": 2.0}, low=0.0, high=1.0)
    weight = 1 / (1 + math.exp(-2 * 0.9))
    got = adaptive_fusion(DENSE, LEXICAL, ["liver"], idf, 10, model)
    assert got == score_fusion([DENSE, LEXICAL], [weight, 1 - weight])
    assert adaptive_fusion([], [], [], idf, 0, model) == []
    assert [r for r, _ in adaptive_fusion(DENSE, [], ["zz"], idf, 10)] == [1, 2, 3]
    same = adaptive_fusion(DENSE, DENSE, ["liver"], idf, 10)
    assert [r for r, _ in same] == [1, 2, 3]


def test_default_model_weights_stay_in_range() -> None:
    assert 0.0 <= DEFAULT_MODEL.low <= DEFAULT_MODEL.high <= 1.0
    assert set(DEFAULT_MODEL.coefs) <= set(FEATURE_NAMES)


# ------------------------------------------------------------------ RM3
def test_rm3_weights_by_hand() -> None:
    feedback = [(["a", "b", "b", "c"], 3.0), (["b", "d"], 1.0), (["e"], 0.0), ([], 5.0)]
    w = rm3_weights(["a", "q"], feedback, n_terms=2, original_weight=0.5)
    # P(w|R): a 0.75*0.25, b 0.75*0.5 + 0.25*0.5, c 0.75*0.25, d 0.25*0.5 -> top 2: b, then a/c
    b, a = 0.5, 0.1875  # 0.1875 ties with c; the tie goes to the alphabetically first term
    assert set(w) == {"a", "b", "q"}
    assert w["b"] == pytest.approx(0.5 * b / (a + b))
    assert w["a"] == pytest.approx(0.5 * 0.5 + 0.5 * a / (a + b))
    assert w["q"] == pytest.approx(0.25)
    assert sum(w.values()) == pytest.approx(1.0)


def test_rm3_without_feedback_keeps_the_query() -> None:
    assert rm3_weights(["a", "a", "b"], []) == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    assert rm3_weights(["a"], [(["x"], 0.0)]) == {"a": 1.0}
    assert rm3_weights([], []) == {}


def test_weighted_bm25_scores_sum_single_terms() -> None:
    class Fake:
        def get_scores(self, tokens):  # type: ignore[no-untyped-def]
            return {"a": [1.0, 0.0], "b": [0.0, 2.0]}[tokens[0]]

    got = weighted_bm25_scores(Fake(), {"a": 0.5, "b": 0.25, "c": 0.0}, 2)
    assert got.tolist() == pytest.approx([0.5, 0.5])


# ------------------------------------------------------------------ retrieval and runner
def test_adaptive_mode_in_search(settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    assistant = Assistant(
        settings.model_copy(update={"fusion": "adaptive"}), embedder=fake_embedder
    )
    assistant.load()
    got = assistant.search("Milan criteria liver transplantation survival")
    assert got[0].source["id"] == "liver-transplant"


def test_beir_runs_every_fusion(fake_embedder, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = evaluate_beir(BEIR, settings, fake_embedder, cache_dir=tmp_path, fusions=FUSIONS)
    extra = {f"hybrid-{f}" for f in FUSIONS if f != settings.fusion}
    assert set(result["modes"]) == {"hybrid", "dense", "bm25"} | extra
    assert all(m["recall@100"] == 1.0 for m in result["modes"].values())
    assert result["index_manifest"]["counts"]["sentences"] == 0  # ranking only: no sentence vectors


def test_beir_folders(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "corpus.jsonl").write_text("")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "corpus.jsonl").write_text("")
    (tmp_path / "notes").mkdir()
    assert beir_folders([BEIR], tmp_path) == [BEIR, tmp_path / "a", tmp_path / "b"]
    assert beir_folders([BEIR], None) == [BEIR]
    with pytest.raises(InputError, match="no BEIR dataset"):
        beir_folders([], tmp_path / "notes")
    with pytest.raises(InputError, match="not found"):
        beir_folders([], tmp_path / "missing")
