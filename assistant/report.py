"""A self-contained HTML report of an evaluation result: tables, inline SVG plots, failures."""

from __future__ import annotations

import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .metrics import recall_at

ANSWER_KS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
.reg{color:#b00;font-weight:bold}.ok{color:#070}
.small{font-size:12px;color:#555}.fail td{text-align:left;vertical-align:top}
figure{display:inline-block;margin:0 1em 1em 0}
"""


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _plots(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(caption, inline SVG) for each plot of a gold result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "assistant-eval"  # stable ids: same input, same file
    out = []
    runs = result["runs"]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for mode, data in runs.items():
        records = [r for r in data["per_question"] if r["answerable"] and r["answers"]]
        ys = [recall_at([r["answer_rank"] for r in records], k) for k in ANSWER_KS]
        ax.plot(ANSWER_KS, ys, marker="o", label=mode)
    out.append(
        _figure(
            "Answer recall@k per mode",
            fig,
            ax,
            xlabel="k (passages)",
            ylabel="answer recall@k",
            ylim=(0, 1.02),
            title="Answer recall at k",
        )
    )

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for mode, data in runs.items():
        ax.hist([r["latency_ms"] for r in data["per_question"]], bins=30, alpha=0.5, label=mode)
    out.append(
        _figure(
            "Latency distribution",
            fig,
            ax,
            grid=False,
            xlabel="latency per question (ms)",
            ylabel="questions",
            title="Latency",
        )
    )

    fig, ax = plt.subplots(figsize=(5, 3.4))
    threshold = result.get("settings", {}).get("abstain_threshold")
    for mode, data in runs.items():
        rows = [r for r in data["sweep"]["rows"] if r["accuracy"] is not None]
        ax.plot([r["coverage"] for r in rows], [r["accuracy"] for r in rows], label=mode)
        if threshold is not None and rows:
            near = min(rows, key=lambda r: abs(r["threshold"] - threshold))
            ax.plot([near["coverage"]], [near["accuracy"]], "k*", markersize=10)
    out.append(
        _figure(
            "Coverage against accuracy as the threshold moves",
            fig,
            ax,
            xlabel="coverage (share of questions answered)",
            ylabel="accuracy of answered questions",
            title="Abstention threshold sweep (★ = setting)",
        )
    )

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for mode, data in runs.items():
        rows = data["sweep"]["rows"]
        ax.plot([r["threshold"] for r in rows],
                [r["balanced_accuracy"] if r["balanced_accuracy"] is not None else float("nan")
                 for r in rows], label=f"{mode} balanced acc.")  # fmt: skip
        ax.plot([r["threshold"] for r in rows], [r["coverage"] for r in rows], "--",
                label=f"{mode} coverage")  # fmt: skip
    if threshold is not None:
        ax.axvline(threshold, color="k", lw=0.8)
    out.append(
        _figure(
            "Balanced accuracy and coverage against the threshold",
            fig,
            ax,
            legend_size=7,
            ylim=(0, 1.02),
            title="Threshold sweep",
            xlabel="abstention threshold (best passage cosine similarity)",
        )
    )
    return out


def _figure(
    caption: str,
    fig: Any,
    ax: Any,
    grid: bool = True,
    legend_size: float | None = None,
    **labels: Any,
) -> tuple[str, str]:
    """A finished plot: axis labels and title set, grid and legend drawn, rendered to SVG."""
    ax.set(**labels)
    if grid:
        ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)
    return caption, _svg(fig)


def _metrics_table(per_mode: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in per_mode)
    rows = []
    for name in names:
        cells = "".join(f"<td>{_fmt(m.get(name))}</td>" for m in per_mode.values())
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"
    return html.escape(str(value))


def _comparison(rows: Sequence[Mapping[str, Any]], baseline: str) -> str:
    if not rows:
        return ""
    n_reg = sum(1 for r in rows if r["regression"])
    body = "".join(
        f"<tr{' class=reg' if r['regression'] else ''}><td>{html.escape(r['mode'])}</td>"
        f"<td>{html.escape(r['metric'])}</td><td>{_fmt(r['baseline'])}</td>"
        f"<td>{_fmt(r['current'])}</td><td>{r['delta']:+.4f}</td>"
        f"<td>{'REGRESSION' if r['regression'] else ''}</td></tr>"
        for r in rows
    )
    return (
        f"<h2>Against {html.escape(baseline)}: {n_reg} regression(s)</h2>"
        "<table><tr><th>mode</th><th>metric</th><th>baseline</th><th>current</th><th>delta</th>"
        f"<th></th></tr>{body}</table>"
    )


def _failures(result: Mapping[str, Any]) -> str:
    k = result["k"]
    parts = []
    for mode, data in result["runs"].items():
        rows = []
        for r in data["per_question"]:
            rank = r["first_hit_rank"]
            if r["answerable"] and not (rank is not None and rank <= k):
                why = "answer not in top k" if rank is None or rank > k else ""
                why = why + ("; abstained" if r["abstained"] else "")
            elif r["answerable"] and r["abstained"]:
                why = "abstained on an answerable question"
            elif not r["answerable"] and not r["abstained"]:
                why = "answered an unanswerable question"
            else:
                continue
            got = "<br>".join(
                f"[{p['rank']}] <b>{html.escape(p['source'])}</b> "
                f"(sim {p['similarity']:.2f}): {html.escape(p['snippet'])}"
                for p in r["retrieved"]
            )
            want = html.escape(", ".join(r["expected_sources"]) or "—")
            pats = html.escape(" | ".join(r["answers"]) or "—")
            rows.append(
                f"<tr class=fail><td>{html.escape(r['id'])}<br><span class=small>"
                f"{html.escape(str(r['topic']))}</span></td><td>{html.escape(r['question'])}"
                f"<br><span class=small>query: {html.escape(r['query'])}</span></td>"
                f"<td>{html.escape(why.strip('; '))}<br><span class=small>expected: {want}"
                f"<br>answers: {pats}<br>first hit rank: {rank}, best sim "
                f"{r['max_similarity']:.2f}</span></td><td class=small>{got}</td></tr>"
            )
        parts.append(
            f"<h3>{html.escape(mode)}: {len(rows)} failed question(s)</h3>"
            "<table><tr><th>id</th><th>question</th><th>why</th><th>retrieved instead</th></tr>"
            f"{''.join(rows)}</table>"
        )
    return "<h2>Failed questions</h2>" + "".join(parts)


def render_html(result: Mapping[str, Any]) -> str:
    """The report page for a gold or BEIR result (no external resources)."""
    from .evaluate import GOLD_METRICS_ORDER, run_metrics

    per_mode = run_metrics(result)
    comparison = result.get("comparison") or {}
    if result.get("kind") == "beir":
        title = f"BEIR {result['dataset']} ({result['split']})"
        body = _metrics_table(per_mode, ("ndcg@10", "recall@100", "mrr@10", "latency_ms_p50"))
        body += _comparison(comparison.get("rows", []), comparison.get("baseline", ""))
    else:
        title = f"Gold evaluation: {result['gold']}"
        body = (
            f"<p>k = {result['k']}, history = {result['history']}, "
            f"abstain_threshold = {result['settings']['abstain_threshold']}</p>"
            + _metrics_table(per_mode, GOLD_METRICS_ORDER)
            + _comparison(comparison.get("rows", []), comparison.get("baseline", ""))
            + "<h2>Plots</h2>"
            + "".join(
                f"<figure>{svg}<figcaption class=small>{html.escape(cap)}</figcaption></figure>"
                for cap, svg in _plots(result)
            )
            + _sweep_summary(result)
            + _failures(result)
        )
    meta = {key: result.get(key) for key in ("date", "libraries", "index_manifest")}
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}<h2>Provenance</h2><pre class=small>"
        f"{html.escape(json.dumps(meta, indent=1, default=str))}</pre></body></html>"
    )


def _sweep_summary(result: Mapping[str, Any]) -> str:
    items = []
    for mode, data in result["runs"].items():
        best = data["sweep"].get("best")
        if best:
            items.append(
                f"<li>{html.escape(mode)}: best threshold {best['threshold']:.2f} — balanced "
                f"accuracy {best['balanced_accuracy']:.3f}, coverage {best['coverage']:.3f}, "
                f"false abstain rate {_fmt(best['false_abstain_rate'])}, abstain recall "
                f"{_fmt(best['abstain_recall'])}</li>"
            )
    return f"<h2>Abstention threshold</h2><ul>{''.join(items)}</ul>" if items else ""


def write_report(result: Mapping[str, Any], folder: Path) -> Path:
    """Write `report.html` and `result.json` into `folder`; the path of the HTML file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    path = folder / "report.html"
    path.write_text(render_html(result), encoding="utf-8")
    return path
