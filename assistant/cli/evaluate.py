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
from ..settings import Settings
from ..types import MODES
from .app import app
from .common import KOpt, console, progress_display, with_settings

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


def corpus_gold(corpus_dir: Path) -> Path:
    """The gold questions that come with a corpus: `<corpus>/gold/questions.jsonl`."""
    own = corpus_dir / "gold" / DEFAULT_GOLD.name
    if not own.is_file():
        raise InputError(f"the corpus {corpus_dir} has no gold questions ({own} not found)",
                         "pass --gold FILE, or write that file (docs/evaluation.md)")  # fmt: skip
    return own


@app.command("eval")
@with_settings()
def eval_cmd(
    settings: Settings,
    gold: Annotated[
        Path | None,
        typer.Option(
            "--gold",
            help="Gold questions (JSONL) [default: the corpus's gold/questions.jsonl].",
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
        list[Path] | None,
        typer.Option(
            "--beir",
            help="Evaluate on a BEIR dataset folder instead of the gold set (repeat for several).",
        ),
    ] = None,
    beir_all: Annotated[
        Path | None,
        typer.Option(
            "--beir-all",
            help="Evaluate on every BEIR dataset folder in this folder, in one table.",
            show_default=False,
        ),
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
) -> int:
    """Measure retrieval and abstention on the gold questions or a BEIR benchmark."""
    if history not in HISTORY_MODES:
        raise InputError(f"unknown --history '{history}'", "use rewrite or last")
    base = load_result(baseline) if baseline else None
    beir_sets = beir_folders(list(beir or []), beir_all)
    if len(beir_sets) > 1 and (base is not None or report is not None):
        raise InputError("--compare and --report take one BEIR dataset",
                         "pass a single --beir folder")  # fmt: skip
    modes = _modes(mode, list(MODES) if beir_sets else [settings.mode])
    if not beir_sets:
        gold = gold or corpus_gold(settings.corpus_dir)
        load_gold(gold)  # fail on a bad file before loading the model
    show = sys.stderr.isatty() and not json_out
    result: dict[str, Any]
    with progress_display(show) as progress:
        assistant = Assistant(settings, progress=progress)
        if beir_sets:
            from ..beir import FUSIONS, evaluate_beir

            fusions = FUSIONS if mode in (None, "all") else ()
            results = [evaluate_beir(folder, settings, assistant.embedder,
                                     modes=modes, split=split or "test",
                                     cache_dir=cache or settings.beir_cache_dir,
                                     progress=progress, fusions=fusions)
                       for folder in beir_sets]  # fmt: skip
            result = results[0] if len(results) == 1 else {"kind": "beir-sets", "sets": results}
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


def beir_folders(folders: list[Path], parent: Path | None) -> list[Path]:
    """The --beir folders, then every dataset folder (holding corpus.jsonl) in --beir-all."""
    out = list(folders)
    if parent is not None:
        if not parent.is_dir():
            raise InputError(f"--beir-all folder {parent} not found", "pass a folder of BEIR sets")
        found = sorted(p for p in parent.iterdir() if (p / "corpus.jsonl").is_file())
        if not found:
            raise InputError(f"no BEIR dataset in {parent}",
                             "each dataset is a folder holding corpus.jsonl")  # fmt: skip
        out += found
    return out


def _beir_sets_table(results: list[dict[str, Any]]) -> Table:
    """One row per dataset and run (dense, BM25, each fusion)."""
    table = Table(title="BEIR (" + ", ".join(
        f"{r['dataset']} {r['split']}: {r['n_queries']} queries" for r in results) + ")")  # fmt: skip
    for col in ("dataset", "run", *BEIR_COLUMNS):
        table.add_column(col, justify="left" if col in ("dataset", "run") else "right")
    for r in results:
        fusion = r["settings"].get("fusion")
        runs = run_metrics(r)
        order = [m for m in ("dense", "bm25") if m in runs] + [m for m in runs if "hybrid" in m]
        for name in order:
            metrics = runs[name]
            label = f"hybrid ({fusion}, default)" if name == "hybrid" else name
            table.add_row(r["dataset"], label, *(_fmt(metrics.get(c)) for c in BEIR_COLUMNS))
    return table


def _print(result: dict[str, Any]) -> None:
    if result.get("kind") == "beir-sets":
        console.print(_beir_sets_table(result["sets"]))
        return
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
