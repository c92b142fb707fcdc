"""Index build throughput (chunks/s) per embedding backend, beside the bare encoder on the same
chunks, in one run.

For each backend: the embedder's own `embed_documents` on the chunk texts (bare), then a full
`Assistant.build(force=True)` (read, chunk, embed chunks and their answer sentences, BM25, save)
with the same loaded embedder. CPU seconds are printed too: they move less than wall time when
other processes share the machine.
Targets: build >= 0.85 x bare encode; ONNX builds >= 1.8 x the torch build's chunks/s.
Usage: .venv/bin/python bench/build_throughput.py [--backends torch,onnx,onnx-int8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import ROOT, corpus_chunks, machine, parse_backends

from assistant import Assistant, Settings
from assistant.embed import load_embedder
from assistant.sentences import answer_units


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--backends", default="torch,onnx,onnx-int8")
    args = parser.parse_args()
    settings = Settings(corpus_dir=args.corpus)
    docs, chunks, texts = corpus_chunks(args.corpus, settings)
    # what a build embeds: the chunks and their answer sentences (sentences.answer_units)
    sentences = [u.text for c in chunks for u in answer_units(c.text)]
    rows = []
    for backend in parse_backends(args.backends):
        s = settings.model_copy(update={"embedding_backend": backend})
        embedder = load_embedder(s.embedding_model, s.device, s.batch_size, backend=backend,
                                 cache_dir=s.onnx_cache_dir)  # fmt: skip
        embedder.embed_documents(texts[:32])  # warm-up
        w0, c0 = clock()
        embedder.embed_documents(texts)
        w1, c1 = clock()
        embedder.embed_documents(sentences)
        w_s, c_s = clock()
        with tempfile.TemporaryDirectory() as tmp:
            s = s.model_copy(update={"index_dir": Path(tmp) / "index"})
            report = Assistant(s, embedder=embedder).build(force=True)
            w2, c2 = clock()
        assert report.chunks == len(chunks)
        rows.append((backend, len(chunks) / (w1 - w0), c1 - c0, len(chunks) / (w2 - w_s), c2 - c_s,
                     len(chunks) / (w_s - w0)))  # fmt: skip
    print(f"machine: {machine()}")
    print(f"corpus: {len(docs)} sources, {len(chunks)} chunks, {len(sentences)} answer sentences; "
          f"{os.cpu_count()} threads for builds")  # fmt: skip
    print(f"{'backend':10} {'bare chunks/s':>14} {'bare CPU s':>11} {'build chunks/s':>15} "
          f"{'build CPU s':>12} {'build/bare':>11} {'vs torch':>9} {'build/bare+sent':>16}")  # fmt: skip
    torch_rate = next((r[3] for r in rows if r[0] == "torch"), None)
    for backend, bare, bare_cpu, build, build_cpu, bare_all in rows:
        vs = f"{build / torch_rate:.2f}x" if torch_rate else "-"
        print(f"{backend:10} {bare:14.1f} {bare_cpu:11.1f} {build:15.1f} {build_cpu:12.1f} "
              f"{build / bare:11.2f} {vs:>9} {build / bare_all:16.2f}")  # fmt: skip
    print(
        "build/bare: against encoding the chunks alone; build/bare+sent: against encoding "
        "the same texts a build embeds (chunks and answer sentences)"
    )
    for backend, _, _, build, _, bare_all in rows:
        verdict = "PASS" if build / bare_all >= 0.85 else "FAIL"
        line = f"{backend}: build >= 0.85 x bare encode of the same texts: {verdict}"
        if torch_rate and backend != "torch":
            line += f"; build >= 1.8 x torch: {'PASS' if build / torch_rate >= 1.8 else 'FAIL'}"
        print(line)
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
