"""Tune and measure retrieval on BEIR SciFact (or another BEIR folder).

    python bench/beir_scifact.py --split train     # fusion grid on the training queries
    python bench/beir_scifact.py --split test --only default   # the settings as they are

The index is built once into the BEIR cache (see `assistant eval --beir`). Candidate lists are
computed once per query, then each fusion variant is scored with ir_measures. Tune on the
training split only; the test split is for the final figure.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from assistant.assistant import Assistant
from assistant.beir import load_beir, open_index, ranked_documents
from assistant.lexical import tokenize
from assistant.metrics import ranking_metrics
from assistant.retrieve import bm25_search, dense_search, reciprocal_rank_fusion, score_fusion
from assistant.settings import Settings

DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "scifact"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--split", default="train")
    ap.add_argument("--depth", type=int, default=1000, help="chunks taken from each retriever")
    ap.add_argument("--only", choices=["grid", "default"], default="grid")
    args = ap.parse_args()
    settings = Settings()
    embedder = Assistant(settings).embedder
    ds = load_beir(args.folder, args.split)
    index = open_index(ds, embedder, settings)
    t0 = time.perf_counter()
    dense, lexical = {}, {}
    for qid, text in ds.queries.items():
        dense[qid] = dense_search(index, embedder.embed_query(text), args.depth)
        lexical[qid] = bm25_search(index, tokenize(text, settings.bm25_stemmer), args.depth)
    print(f"{ds.name} {args.split}: {len(ds.queries)} queries, {len(index.chunks)} chunks; "
          f"candidate lists in {time.perf_counter() - t0:.1f} s")  # fmt: skip

    def score(name: str, fuse) -> None:  # type: ignore[no-untyped-def]
        run = {q: ranked_documents(index, fuse(dense[q], lexical[q]), 100) for q in ds.queries}
        means, _ = ranking_metrics(ds.qrels, run, ("ndcg@10", "recall@100", "mrr@10"))
        print(f"{name:40s} ndcg@10 {means['ndcg@10']:.4f}  recall@100 {means['recall@100']:.4f}"
              f"  mrr@10 {means['mrr@10']:.4f}")  # fmt: skip

    score("dense", lambda d, b: d)
    score("bm25", lambda d, b: b)
    if args.only == "default":
        s = settings
        if s.fusion == "adaptive":
            print(
                "adaptive fusion (the default): use `assistant eval --beir` or bench/tune_fusion.py"
            )
        elif s.fusion == "score":
            score(f"hybrid score {s.dense_weight}/{s.bm25_weight}",
                  lambda d, b: score_fusion([d[:s.candidates], b[:s.candidates]],
                                            [s.dense_weight, s.bm25_weight]))  # fmt: skip
        else:
            score(f"hybrid rrf k={s.rrf_k}",
                  lambda d, b: reciprocal_rank_fusion([d[:s.candidates], b[:s.candidates]],
                                                      [s.dense_weight, s.bm25_weight], s.rrf_k))  # fmt: skip
        return
    for k in (10, 30, 60):
        for wd in (0.7, 1.0, 1.3):
            score(f"rrf k={k} dense_w={wd}",
                  lambda d, b, k=k, wd=wd: reciprocal_rank_fusion([d, b], [wd, 1.0], k))  # fmt: skip
    for cand in (100, 300, 1000):
        for wd in (0.3, 0.4, 0.5, 0.6, 0.7):
            score(f"score cand={cand} dense_w={wd} bm25_w={1 - wd:.1f}",
                  lambda d, b, c=cand, wd=wd: score_fusion([d[:c], b[:c]], [wd, 1 - wd]))  # fmt: skip


if __name__ == "__main__":
    main()
