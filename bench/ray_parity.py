"""Embedding on Ray beside the local build, on the bundled corpus, in one run.

Embeds what a build embeds (every chunk text and every answer sentence) with the local embedder
on one thread (the rate per core that docs/scale.md's capacity arithmetic uses), then with
`RayEmbedder` on a local Ray (`--actors` actors of one CPU each), and compares the vectors.
Target: max absolute difference <= 1e-4.
Usage: .venv/bin/python bench/ray_parity.py [--actors 2] [--backend onnx-int8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
from _common import ROOT, corpus_chunks, machine

from assistant import Settings
from assistant.embed import load_embedder
from assistant.lexical import tokenize
from assistant.ray_embed import RayEmbedder, start_ray
from assistant.sentences import answer_units


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = Settings(corpus_dir=ROOT / "corpus", embedding_backend=args.backend,
                        ray_actors=args.actors, ray_cpus_per_actor=1.0)  # fmt: skip
    docs, chunks, texts = corpus_chunks(ROOT / "corpus", settings)
    sentences = [u.text for c in chunks for u in answer_units(c.text)]
    local = load_embedder(settings.embedding_model, settings.device, settings.batch_size,
                          query_threads=1, index_threads=1, backend=args.backend,
                          cache_dir=settings.onnx_cache_dir)  # fmt: skip
    local.embed_documents(texts[:32])  # warm-up
    t0 = time.perf_counter()
    want_chunks = local.embed_documents(texts)
    t1 = time.perf_counter()
    want_sentences = local.embed_documents(sentences)
    t2 = time.perf_counter()
    ray = start_ray(None, settings)
    t3 = time.perf_counter()
    remote = RayEmbedder(local, settings)
    got_chunks = remote.embed_documents(texts)
    t4 = time.perf_counter()
    got_sentences = remote.embed_documents(sentences)
    t5 = time.perf_counter()
    ray.shutdown()
    words = float(np.mean([len(t.split()) for t in texts]))
    result: dict[str, Any] = {
        "machine": machine(),
        "backend": args.backend,
        "chunks": len(texts),
        "mean_words_per_chunk": round(words, 1),
        # what the Milvus store keeps per chunk as BM25 text (docs/scale.md, capacity)
        "mean_bm25_text_bytes": round(
            float(np.mean([len(" ".join(tokenize(t)).encode()) for t in texts])), 1
        ),
        "sentences": len(sentences),
        "local_1_thread_chunks_per_s": round(len(texts) / (t1 - t0), 2),
        "local_1_thread_sentences_per_s": round(len(sentences) / (t2 - t1), 2),
        "ray_start_s": round(t3 - t2, 2),
        "ray_actors": args.actors,
        "ray_chunks_per_s": round(len(texts) / (t4 - t3), 2),
        "ray_sentences_per_s": round(len(sentences) / (t5 - t4), 2),
        "max_abs_diff_chunks": float(np.max(np.abs(got_chunks - want_chunks))),
        "max_abs_diff_sentences": float(np.max(np.abs(got_sentences - want_sentences))),
        "load_average": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value}")
    worst = max(result["max_abs_diff_chunks"], result["max_abs_diff_sentences"])
    print(f"max |ray - local| <= 1e-4: {'PASS' if worst <= 1e-4 else 'FAIL'} ({worst:.2e})")


if __name__ == "__main__":
    main()
