"""`assistant eval`: run the gold question set or a BEIR dataset and show the figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..assistant import Assistant
from ..errors import InputError
from ..evaluate import (
    DEFAULT_GOLD,
    HISTORY_MODES,
    compare,
    evaluate,
    load_gold,
    load_result,
    run_metrics,
)
from ..types import MODES
from .app import app
from .common import (
    CorpusOpt,
    DebugOpt,
    IndexOpt,
    KOpt,
    console,
    guarded,
    progress_display,
    settings_from,
)

GOLD_COLUMNS = (
    "answer_recall@1", "answer_recall@3", "answer_recall@5", "answer_recall@10",
    "source_recall@5", "source_recall@10", "mrr@10", "ndcg@10", "multi_turn_answer_recall@5",
    "multi_turn_source_recall@5", "answer_match", "answer_words_p50", "answer_words_p95",
    "answer_fragment_rate", "distinct_sources@5", "abstain_precision",
    "abstain_recall", "false_abstain_rate", "latency_ms_p50", "latency_ms_p95", "n_questions",
)  # fmt: skip
BEIR_COLUMNS = ("ndcg@10", "recall@100", "mrr@10", "latency_ms_p50")


def _modes(mode: str | None, default: list[str]) -> list[str]:
    if mode is None:
        return default
    if mode == "all":
        return list(MODES)
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}'", f"use one of: {', '.join(MODES)}, all")
    return [mode]


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}" if value >= 10 else f"{value:.3f}"
    return str(value)


def _table(title: str, per_mode: dict[str, dict[str, Any]], columns: tuple[str, ...]) -> Table:
    """Metrics as rows, modes side by side as columns."""
    table = Table(title=title)
    table.add_column("metric")
    for mode in per_mode:
        table.add_column(mode, justify="right")
    for name in columns:
        table.add_row(name, *(_fmt(m.get(name)) for m in per_mode.values()))
    return table


def _compare_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Against the baseline (regressions in red)")
    for col in ("mode", "metric", "baseline", "current", "delta", ""):
        table.add_column(
            col, justify="right" if col in ("baseline", "current", "delta") else "left"
        )
    for r in rows:
        mark = "[bold red]REGRESSION[/]" if r["regression"] else ""
        delta = f"{r['delta']:+.4f}"
        table.add_row(r["mode"], r["metric"], _fmt(r["baseline"]), _fmt(r["current"]),
                      f"[red]{delta}[/]" if r["regression"] else delta, mark)  # fmt: skip
    return table


@app.command("eval")
def eval_cmd(
    gold: Annotated[
        Path | None,
        typer.Option(
            "--gold", help="Gold questions (JSONL) [default: corpus/gold/questions.jsonl]."
        ),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            help="hybrid, dense, bm25 or all (side by side) [default: setting; all with --beir].",
        ),  # fmt: skip
    ] = None,
    k: KOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result JSON.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write report.html and result.json here.")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--compare", help="An earlier result JSON: show deltas, mark regressions."),
    ] = None,
    history: Annotated[
        str,
        typer.Option(
            "--history",
            help="Multi-turn cases: rewrite the follow-up with its history, "
            "or use the last message alone (last).",
        ),  # fmt: skip
    ] = "rewrite",
    beir: Annotated[
        Path | None,
        typer.Option("--beir", help="Evaluate on a BEIR dataset folder instead of the gold set."),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="Gold set: all, dev or test half (fixed by a hash of the id) [default: all]. "
            "BEIR: the qrels split [default: test].",
            show_default=False,
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache", help="Where BEIR indexes are cached [default: setting].", show_default=False
        ),  # fmt: skip
    ] = None,
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="Exit 2 when --compare finds one.")
    ] = False,
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Measure retrieval and abstention on the gold questions or a BEIR benchmark."""

    def run() -> int:
        if history not in HISTORY_MODES:
            raise InputError(f"unknown --history '{history}'", "use rewrite or last")
        settings = settings_from(corpus, index, debug=debug)
        base = load_result(baseline) if baseline else None
        modes = _modes(mode, list(MODES) if beir is not None else [settings.mode])
        if beir is None:
            load_gold(gold or DEFAULT_GOLD)  # fail on a bad file before loading the model
        show = sys.stderr.isatty() and not json_out
        with progress_display(show) as progress:
            assistant = Assistant(settings, progress=progress)
            if beir is not None:
                from ..beir import evaluate_beir

                result = evaluate_beir(beir, settings, assistant.embedder,
                                       modes=modes, split=split or "test",
                                       cache_dir=cache or settings.beir_cache_dir,
                                       progress=progress)  # fmt: skip
            else:
                assistant.load()
                result = evaluate(assistant, gold, modes=modes, k=k, history=history,
                                  progress=progress, split=split or "all")  # fmt: skip
        rows = compare(result, base) if base is not None else []
        if base is not None:
            result["comparison"] = {"baseline": str(baseline), "rows": rows}
        if report is not None:
            from ..report import write_report

            path = write_report(result, report)
            print(f"report: {path}", file=sys.stderr)
        if json_out:
            sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        else:
            _print(result)
            if rows:
                console.print(_compare_table(rows))
        return 2 if fail_on_regression and any(r["regression"] for r in rows) else 0

    code = guarded(debug, run)
    if code:
        raise typer.Exit(code)


def _print(result: dict[str, Any]) -> None:
    per_mode = run_metrics(result)
    if result.get("kind") == "beir":
        title = (f"BEIR {result['dataset']} ({result['split']}: {result['n_queries']} queries, "
                 f"{result['n_documents']} documents)")  # fmt: skip
        console.print(_table(title, per_mode, BEIR_COLUMNS))
        return
    title = (f"Gold set {result['gold']} ({result.get('split', 'all')}, k={result['k']}, "
             f"history={result['history']})")  # fmt: skip
    console.print(_table(title, per_mode, GOLD_COLUMNS))
    for mode, data in result["runs"].items():
        best = data["sweep"]["best"]
        if best:
            console.print(
                f"{mode}: abstention sweep suggests threshold {best['threshold']:.2f} "
                f"(abstains on {best['abstain_recall']:.0%} of unanswerable, "
                f"{best['false_abstain_rate']:.0%} of answerable questions); the setting is "
                f"{result['settings']['abstain_threshold']:.2f}",
                style="dim",
            )
