"""In-process `Assistant.ask` latency over 100 questions with a warm model, on the bundled corpus.

Target: p50 <= 30 ms. Usage: .venv/bin/python bench/ask_latency.py [--mode hybrid] [-n 100]
"""

from __future__ import annotations

import argparse
import time

from _common import gold_questions, machine, percentile

from assistant import Assistant, Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", default=None, help="hybrid, dense or bm25 (default: setting)")
    parser.add_argument("-n", type=int, default=100)
    args = parser.parse_args()
    assistant = Assistant(Settings())
    assistant.load()
    questions = gold_questions(args.n)
    for q in questions[:5]:  # warm-up
        assistant.ask(q, mode=args.mode)
    times: list[float] = []
    stages: dict[str, list[float]] = {}
    for q in questions:
        t0 = time.perf_counter()
        ans = assistant.ask(q, mode=args.mode)
        times.append((time.perf_counter() - t0) * 1000)
        for k, v in ans.timings_ms.items():
            stages.setdefault(k, []).append(v)
    status = assistant.status()
    print(f"machine: {machine()}")
    print(f"corpus: {status['sources']} sources, {status['chunks']} chunks; "
          f"mode {args.mode or assistant.settings.mode}; {len(times)} questions")  # fmt: skip
    p50, p95 = percentile(times, 50), percentile(times, 95)
    print(f"ask latency: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms")
    for k, v in stages.items():
        print(f"  stage {k}: p50 {percentile(v, 50):.2f} ms")
    print(f"target p50 <= 30 ms: {'PASS' if p50 <= 30 else 'FAIL'}")


if __name__ == "__main__":
    main()
