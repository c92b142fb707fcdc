"""In-process `Assistant.ask` latency over 100 questions with a warm model, per embedding backend.

Each backend gets its own index folder (built first when missing) so the comparison never
rebuilds the project's index. Also prints the CPU time per question, which moves less than wall
time when other processes share the machine.
Target: p50 <= 30 ms (torch), <= 12 ms (ONNX backends).
Usage: .venv/bin/python bench/ask_latency.py [--backends torch,onnx,onnx-int8] [--mode hybrid]
"""

from __future__ import annotations

import argparse
import os
import time

from _common import bench_index_dir, gold_questions, machine, parse_backends, percentile

from assistant import Assistant, Settings


def measure(backend: str, mode: str | None, n: int) -> dict[str, float | str]:
    settings = Settings(embedding_backend=backend, index_dir=bench_index_dir(backend))
    assistant = Assistant(settings)
    assistant.load()
    questions = gold_questions(n)
    for q in questions[:5]:  # warm-up
        assistant.ask(q, mode=mode)
    times: list[float] = []
    embed: list[float] = []
    cpu0 = time.process_time()
    for q in questions:
        t0 = time.perf_counter()
        ans = assistant.ask(q, mode=mode)
        times.append((time.perf_counter() - t0) * 1000)
        embed.append(ans.timings_ms["embed"])
    cpu = (time.process_time() - cpu0) * 1000 / len(questions)
    status = assistant.status()
    return {"backend": backend, "p50": percentile(times, 50), "p95": percentile(times, 95),
            "max": max(times), "embed": percentile(embed, 50), "cpu": cpu,
            "corpus": f"{status['sources']} sources, {status['chunks']} chunks"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="torch,onnx,onnx-int8")
    parser.add_argument("--mode", default=None, help="hybrid, dense or bm25 (default: setting)")
    parser.add_argument("-n", type=int, default=100)
    args = parser.parse_args()
    rows = [measure(b, args.mode, args.n) for b in parse_backends(args.backends)]
    print(f"machine: {machine()}")
    print(f"corpus: {rows[0]['corpus']}; mode {args.mode or Settings().mode}; {args.n} questions")
    print(
        f"{'backend':10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'embed p50':>10} {'CPU/ask':>8}"
    )
    for r in rows:
        print(f"{r['backend']:10} {r['p50']:8.1f} {r['p95']:8.1f} {r['max']:8.1f} "
              f"{r['embed']:10.2f} {r['cpu']:8.1f}")  # fmt: skip
    for r in rows:
        target = 30 if r["backend"] == "torch" else 12
        verdict = "PASS" if float(r["p50"]) <= target else "FAIL"
        print(f"{r['backend']}: target p50 <= {target} ms: {verdict}")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
