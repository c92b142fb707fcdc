import pytest

from assistant import Assistant
from assistant.errors import InputError
from assistant.retrieve import reciprocal_rank_fusion
from assistant.types import Filters


def test_rrf_by_hand():
    dense = [(1, 0.9), (2, 0.8), (3, 0.1)]
    lexical = [(2, 12.0), (4, 3.0)]
    fused = reciprocal_rank_fusion([dense, lexical], [1.0, 1.0], k=60)
    scores = dict(fused)
    assert fused[0][0] == 2
    assert scores[2] == pytest.approx(1 / 62 + 1 / 61)
    assert scores[1] == pytest.approx(1 / 61)
    assert scores[4] == pytest.approx(1 / 62)
    weighted = dict(reciprocal_rank_fusion([dense, lexical], [2.0, 0.0], k=10))
    assert weighted[1] == pytest.approx(2 / 11) and weighted[4] == 0.0


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_each_mode_finds_the_right_source(fake_assistant: Assistant, mode: str):
    passages = fake_assistant.search("Milan criteria liver transplantation survival", mode=mode)
    assert passages[0].source["id"] == "liver-transplant"
    assert [p.rank for p in passages] == list(range(1, len(passages) + 1))


def test_bm25_returns_nothing_without_shared_terms(fake_assistant: Assistant):
    assert fake_assistant.search("zzzz qqqq", mode="bm25") == []


def test_filters_restrict_sources(fake_assistant: Assistant):
    only_rct = Filters(source_types=("rct",))
    for mode in ("hybrid", "dense", "bm25"):
        got = fake_assistant.search("liver metastases", k=10, mode=mode, filters=only_rct)
        assert got and {p.source["source_type"] for p in got} == {"rct"}
    recent = fake_assistant.search("liver", k=10, filters=Filters(year_min=2010))
    assert recent and all(p.source["year"] >= 2010 for p in recent)
    none = fake_assistant.search("liver", filters=Filters(year_min=2100))
    assert none == []


def test_a_filter_no_source_passes_is_named_in_the_abstention(fake_assistant: Assistant):
    late = fake_assistant.ask("liver metastases", filters=Filters(year_min=2100))
    assert late.abstained and not late.passages
    assert late.message is not None
    assert "No indexed source passes the filter (year ≥ 2100)" in late.message
    assert "were published" in late.message  # the years the corpus does span
    kinds = Filters(year_min=2000, year_max=2000, source_types=("rct", "review"))
    assert kinds.describe() == "year 2000, type rct/review"
    some = fake_assistant.ask("xylophone quantum", filters=Filters(year_min=2010))
    assert some.message is None or "passes the filter" not in some.message


def test_paging_continues_the_ranking(fake_assistant: Assistant):
    first = fake_assistant.search("tumour progression octreotide", k=3)
    more = fake_assistant.search("tumour progression octreotide", k=3, offset=3)
    full = fake_assistant.search("tumour progression octreotide", k=6)
    assert [p.chunk.id for p in first + more] == [p.chunk.id for p in full]
    assert [p.rank for p in more] == [4, 5, 6]


def test_bad_parameters(fake_assistant: Assistant):
    with pytest.raises(InputError, match="unknown mode"):
        fake_assistant.search("liver", mode="fuzzy")
    with pytest.raises(InputError, match="empty"):
        fake_assistant.search("   ")
