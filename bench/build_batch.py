"""Full build of the bundled corpus per `build_batch_chunks`: throughput, peak memory, and how far
the vectors move from a build in one batch.

Each batch size builds in its own process (`assistant index --force` with the default model;
peak RSS is that process's). With the int8 ONNX model the vectors depend a little on which texts
share a model batch (activations are quantised per batch), so batches smaller than the corpus
give slightly different vectors: the minimum cosine of each chunk and answer-sentence vector to
those of the largest batch size is printed.
Usage: .venv/bin/python bench/build_batch.py [--sizes 64,256,1024] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT, machine

sys.path.insert(0, str(ROOT))


def build_once(size: int, index_dir: Path) -> None:
    """The child: one forced build; prints its figures as JSON."""
    from assistant import Assistant, Settings

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    s = Settings(corpus_dir=ROOT / "corpus", index_dir=index_dir, build_batch_chunks=size)
    report = Assistant(s).build(force=True)
    print(json.dumps({"batch_chunks": size, "chunks": report.chunks,
                      "seconds": round(time.perf_counter() - t0, 1),
                      "cpu_s": round(time.process_time() - cpu0, 1),
                      "chunks_per_s": round(report.chunks / (time.perf_counter() - t0), 2),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                           / 1024)}))  # fmt: skip


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1))) if len(a) else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256,1024")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        build_once(args.child, args.index)
        return
    from assistant.index import load_index

    sizes = sorted(int(x) for x in args.sizes.split(","))
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            index = Path(tmp) / f"index-{size}"
            out = subprocess.run([sys.executable, __file__, "--child", str(size), "--index",
                                  str(index)], env=env, check=True, capture_output=True,
                                 text=True)  # fmt: skip
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        ref = load_index(Path(tmp) / f"index-{sizes[-1]}")
        ref_vectors, ref_units = np.asarray(ref.vectors), np.asarray(ref.unit_vectors)
        for row in rows:
            other = load_index(Path(tmp) / f"index-{row['batch_chunks']}")
            row["min_cosine_chunks"] = round(min_cosine(np.asarray(other.vectors), ref_vectors), 5)
            row["min_cosine_sentences"] = round(
                min_cosine(np.asarray(other.unit_vectors), ref_units), 5
            )
            del other
    if args.json:
        print(json.dumps({"rows": rows, "machine": machine(),
                          "load_average": round(os.getloadavg()[0], 2)}))  # fmt: skip
        return
    print(f"machine: {machine()}; bundled corpus, {rows[0]['chunks']} chunks")
    print(f"{'batch':>6} {'seconds':>8} {'CPU s':>6} {'chunks/s':>9} {'peak RSS MB':>12} "
          f"{'min cos chunks':>15} {'min cos sentences':>18}")  # fmt: skip
    for r in rows:
        print(f"{r['batch_chunks']:>6} {r['seconds']:>8} {r['cpu_s']:>6} {r['chunks_per_s']:>9} "
              f"{r['peak_rss_mb']:>12} {r['min_cosine_chunks']:>15} "
              f"{r['min_cosine_sentences']:>18}")  # fmt: skip
    print(f"cosines against the build with batch {sizes[-1]}; load average (1 min) at the end: "
          f"{os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
