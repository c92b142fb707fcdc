"""How close the ONNX backends' vectors are to torch's: cosine per text on the corpus chunks (the
texts the index embeds) and on the gold questions.

Target: cosine between torch and onnx-int8 >= 0.99 on the corpus chunks (min and mean printed).
--recipes also compares int8 quantisation recipes (cosine to the float32 ONNX model, CPU seconds
to encode the chunks on one thread): the evidence behind the recipe in assistant/embed_onnx.py.
Usage: .venv/bin/python bench/onnx_quality.py [--backends onnx,onnx-int8] [--recipes]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import ROOT, corpus_chunks, gold_questions, machine, parse_backends

from assistant import Settings
from assistant.embed import load_embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--backends", default="onnx,onnx-int8")
    parser.add_argument("--recipes", action="store_true", help="compare int8 recipes too")
    args = parser.parse_args()
    s = Settings(corpus_dir=args.corpus)
    _, _, texts = corpus_chunks(args.corpus, s)
    questions = sorted(set(gold_questions(10_000)))
    torch = load_embedder(s.embedding_model, s.device, s.batch_size, backend="torch")
    ref_docs = torch.embed_documents(texts)
    ref_questions = np.stack([torch.embed_query(q) for q in questions])
    print(f"machine: {machine()}")
    print(f"{len(texts)} corpus chunks, {len(questions)} gold questions; cosine to torch")
    print(f"{'backend':10} {'chunks min':>11} {'mean':>8} {'1st pct':>8} "
          f"{'questions min':>14} {'mean':>8}")  # fmt: skip
    for backend in parse_backends(args.backends):
        onnx = load_embedder(s.embedding_model, batch_size=s.batch_size, backend=backend,
                             cache_dir=s.onnx_cache_dir)  # fmt: skip
        cos_docs = (onnx.embed_documents(texts) * ref_docs).sum(axis=1)
        vecs = np.stack([onnx.embed_query(q) for q in questions])
        cos_q = (vecs * ref_questions).sum(axis=1)
        print(f"{backend:10} {cos_docs.min():11.4f} {cos_docs.mean():8.4f} "
              f"{np.percentile(cos_docs, 1):8.4f} {cos_q.min():14.4f} {cos_q.mean():8.4f}")  # fmt: skip
        verdict = "PASS" if cos_docs.min() >= 0.99 else "FAIL"
        print(f"{backend}: min cosine on chunks >= 0.99: {verdict}")
    if args.recipes:
        compare_recipes(s, texts)


def compare_recipes(s: Settings, texts: list[str]) -> None:
    """Cosine to the float32 ONNX model and CPU time of a few int8 quantisation recipes."""
    import logging
    import tempfile
    import time

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)
    onnx_fp32 = load_embedder(s.embedding_model, batch_size=s.batch_size, backend="onnx",
                              query_threads=1, index_threads=1, cache_dir=s.onnx_cache_dir)  # fmt: skip
    source = onnx_fp32.model_path  # type: ignore[attr-defined]
    names = [n.name for n in onnx.load(str(source), load_external_data=False).graph.node]
    ffn_out = [n for n in names if n.endswith("/output/dense/MatMul") and "attention" not in n]
    recipes = {
        "per-tensor, all default ops": dict(per_channel=False),
        "per-channel, MatMul only": dict(per_channel=True, op_types_to_quantize=["MatMul"]),
        "per-channel, MatMul, layer 0 FFN out float (default)": dict(
            per_channel=True, op_types_to_quantize=["MatMul"],
            nodes_to_exclude=[n for n in ffn_out if "/layer.0/" in n]),
        "per-channel, MatMul, all FFN out float": dict(
            per_channel=True, op_types_to_quantize=["MatMul"], nodes_to_exclude=ffn_out),
    }  # fmt: skip
    t0 = time.process_time()
    ref = onnx_fp32.embed_documents(texts)
    print(f"\nint8 recipes, cosine to float32 ONNX on {len(texts)} chunks (one thread); "
          f"float32 took {time.process_time() - t0:.1f} CPU s")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, kwargs in recipes.items():
            target = Path(tmp) / "model.onnx"
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, **kwargs)
            onnx_fp32._index_session = onnx_fp32._session(target, 1)  # type: ignore[attr-defined]
            onnx_fp32.index_threads = 2  # type: ignore[attr-defined]  # use _index_session
            t0 = time.process_time()
            vecs = onnx_fp32.embed_documents(texts)
            cpu = time.process_time() - t0
            onnx_fp32.index_threads = 1  # type: ignore[attr-defined]
            cos = (vecs * ref).sum(axis=1)
            print(f"  {name:55} min {cos.min():.4f} mean {cos.mean():.4f} CPU {cpu:.1f} s")


if __name__ == "__main__":
    main()
