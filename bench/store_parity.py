"""The Milvus Lite store beside the local store on the bundled corpus, in one run.

One index is built (default embedding backend), then published to Milvus Lite without embedding
again. Printed: gold answer_recall@5 and source_recall@5 (hybrid) for the local store, Milvus
with client-side fusion (the default: the same fusion as local) and Milvus with server-side
hybrid_search (WeightedRanker, arctan normalisation); the top-10 chunk overlap per gold question
against the local store; warm `Assistant.ask` p50/p95 over the gold questions (interleaved); and
cold `assistant ask --json` (a new process: import, model, index, Milvus Lite start), median of
`--runs`, interleaved.
Targets: recall within 0.02 of local; latency and cold start reported as a ratio.
Usage: .venv/bin/python bench/store_parity.py [--runs 5] [--questions 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, gold_questions, machine, percentile

from assistant import Assistant, Settings
from assistant.evaluate import evaluate
from assistant.gold import load_gold

QUESTION = "What is the survival after hepatic resection of neuroendocrine liver metastases?"


def overlap(a: Assistant, b: Assistant, questions: list[str], k: int = 10) -> list[float]:
    """|top-k chunk ids of a ∩ those of b| / k per question (hybrid search, no answer stage)."""
    out = []
    for q in questions:
        top_a = {p.chunk.id for p in a.search(q, k=k)}
        top_b = {p.chunk.id for p in b.search(q, k=k)}
        out.append(len(top_a & top_b) / k)
    return out


def warm_latency(assistants: dict[str, Assistant], questions: list[str]) -> dict[str, Any]:
    times: dict[str, list[float]] = {name: [] for name in assistants}
    for q in questions[:5]:
        for a in assistants.values():
            a.ask(q)
    for q in questions:  # interleaved: a busy moment hits every store alike
        for name, a in assistants.items():
            t0 = time.perf_counter()
            a.ask(q)
            times[name].append((time.perf_counter() - t0) * 1000)
    return {name: {"p50": percentile(t, 50), "p95": percentile(t, 95)}
            for name, t in times.items()}  # fmt: skip


def cold_start(envs: dict[str, dict[str, str]], index: Path, runs: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "assistant", "ask", "--json", "--no-rebuild", "--index",
           str(index), QUESTION]  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(runs + 1):  # the first round warms the file cache and is dropped
        for name, env in envs.items():
            t0 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
            if out.returncode != 0:
                raise SystemExit(f"{name}: {out.stderr}")
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t[1:]) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="cold starts per store")
    parser.add_argument("--questions", type=int, default=100, help="warm asks per store")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="store-parity-"))
    base = Settings(index_dir=tmp / "index")
    milvus_uri = str(tmp / "milvus.db")
    local = Assistant(base)
    t0 = time.perf_counter()
    local.load()
    build_local = time.perf_counter() - t0
    ms = base.model_copy(update={"store": "milvus", "milvus_uri": milvus_uri})
    milvus = Assistant(ms, embedder=local.embedder)
    t0 = time.perf_counter()
    milvus.load()  # publishes the local index: nothing is embedded again
    publish = time.perf_counter() - t0
    server = Assistant(ms.model_copy(update={"milvus_hybrid": "server"}), embedder=local.embedder)
    server.load()
    stores = {"local": local, "milvus (client fusion)": milvus, "milvus (server hybrid)": server}
    metrics = {}
    for name, a in stores.items():
        m = evaluate(a, modes=("hybrid",))["metrics"]
        metrics[name] = {k: m[k] for k in ("answer_recall@5", "source_recall@5", "n_questions")}
    gold = [q.question for q in load_gold(ROOT / "corpus" / "gold" / "questions.jsonl")]
    overlaps = {name: overlap(local, a, gold) for name, a in stores.items() if name != "local"}
    latency = warm_latency({"local": local, "milvus (client fusion)": milvus},
                           gold_questions(args.questions))  # fmt: skip
    for a in stores.values():
        a.store.close()  # a Milvus Lite file serves one process: let the cold starts open it
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    cold = cold_start({"local": env,
                       "milvus": env | {"ASSISTANT_STORE": "milvus",
                                        "ASSISTANT_MILVUS_URI": milvus_uri}},
                      tmp / "index", args.runs)  # fmt: skip
    result = {
        "machine": machine(),
        "corpus": {"sources": len(local.index.sources), "chunks": len(local.index.chunks)},
        "build_local_s": round(build_local, 2),
        "publish_milvus_s": round(publish, 2),
        "metrics": metrics,
        "top10_overlap": {
            name: {
                "mean": round(statistics.mean(v), 4),
                "min": min(v),
                "identical_top10": sum(1 for x in v if x == 1.0),
                "questions": len(v),
                "per_question": [round(x, 2) for x in v],
            }
            for name, v in overlaps.items()
        },  # fmt: skip
        "ask_ms": latency,
        "cold_ask_s": cold,
        "load_average": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"machine: {result['machine']}")
    print(f"corpus: {result['corpus']['sources']} sources, {result['corpus']['chunks']} chunks; "
          f"local build {build_local:.1f} s, publish to Milvus Lite {publish:.1f} s")  # fmt: skip
    print(f"{'store':26} answer_recall@5 source_recall@5 (n)")
    for name, m in metrics.items():
        print(f"{name:26} {m['answer_recall@5']:15.4f} {m['source_recall@5']:15.4f} "
              f"({m['n_questions']})")  # fmt: skip
    for name, o in result["top10_overlap"].items():
        print(f"top-10 chunk overlap with local, {name}: mean {o['mean']:.4f}, min {o['min']:.1f},"
              f" identical top 10 on {o['identical_top10']}/{o['questions']} questions")  # fmt: skip
    for name, t in latency.items():
        print(f"warm ask {name:24}: p50 {t['p50']:.1f} ms, p95 {t['p95']:.1f} ms")
    ratio = latency["milvus (client fusion)"]["p50"] / latency["local"]["p50"]
    print(f"warm ask p50 ratio milvus/local: {ratio:.2f}")
    print(f"cold ask (median of {args.runs}): local {cold['local']:.2f} s, milvus "
          f"{cold['milvus']:.2f} s, ratio {cold['milvus'] / cold['local']:.2f}")  # fmt: skip
    print(f"load average (1 min) at the end: {result['load_average']:.2f}")


if __name__ == "__main__":
    main()
