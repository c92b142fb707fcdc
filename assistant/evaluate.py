"""Evaluation against a gold question set (loaded and validated by `gold.py`): run it,
measure, compare. A question is answered at k when a case-insensitive `answers` pattern
matches the text of one of the top-k passages.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .answer import answer_sentences, answer_sentences_text, should_abstain
from .assistant import Assistant
from .errors import InputError
from .gold import DEFAULT_GOLD, GoldQuestion, load_gold, select_split
from .metrics import (
    abstention_metrics,
    best_threshold,
    eval_libraries,
    first_answer_rank,
    first_source_rank,
    latency_percentiles,
    ranking_metrics,
    recall_at,
    threshold_sweep,
)
from .sentences import is_fragment
from .types import MODES

HISTORY_MODES = ("rewrite", "last")
DEPTH = 10  # passages retrieved per question for the ranking metrics
ANSWER_KS = (1, 3, 5, 10)
# metric -> True when higher is better (for comparisons)
HIGHER_IS_BETTER = {
    "answer_recall@1": True,
    "answer_recall@3": True,
    "answer_recall@5": True,
    "answer_recall@10": True,
    "source_recall@5": True,
    "source_recall@10": True,
    "mrr@10": True,
    "ndcg@10": True,
    "multi_turn_answer_recall@5": True,
    "multi_turn_source_recall@5": True,
    "answer_match": True,
    "answer_words_p50": False,
    "answer_words_p95": False,
    "answer_fragment_rate": False,
    "distinct_sources@5": True,
    "abstain_precision": True,
    "abstain_recall": True,
    "false_abstain_rate": False,
    "latency_ms_p50": False,
    "latency_ms_p95": False,
}
GOLD_METRICS_ORDER = tuple(HIGHER_IS_BETTER) + ("n_questions",)
QUALITY_TOLERANCE = 0.005  # a quality metric falling by more than this is a regression
LATENCY_TOLERANCE = 0.25  # latency rising by more than 25 % (and 5 ms) is a regression
Progress = Callable[[str, int, int], None]


def run_question(
    assistant: Assistant, q: GoldQuestion, mode: str, k: int, history: str = "rewrite"
) -> dict[str, Any]:
    """Ask one gold question and record what came back (ranks, sources, abstention, time)."""
    depth = max(k, DEPTH)
    answer = assistant.ask(
        q.question, k=depth, mode=mode, history=q.history if history == "rewrite" else None
    )
    passages = answer.passages
    docs = [p.source["id"] for p in passages]
    abstained = answer.abstained or should_abstain(
        passages[:k],
        assistant.settings.abstain_threshold,
        assistant.named_sources(answer.query),
    )
    answer_rank = (
        first_answer_rank(q.patterns, [p.chunk.text for p in passages]) if q.answers else None
    )
    source_rank = first_source_rank(q.sources, docs) if q.sources else None
    hit_rank = answer_rank if q.answers else source_rank
    top_sources = list(dict.fromkeys(docs[:k]))
    text = None if answer.abstained else answer.answer
    return {
        "id": q.id,
        "topic": q.topic,
        "answerable": q.answerable,
        "multi_turn": bool(q.history),
        "question": q.question,
        "query": answer.query,
        "answer_rank": answer_rank,
        "source_rank": source_rank,
        "first_hit_rank": hit_rank,
        "top_sources": top_sources,
        "ranked_sources": list(dict.fromkeys(docs)),
        "expected_sources": q.sources,
        "answers": q.answers,
        "abstained": abstained,
        "answer": text,
        "answer_matches": bool(text and any(p.search(text) for p in q.patterns)),
        "answer_words": len(answer_sentences_text(text).split()) if text else 0,
        "answer_fragments": [f for f in answer_sentences(text) if is_fragment(f)] if text else [],
        "answer_sentences": len(answer_sentences(text)) if text else 0,
        "distinct_sources": len(set(docs[:k])),
        "max_similarity": round(max((p.similarity for p in passages[:k]), default=0.0), 6),
        "latency_ms": round(answer.timings_ms.get("total", 0.0), 2),
        "retrieved": [
            {
                "rank": p.rank,
                "source": p.source["id"],
                "chunk_id": p.chunk.id,
                "similarity": round(p.similarity, 4),
                "snippet": re.sub(r"\s+", " ", p.chunk.text)[:240],
            }
            for p in passages[:3]
        ],
    }


def is_correct(record: Mapping[str, Any], k: int) -> bool:
    """An answerable question whose answer (or, without answers, source) is in the top k."""
    rank = record.get("first_hit_rank")
    return bool(record["answerable"] and rank is not None and rank <= k)


def summarize(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The metrics of one run over the gold questions."""
    with_answers = [r for r in records if r["answerable"] and r["answers"]]
    metrics: dict[str, Any] = {}
    for cut in ANSWER_KS:
        metrics[f"answer_recall@{cut}"] = round(
            recall_at([r["answer_rank"] for r in with_answers], cut), 4
        )
    with_sources = [r for r in records if r["answerable"] and r["expected_sources"]]
    qrels = {r["id"]: {s: 1 for s in r["expected_sources"]} for r in with_sources}
    run = {r["id"]: r["ranked_sources"] for r in with_sources}
    means, _ = ranking_metrics(qrels, run, ("recall@5", "recall@10", "mrr@10", "ndcg@10"))
    metrics["source_recall@5"] = round(means["recall@5"], 4)
    metrics["source_recall@10"] = round(means["recall@10"], 4)
    metrics["mrr@10"] = round(means["mrr@10"], 4)
    metrics["ndcg@10"] = round(means["ndcg@10"], 4)
    # the follow-up cases alone (compare `--history rewrite` with `--history last`)
    multi = [r for r in with_answers if r["multi_turn"]]
    metrics["multi_turn_answer_recall@5"] = (
        round(recall_at([r["answer_rank"] for r in multi], 5), 4) if multi else None
    )
    multi_src = [r for r in with_sources if r["multi_turn"]]
    if multi_src:
        sub_qrels = {r["id"]: qrels[r["id"]] for r in multi_src}
        sub_run = {r["id"]: run[r["id"]] for r in multi_src}
        sub, _ = ranking_metrics(sub_qrels, sub_run, ("recall@5",))
        metrics["multi_turn_source_recall@5"] = round(sub["recall@5"], 4)
    else:
        metrics["multi_turn_source_recall@5"] = None
    metrics.update(answer_metrics(with_answers, records))
    abst = abstention_metrics([r["answerable"] for r in records], [r["abstained"] for r in records])
    metrics.update({key: None if v is None else round(v, 4) for key, v in abst.items()})
    metrics.update(latency_percentiles([r["latency_ms"] for r in records]))
    metrics["n_questions"] = len(records)
    metrics["n_answerable"] = sum(1 for r in records if r["answerable"])
    metrics["n_multi_turn"] = sum(1 for r in records if r["multi_turn"])
    return metrics


def answer_metrics(
    with_answers: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Figures of the composed answer itself (not of the passages under it).

    `answer_match`: share of answerable questions with answer patterns whose composed answer
    text matches one of them (an abstention counts as a miss); words p50/p95 and the fragment
    rate over the answers given; `distinct_sources@5`: mean number of different sources among
    the top five passages of answerable questions.
    """
    given = [r for r in records if r.get("answer")]
    answerable = [r for r in records if r["answerable"]]
    words = [r["answer_words"] for r in given]
    n_sentences = sum(r["answer_sentences"] for r in given)
    n_fragments = sum(len(r["answer_fragments"]) for r in given)
    return {
        "answer_match": (
            round(sum(1 for r in with_answers if r["answer_matches"]) / len(with_answers), 4)
            if with_answers
            else None
        ),
        "answer_words_p50": float(np.percentile(words, 50)) if words else None,
        "answer_words_p95": round(float(np.percentile(words, 95)), 1) if words else None,
        "answer_fragment_rate": round(n_fragments / n_sentences, 4) if n_sentences else None,
        "distinct_sources@5": (
            round(sum(r["distinct_sources"] for r in answerable) / len(answerable), 3)
            if answerable
            else None
        ),
    }


def sweep(records: Sequence[Mapping[str, Any]], k: int) -> dict[str, Any]:
    """The abstention threshold sweep and the threshold it suggests."""
    rows = threshold_sweep(
        [r["max_similarity"] for r in records],
        [r["answerable"] for r in records],
        [is_correct(r, k) for r in records],
    )
    try:
        best: dict[str, Any] | None = best_threshold(rows)
    except ValueError:
        best = None
    return {
        "rows": rows,
        "best": best,
        "criterion": "most unanswerable abstained with false_abstain_rate <= 0.05",
    }


def evaluate(
    assistant: Assistant,
    gold: Path | None = None,
    modes: Sequence[str] = ("hybrid",),
    k: int | None = None,
    history: str = "rewrite",
    progress: Progress | None = None,
    split: str = "all",
) -> dict[str, Any]:
    """Run the gold set (or its dev or test half) in each mode; the result JSON with metrics, per-question records,
    threshold sweep, index manifest, settings, library versions and date."""
    gold = Path(gold) if gold else DEFAULT_GOLD
    if history not in HISTORY_MODES:
        raise InputError(f"unknown history handling '{history}'", "use rewrite or last")
    for mode in modes:
        if mode not in MODES:
            raise InputError(f"unknown mode '{mode}'", f"use one of: {', '.join(MODES)}, all")
    k = k or assistant.settings.top_k
    questions = select_split(load_gold(gold, known_sources=set(assistant.index.sources)), split)
    runs: dict[str, Any] = {}
    for mode in modes:
        records = []
        for i, q in enumerate(questions):
            records.append(run_question(assistant, q, mode, k, history))
            if progress:
                progress(f"gold questions ({mode})", i + 1, len(questions))
        runs[mode] = {"metrics": summarize(records), "per_question": records,
                      "sweep": sweep(records, k)}  # fmt: skip
    primary = modes[0]
    manifest = {key: v for key, v in assistant.index.manifest.items() if key != "corpus"}
    manifest["corpus_fingerprint"] = assistant.index.manifest.get("corpus", {}).get("fingerprint")
    return {
        "kind": "gold",
        "gold": str(gold),
        "gold_sha256": hashlib.sha256(gold.read_bytes()).hexdigest(),
        "mode": primary,
        "modes": list(modes),
        "k": k,
        "history": history,
        "split": split,
        "metrics": runs[primary]["metrics"],
        "per_question": runs[primary]["per_question"],
        "runs": runs,
        "index_manifest": manifest,
        "settings": assistant.settings.model_dump(mode="json"),
        "libraries": eval_libraries(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_metrics(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """mode -> metrics of a gold or BEIR result (older single-mode results included)."""
    if result.get("kind") == "beir":
        return {m: dict(v) for m, v in result.get("modes", {}).items()}
    if "runs" in result:
        return {m: dict(v["metrics"]) for m, v in result["runs"].items()}
    return {result.get("mode", "hybrid"): dict(result.get("metrics", {}))}


def load_result(path: Path) -> dict[str, Any]:
    """A result JSON written earlier by `assistant eval --json` or `--report`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"baseline {path} not found", "pass a result JSON to --compare") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"baseline {path} is not JSON", "pass a result of eval --json") from exc
    if not isinstance(data, dict) or not ("metrics" in data or "modes" in data):
        raise InputError(f"baseline {path} has no metrics", "pass a result of eval --json")
    return data


def compare(result: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per mode and metric: baseline, current, delta and whether it is a regression."""
    now, before = run_metrics(result), run_metrics(baseline)
    rows = []
    for mode, metrics in now.items():
        old = before.get(mode)
        if old is None:
            continue
        for name, value in metrics.items():
            if name not in old or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            base = old[name]
            if not isinstance(base, int | float):
                continue
            delta = value - base
            higher = HIGHER_IS_BETTER.get(name, True)
            if name.startswith("latency"):
                regression = delta > max(5.0, LATENCY_TOLERANCE * base)
            elif name.startswith("n_"):
                regression = False
            else:
                regression = (-delta if higher else delta) > QUALITY_TOLERANCE
            rows.append({"mode": mode, "metric": name, "baseline": base, "current": value,
                         "delta": round(delta, 4), "regression": regression})  # fmt: skip
    return rows
