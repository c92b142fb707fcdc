"""The gold-file validator, a small end-to-end evaluation, comparisons, reports and BEIR."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.beir import evaluate_beir, load_beir, read_qrels
from assistant.cli import app
from assistant.errors import InputError
from assistant.evaluate import DEFAULT_GOLD, compare, evaluate, load_gold, load_result
from assistant.report import render_html, write_report

GOLD = Path(__file__).parent / "data" / "gold"
BEIR = Path(__file__).parent / "data" / "beir" / "tiny"
FIXTURE_IDS = {"octreotide-trial", "liver-transplant", "embolization-review", "prrt-study"}
METRICS = (
    "answer_recall@1", "answer_recall@3", "answer_recall@5", "answer_recall@10",
    "source_recall@5", "source_recall@10", "mrr@10", "ndcg@10", "abstain_precision",
    "abstain_recall", "false_abstain_rate", "latency_ms_p50", "latency_ms_p95", "n_questions",
)  # fmt: skip


# ------------------------------------------------------------------ validator
def test_valid_gold_file_loads() -> None:
    questions = load_gold(GOLD / "ok.jsonl", FIXTURE_IDS)
    assert [q.id for q in questions] == ["t-01", "t-02", "t-03", "t-04", "t-05", "t-06"]
    assert questions[4].history[0]["role"] == "user"
    assert not questions[5].answerable and questions[5].answers == []
    assert questions[0].line == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bad_regex.jsonl", "bad_regex.jsonl:2: bad regular expression '(unclosed'"),
        ("unknown_source.jsonl", "unknown_source.jsonl:3: unknown source id 'no-such-note'"),
        ("missing_field.jsonl", "missing_field.jsonl:2: missing field 'question'"),
        ("bad_json.jsonl", "bad_json.jsonl:2: invalid JSON"),
    ],
)
def test_bad_gold_file_names_the_line(name: str, expected: str) -> None:
    with pytest.raises(InputError) as info:
        load_gold(GOLD / name, FIXTURE_IDS)
    assert expected in info.value.message
    assert info.value.hint


def test_every_problem_is_reported() -> None:
    with pytest.raises(InputError) as info:
        load_gold(GOLD / "duplicate.jsonl")
    message = info.value.message
    assert message.startswith("2 problems")
    assert "duplicate.jsonl:2: 'answerable' must be true or false" in message
    assert "duplicate.jsonl:3: duplicate id 'd-1' (first on line 1)" in message


def test_unknown_sources_pass_without_a_source_list() -> None:
    assert len(load_gold(GOLD / "unknown_source.jsonl")) == 2


def test_every_problem_of_a_line_is_reported_with_its_line(tmp_path: Path) -> None:
    from assistant.gold import GoldQuestion

    assert all(f.description for f in GoldQuestion.model_fields.values())
    path = tmp_path / "g.jsonl"
    path.write_text(
        '{"id": "a", "question": "q", "answerable": true, "answers": ["(", 7, "["], '
        '"history": [{"role": "bot", "content": "x"}, {"role": "user", "content": "y"}, 3], '
        '"sources": ["nope", "prrt-study"]}\n'
        '{"id": "", "question": 5, "answerable": "yes", "colour": 1}\n'
    )
    second = tmp_path / "second.jsonl"
    second.write_text('{"id": "", "question": 5, "answerable": "yes", "colour": 1}\n')
    with pytest.raises(InputError) as info:
        load_gold(path, FIXTURE_IDS)
    message = info.value.message
    assert message.startswith("9 problems") and message.endswith("; and 4 more")
    for part in (  # the first five are shown
        "g.jsonl:1: bad regular expression '(' in 'answers'",
        "g.jsonl:1: bad regular expression '[' in 'answers'",
        "g.jsonl:1: 'answers' must be a list of non-empty strings",
        'g.jsonl:1: history turns 1, 3 must be {"role": "user"|"assistant", "content": text}',
        "g.jsonl:1: unknown source id 'nope'",
    ):
        assert part in message, part
    with pytest.raises(InputError) as info:
        load_gold(second, FIXTURE_IDS)
    message = info.value.message
    for part in (
        "second.jsonl:1: unknown field(s) colour; known: answerable, answers, history, id,",
        "second.jsonl:1: 'id' must be a non-empty string",
        "second.jsonl:1: 'question' must be a non-empty string",
        "second.jsonl:1: 'answerable' must be true or false",
    ):
        assert part in message, part


def test_missing_gold_file() -> None:
    with pytest.raises(InputError, match="not found"):
        load_gold(GOLD / "nope.jsonl")


def test_shipped_gold_file_is_valid_and_big_enough() -> None:
    corpus_ids = {p.stem for p in DEFAULT_GOLD.parent.parent.glob("*.md")}
    questions = load_gold(DEFAULT_GOLD, corpus_ids)
    answerable = [q for q in questions if q.answerable and not q.history]
    assert len(questions) >= 120
    assert len(answerable) >= 90
    assert sum(1 for q in questions if q.history) >= 15
    assert sum(1 for q in questions if not q.answerable) >= 15
    assert len({q.topic for q in answerable}) >= 20


# ------------------------------------------------------------------ end to end (fake model)
def test_small_evaluation_end_to_end(fake_assistant) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(fake_assistant, GOLD / "ok.jsonl", modes=("hybrid", "bm25"), k=5)
    metrics = result["metrics"]
    assert set(METRICS) <= set(metrics)
    assert metrics["n_questions"] == 6
    assert metrics["answer_recall@10"] == 1.0  # every fixture answer is in the tiny corpus
    assert metrics["source_recall@5"] == 1.0
    assert 0 < metrics["mrr@10"] <= 1
    assert set(result["runs"]) == {"hybrid", "bm25"}
    for key in ("index_manifest", "settings", "libraries", "date", "gold_sha256"):
        assert result[key]
    assert "ir_measures" in result["libraries"]
    first = result["per_question"][0]
    assert first["id"] == "t-01" and first["first_hit_rank"] >= 1
    assert first["top_sources"][0] in FIXTURE_IDS
    assert isinstance(first["abstained"], bool)
    assert result["runs"]["hybrid"]["sweep"]["best"] is not None
    json.dumps(result)  # serialisable

    again = evaluate(fake_assistant, GOLD / "ok.jsonl", modes=("hybrid", "bm25"), k=5)
    strip = lambda m: {k: v for k, v in m.items() if not k.startswith("latency")}  # noqa: E731
    assert strip(again["metrics"]) == strip(metrics)


def test_history_rewrite_versus_last(fake_assistant) -> None:  # type: ignore[no-untyped-def]
    rewrite = evaluate(fake_assistant, GOLD / "ok.jsonl", k=5, history="rewrite")
    last = evaluate(fake_assistant, GOLD / "ok.jsonl", k=5, history="last")
    q_rewrite = next(r for r in rewrite["per_question"] if r["id"] == "t-05")["query"]
    q_last = next(r for r in last["per_question"] if r["id"] == "t-05")["query"]
    assert "lutetium" in q_rewrite.lower() and "lutetium" not in q_last.lower()
    multi = [r for r in rewrite["per_question"] if r["multi_turn"] and r["answers"]]
    assert multi, "the fixture gold file has a multi-turn case"
    hits = sum(1 for r in multi if r["answer_rank"] is not None and r["answer_rank"] <= 5)
    assert rewrite["metrics"]["multi_turn_answer_recall@5"] == round(hits / len(multi), 4)
    assert rewrite["metrics"]["multi_turn_source_recall@5"] is not None
    with pytest.raises(InputError):
        evaluate(fake_assistant, GOLD / "ok.jsonl", history="sometimes")


def test_unknown_source_against_the_index(fake_assistant) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="no-such-note"):
        evaluate(fake_assistant, GOLD / "unknown_source.jsonl")


def test_compare_marks_regressions(fake_assistant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(fake_assistant, GOLD / "ok.jsonl", k=5)
    baseline = json.loads(json.dumps(result))
    baseline["runs"]["hybrid"]["metrics"]["mrr@10"] = result["metrics"]["mrr@10"] + 0.2
    baseline["runs"]["hybrid"]["metrics"]["false_abstain_rate"] = 0.0
    result["runs"]["hybrid"]["metrics"]["false_abstain_rate"] = 0.5
    rows = {r["metric"]: r for r in compare(result, baseline)}
    assert rows["mrr@10"]["regression"] and rows["mrr@10"]["delta"] == pytest.approx(-0.2)
    assert rows["false_abstain_rate"]["regression"]
    assert not rows["ndcg@10"]["regression"]
    path = tmp_path / "base.json"
    path.write_text(json.dumps(baseline))
    assert load_result(path)["kind"] == "gold"
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="no metrics"):
        load_result(tmp_path / "junk.json")


def test_report_is_self_contained(fake_assistant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(fake_assistant, GOLD / "ok.jsonl", modes=("hybrid", "dense", "bm25"), k=1)
    result["comparison"] = {"baseline": "b.json", "rows": compare(result, result)}
    path = write_report(result, tmp_path / "rep")
    page = path.read_text(encoding="utf-8")
    assert page.count("<svg") == 4  # recall curves, latency, coverage/accuracy, sweep
    assert "Failed questions" in page and "0 regression(s)" in page
    assert "<script" not in page and 'src="http' not in page
    assert json.loads((tmp_path / "rep" / "result.json").read_text())["k"] == 1
    assert render_html(result) == page  # same input, same page


# ------------------------------------------------------------------ BEIR (fake model)
def test_beir_tiny_dataset(fake_embedder, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = load_beir(BEIR)
    assert len(data.docs) == 5 and set(data.queries) == {"q1", "q2", "q3"}
    assert data.docs[0].body_offset == 0 and data.docs[0].title == "Octreotide in midgut tumours"
    cache = tmp_path / "cache"
    result = evaluate_beir(BEIR, settings, fake_embedder, cache_dir=cache)
    assert set(result["modes"]) == {"hybrid", "dense", "bm25"}
    for figures in result["modes"].values():
        assert set(figures) >= {"ndcg@10", "recall@100", "mrr@10"}
    assert result["modes"]["bm25"]["ndcg@10"] == 1.0  # each query names its document's words
    assert result["modes"]["hybrid"]["recall@100"] == 1.0
    assert not settings.index_dir.exists()  # never the main index
    embedded = fake_embedder.embedded
    again = evaluate_beir(BEIR, settings, fake_embedder, modes=("dense",), cache_dir=cache)
    assert fake_embedder.embedded == embedded  # served from the cache
    again["modes"]["dense"].pop("latency_ms_p50")
    assert again["modes"]["dense"].items() <= result["modes"]["dense"].items()
    train = evaluate_beir(BEIR, settings, fake_embedder, modes=("bm25",), split="train",
                          cache_dir=cache)  # fmt: skip
    assert train["n_queries"] == 1


def test_beir_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_beir(tmp_path / "missing")
    bad = tmp_path / "bad"
    shutil.copytree(BEIR, bad)
    (bad / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(InputError, match=r"test.tsv:2"):
        read_qrels(bad / "qrels" / "test.tsv")
    (bad / "qrels" / "test.tsv").write_text("q9\td1\t1\n")
    with pytest.raises(InputError, match="not in queries.jsonl"):
        load_beir(bad)


# ------------------------------------------------------------------ CLI (real model)
@pytest.mark.slow
def test_cli_eval_all_modes_report_and_compare(corpus_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    common = ["--corpus", str(corpus_dir), "--index", str(tmp_path / "index")]
    first = runner.invoke(app, ["eval", "--gold", str(GOLD / "ok.jsonl"), "--json", *common])
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout)
    assert result["metrics"]["n_questions"] == 6 and result["metrics"]["answer_recall@5"] == 1.0
    base = tmp_path / "base.json"
    base.write_text(first.stdout)
    out = runner.invoke(app, ["eval", "--gold", str(GOLD / "ok.jsonl"), "--mode", "all",
                              "--report", str(tmp_path / "rep"), "--compare", str(base),
                              *common])  # fmt: skip
    assert out.exit_code == 0, out.output
    for word in ("hybrid", "dense", "bm25", "answer_recall@5", "Against the baseline"):
        assert word in out.stdout
    assert (tmp_path / "rep" / "report.html").exists()
    beir = runner.invoke(app, ["eval", "--beir", str(BEIR), "--cache", str(tmp_path / "c"),
                               "--mode", "bm25", "--json", *common])  # fmt: skip
    assert beir.exit_code == 0, beir.output
    assert json.loads(beir.stdout)["modes"]["bm25"]["ndcg@10"] > 0.9


def test_cli_bad_gold_is_one_line_error(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["eval", "--gold", str(GOLD / "bad_regex.jsonl"),
                                   "--index", str(tmp_path / "i")])  # fmt: skip
    assert out.exit_code == 1
    assert out.stderr.startswith("error: ") and "bad_regex.jsonl:2" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    mode = CliRunner().invoke(app, ["eval", "--mode", "fuzzy", "--index", str(tmp_path / "i")])
    assert mode.exit_code == 1 and "unknown mode 'fuzzy'" in mode.stderr


def test_cli_eval_reads_the_gold_file_of_the_corpus_it_is_given(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "gold").mkdir(parents=True)
    shutil.copy(GOLD / "bad_regex.jsonl", corpus / "gold" / "questions.jsonl")
    common = ["--corpus", str(corpus), "--index", str(tmp_path / "i")]
    out = CliRunner().invoke(app, ["eval", *common])
    assert out.exit_code == 1 and f"{corpus / 'gold' / 'questions.jsonl'}:2" in out.stderr
    shutil.rmtree(corpus / "gold")
    missing = CliRunner().invoke(app, ["eval", *common])
    assert missing.exit_code == 1 and "has no gold questions" in missing.stderr
    assert "--gold FILE" in missing.stderr
