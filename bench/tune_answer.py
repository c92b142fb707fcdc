"""Tune the answer composer and the per-source passage limit on the dev half of the gold set.

For each per-source limit it asks every question of one half once (dev by default; never tune
on test), then composes the answer with each candidate weighting and prints the figures of
each, best `answer_match` first.
Usage: .venv/bin/python bench/tune_answer.py [--split dev] [--grid small|full]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from typing import Any

from _common import machine

from assistant import Assistant, Settings
from assistant.answer import ComposerWeights, compose_answer
from assistant.evaluate import DEFAULT_GOLD, load_gold, run_question, select_split, summarize
from assistant.lexical import tokenize
from assistant.sentences import is_fragment

SHOWN = ("answer_match", "answer_words_p95", "answer_fragment_rate", "distinct_sources@5",
         "answer_recall@5", "source_recall@5", "mrr@10", "multi_turn_answer_recall@5")  # fmt: skip
LIMITS = ((0, 1.0), (2, 1.0), (3, 1.0), (4, 1.0), (2, 0.8), (3, 0.8), (2, 0.9), (3, 0.9))


OFF = {"semantic": 0.0, "lexical": 1.0, "figure": 0.0, "comparison": 0.0, "listing": 0.0,
       "passage": 0.0, "findings": 0.0, "focus": 0.0, "facet": 0.0, "named": 0.0,
       "concepts": False}  # fmt: skip
ABLATION = [  # each row adds one part of the default scoring to the one before
    ("words only (idf-weighted overlap, the old composer's score)", OFF),
    ("+ sentence cosine", {**OFF, "semantic": 0.25}),
    ("+ question form (figure, comparison, list)",
     {**OFF, "semantic": 0.25, "figure": 0.3, "comparison": 0.1, "listing": 0.12}),
    ("+ passage similarity",
     {**OFF, "semantic": 0.25, "figure": 0.3, "comparison": 0.1, "listing": 0.12,
      "passage": 1.5}),
    ("+ findings section",
     {**OFF, "semantic": 0.25, "figure": 0.3, "comparison": 0.1, "listing": 0.12,
      "passage": 1.5, "findings": 0.5}),
    ("+ focus term, lexical 0.5", {"facet": 0.0, "named": 0.0, "concepts": False}),
    ("+ the question's facet", {"named": 0.0, "concepts": False}),
    ("+ a source the question names", {"concepts": False}),
    ("+ concepts (side effects = adverse events, ...; the default)", {}),
]  # fmt: skip


def grid(size: str) -> list[dict[str, Any]]:
    """Candidate composer weights."""
    if size == "ablation":
        return [params for _, params in ABLATION]
    if size == "small":
        axes: dict[str, list[Any]] = {"semantic": [0.0, 1.0], "figure": [0.0, 0.12]}
    elif size == "length":
        axes = {
            "max_words": [90, 100],
            "min_ratio": [0.3, 0.5, 0.7],
            "per_passage": [1, 2, 3],
            "max_sentence_words": [60, 80],
        }
    elif size == "passages":
        axes = {"from_passages": [3, 5, 7, 10], "passage": [1.0, 1.5, 2.0], "rank": [0.05, 0.2]}
    elif size == "named":
        axes = {"named": [0.0, 0.25, 0.5, 1.0, 2.0], "passage": [1.0, 1.5]}
    elif size == "facet":
        axes = {
            "facet": [0.0, 0.25, 0.5, 0.75, 1.0, 1.5],
            "comparative": [False, True],
            "focus": [1.5, 2.0],
            "semantic": [0.25, 0.5],
        }
    else:
        axes = {
            "semantic": [0.25, 0.5],
            "lexical": [0.25, 0.5],
            "focus": [1.0, 1.5, 2.0, 3.0],
            "figure": [0.3],
            "passage": [1.0, 1.5],
            "findings": [0.3, 0.5],
            "min_ratio": [0.3, 0.5],
        }
    keys = list(axes)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*axes.values())]


Asked = list[tuple[Any, Any, Any]]  # (gold question, Answer with 10 passages, query vector)


def ask_all(assistant: Assistant, questions: list[Any]) -> Asked:
    """Each question asked once (10 passages kept), with its query's vector."""
    asked = []
    for q in questions:
        query_answer = assistant.ask(q.question, k=10, history=q.history)
        qvec = assistant.query_encoder.embed_query(query_answer.query)
        asked.append((q, query_answer, qvec))
    return asked


def score_weights(
    assistant: Assistant, asked: Asked, weights: ComposerWeights
) -> tuple[float, float, int, int]:
    """answer_match, fragment rate, answers over 110 words and answerable questions, with the
    composer re-run on the asked questions' passages with `weights`."""
    index, settings = assistant.index, assistant.settings
    stem = settings.bm25_stemmer
    match = n_with = words_over = fragments = sentences = 0
    for q, ans, qvec in asked:
        if not q.answerable or not q.answers:
            continue
        n_with += 1
        if ans.abstained:
            continue
        text = compose_answer(
            ans.passages, tokenize(ans.query, stem), index.idf, lambda t: tokenize(t, stem),
            settings.answer_sentences, question=q.question, query_vector=qvec,
            unit_vectors=index.unit_vectors_of, labels=index.labels, weights=weights,
            named=index.named_sources(ans.query),
        )  # fmt: skip
        if not text:
            continue
        match += any(p.search(text) for p in q.patterns)
        parts = [s for s in text.split("] ") if s]
        sentences += len(parts)
        fragments += sum(is_fragment(s + "]") for s in parts)
        words_over += len(text.split()) > 110
    return match / n_with, fragments / max(1, sentences), words_over, n_with


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", default="dev", choices=("dev", "test", "all"))
    parser.add_argument(
        "--grid",
        default="small",
        choices=("small", "full", "facet", "length", "passages", "named", "ablation"),
    )
    parser.add_argument("--top", type=int, default=12, help="rows to print")
    parser.add_argument("--limit", type=int, default=Settings().max_per_source)
    parser.add_argument("--keep-above", type=float, default=Settings().diversity_keep_above)
    parser.add_argument("--no-retrieval", action="store_true", help="skip the per-source table")
    args = parser.parse_args()
    settings = Settings()
    assistant = Assistant(settings)
    assistant.load(rebuild=False)
    index = assistant.index
    questions = select_split(load_gold(DEFAULT_GOLD, set(index.sources)), args.split)
    k = settings.top_k
    print(f"machine: {machine()}")
    print(f"split: {args.split} ({len(questions)} questions)")
    for limit, above in (
        () if args.no_retrieval else LIMITS
    ):  # retrieval figures for each per-source limit
        assistant.settings = settings.model_copy(
            update={"max_per_source": limit, "diversity_keep_above": above}
        )
        records = [run_question(assistant, q, settings.mode, k) for q in questions]
        m = summarize(records)
        print(f"max_per_source={limit} keep_above={above}: " + "  ".join(
            f"{n}={m[n]}" for n in ("distinct_sources@5", "answer_recall@5", "source_recall@5",
                                    "mrr@10", "multi_turn_answer_recall@5")))  # fmt: skip
    # the composer on the passages of one limit
    settings = settings.model_copy(
        update={"max_per_source": args.limit, "diversity_keep_above": args.keep_above}
    )
    assistant.settings = settings
    asked = ask_all(assistant, questions)
    rows = []
    for params in grid(args.grid):
        weights = dataclasses.replace(ComposerWeights(), **params)
        match, frag, over, n_with = score_weights(assistant, asked, weights)
        rows.append((params, match, frag, over))
    if args.grid == "ablation":  # in the order of ABLATION, each row named
        print(f"composer ablation on {args.split} ({n_with} answerable questions with patterns)")
        for (name, _), (_, match, frag, _) in zip(ABLATION, rows, strict=True):
            print(f"answer_match={match:.4f} fragment_rate={frag:.3f}  {name}")
        return
    rows.sort(key=lambda r: -r[1])
    print(f"composer grid: {args.grid} ({len(rows)} weightings), max_per_source="
          f"{settings.max_per_source}")  # fmt: skip
    for params, match, frag, over in rows[: args.top]:
        print(f"answer_match={match:.4f} fragment_rate={frag:.3f} over_110_words={over}  {params}")


if __name__ == "__main__":
    main()
