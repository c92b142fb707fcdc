"""Index build throughput (chunks/s) beside bare `model.encode` on the same chunks, in one run.

Target: build throughput >= 0.85 x bare encode throughput.
Usage: .venv/bin/python bench/build_throughput.py [--corpus corpus]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine

from assistant import Assistant, Settings
from assistant.chunk import chunk_documents, embedding_text
from assistant.corpus import load_corpus
from assistant.embed import load_embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    args = parser.parse_args()
    settings = Settings(corpus_dir=args.corpus)
    embedder = load_embedder(settings.embedding_model, settings.device, settings.batch_size)
    docs, _ = load_corpus(args.corpus)
    chunks = chunk_documents(docs, settings.chunk_max_tokens, settings.chunk_overlap_tokens)
    titles = {d.id: d.title for d in docs}
    texts = [embedding_text(c, titles[c.doc_id]) for c in chunks]
    model = embedder.model  # type: ignore[attr-defined]
    import os

    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # bare encode gets every core, as a build does
    model.encode(texts[:32], batch_size=settings.batch_size)  # warm-up

    t0 = time.perf_counter()
    model.encode(texts, batch_size=settings.batch_size, normalize_embeddings=True)
    bare = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        s = settings.model_copy(update={"index_dir": Path(tmp) / "index"})
        t0 = time.perf_counter()
        report = Assistant(s, embedder=embedder).build(force=True)
        full = time.perf_counter() - t0
    assert report.chunks == len(chunks)
    bare_rate, build_rate = len(chunks) / bare, len(chunks) / full
    print(f"machine: {machine()}")
    print(f"corpus: {len(docs)} sources, {len(chunks)} chunks")
    print(f"bare model.encode: {bare:.1f} s, {bare_rate:.1f} chunks/s")
    print(f"assistant build:   {full:.1f} s, {build_rate:.1f} chunks/s (load, chunk, embed, "
          "BM25, save)")  # fmt: skip
    ratio = build_rate / bare_rate
    print(f"ratio build/bare: {ratio:.2f} (target >= 0.85: {'PASS' if ratio >= 0.85 else 'FAIL'})")


if __name__ == "__main__":
    main()
