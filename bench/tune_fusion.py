"""Choose the hybrid fusion on the training queries of every shared BEIR set.

    python bench/tune_fusion.py                      # ../shared/bench/*, qrels/train.tsv
    python bench/tune_fusion.py --sets scifact medquad_cancer --split train

Each set's index comes from the BEIR cache (`assistant eval --beir` builds it once). The dense
and BM25 candidate lists of every query (the depth `assistant eval --beir` fuses) and RM3
expansions of the BM25 list are computed once and cached beside the index; every fusion
variant is then scored in memory with ir_measures:

- fixed weights: score fusion with dense weight 0 ... 1, RRF k = 10 / 60;
- adaptive: dense weight = low + (high - low) * sigmoid(w . features) (assistant/fusion.py),
  w from a logistic regression (scikit-learn) that predicts whether the dense-heavy or the
  BM25-heavy fusion wins a query, or fitted directly to mean nDCG@10 (scipy Powell); each is
  scored by 5-fold cross-validation over the training queries (fitted on 4/5, scored on 1/5);
- hand-set rules in the same form: dense weight `high` when BM25's top 10 is flat, else `base`;
- RM3 on the BM25 side, plain and inside the fusions.

The best cross-validated variant is printed with its coefficients; the shipped default
(assistant/fusion.py) also had to keep our gold set from losing, see docs/evaluation.md.

The test split is never read unless `--split test` is given (for the final, single run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from assistant.assistant import Assistant
from assistant.beir import default_cache_dir, index_key, load_beir, open_index
from assistant.fusion import (
    DEFAULT_MODEL,
    FEATURE_NAMES,
    AdaptiveModel,
    adaptive_fusion,
    query_features,
)
from assistant.lexical import tokenize
from assistant.metrics import ranking_metrics
from assistant.prf import rm3_weights, weighted_bm25_scores
from assistant.retrieve import bm25_search, dense_search, reciprocal_rank_fusion, score_fusion
from assistant.settings import Settings

BENCH = Path(__file__).resolve().parent.parent.parent / "shared" / "bench"
DEPTH = 100  # documents scored per query, as in `assistant eval --beir`
RM3_GRID = [(fb, terms, lam) for fb in (5, 10) for terms in (10, 20) for lam in (0.5, 0.7)]
STEP = 200.0  # slope of the sigmoid that stands in for a step in the hand-set rules
W_GRID = [round(0.1 * i, 1) for i in range(11)]
Ranked = list[tuple[int, float]]


def chunk_depth(n_chunks: int, n_docs: int) -> int:
    """Chunks taken from each list, as `beir.rank_documents` does."""
    return DEPTH * max(1, round(n_chunks / max(1, n_docs))) * 3


def prepare(folder: Path, split: str, settings: Settings, assistant: Assistant) -> dict:
    """Candidate lists of every query of the split (cached beside the BEIR index)."""
    ds = load_beir(folder, split)
    embedder = assistant.embedder
    key = index_key(ds, embedder, settings)
    qhash = hashlib.sha256(json.dumps(sorted(ds.queries.items())).encode()).hexdigest()[:8]
    cache = (
        settings.beir_cache_dir or default_cache_dir()
    ) / f"tune-{ds.name}-{key}-{split}-{qhash}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    index = open_index(ds, embedder, settings, settings.beir_cache_dir)
    depth = max(settings.candidates, chunk_depth(len(index.chunks), len(index.sources)))
    t0 = time.perf_counter()
    data: dict = {"name": ds.name, "qrels": ds.qrels, "depth": depth, "n": len(index.chunks),
                  "doc_of": [c.doc_id for c in index.chunks], "queries": {}}  # fmt: skip
    chunk_tokens: dict[int, list[str]] = {}
    for qid, text in sorted(ds.queries.items()):
        toks = tokenize(text, settings.bm25_stemmer)
        lexical = bm25_search(index, toks, depth)
        entry = {
            "tokens": toks,
            "idf": {t: index.idf(t) for t in toks},
            "dense": dense_search(index, embedder.embed_query(text), depth),
            "bm25": lexical,
            "rm3": {},
        }
        for fb, terms, lam in RM3_GRID:
            feedback = []
            for row, score in lexical[:fb]:
                if row not in chunk_tokens:
                    chunk_tokens[row] = tokenize(index.chunks[row].text, settings.bm25_stemmer)
                feedback.append((chunk_tokens[row], score))
            weights = rm3_weights(toks, feedback, terms, lam)
            scores = weighted_bm25_scores(index.bm25, weights, len(index.chunks))
            top = np.argsort(-scores, kind="stable")[:depth]
            entry["rm3"][(fb, terms, lam)] = [
                (int(r), float(scores[r])) for r in top if scores[r] > 0
            ]
        data["queries"][qid] = entry
    print(f"{ds.name} {split}: candidate lists of {len(ds.queries)} queries in "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)  # fmt: skip
    cache.write_bytes(pickle.dumps(data))
    return data


def doc_run(data: dict, fused: dict[str, Ranked]) -> dict[str, list[str]]:
    """Chunk rankings -> document rankings (best chunk), DEPTH documents each."""
    doc_of = data["doc_of"]
    run = {}
    for qid, ranked in fused.items():
        docs: list[str] = []
        seen: set[str] = set()
        for row, _ in ranked:
            d = doc_of[row]
            if d not in seen:
                seen.add(d)
                docs.append(d)
                if len(docs) == DEPTH:
                    break
        run[qid] = docs
    return run


def evaluate(data: dict, fuse: Callable[[str, dict], Ranked]) -> tuple[dict, dict]:
    fused = {qid: fuse(qid, e) for qid, e in data["queries"].items()}
    return ranking_metrics(data["qrels"], doc_run(data, fused), ("ndcg@10", "recall@100", "mrr@10"))


def features(
    data: dict, names: tuple[str, ...], lexical_key: str = "bm25"
) -> dict[str, np.ndarray]:
    out = {}
    for qid, e in data["queries"].items():
        f = query_features(e["dense"], e[lexical_key] if lexical_key == "bm25" else e["rm3"][lexical_key],
                           e["tokens"], e["idf"].__getitem__, data["n"])  # fmt: skip
        out[qid] = np.array([f[n] for n in names])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", type=Path, default=BENCH)
    ap.add_argument("--sets", nargs="*", default=None)
    ap.add_argument("--split", default="train")
    ap.add_argument("--features", nargs="*", default=list(FEATURE_NAMES), choices=FEATURE_NAMES,
                    help="features the adaptive weight may use [default: all]")  # fmt: skip
    ap.add_argument("--adaptive-only", action="store_true",
                    help="skip the fixed-weight and RM3 variants")  # fmt: skip
    args = ap.parse_args()
    settings = Settings()
    assistant = Assistant(settings)
    names = args.sets or sorted(
        p.name for p in args.bench.iterdir() if (p / "corpus.jsonl").exists()
    )
    sets = {n: prepare(args.bench / n, args.split, settings, assistant) for n in names}
    rows: list[tuple[str, dict[str, dict]]] = []

    def report(label: str, fuses: dict[str, Callable[[str, dict], Ranked]] | Callable) -> dict:
        res = {}
        for n, data in sets.items():
            fuse = fuses[n] if isinstance(fuses, dict) else fuses
            res[n] = evaluate(data, fuse)
        rows.append((label, {n: r[0] for n, r in res.items()}))
        print(f"{label:52s} " + "  ".join(
            f"{n[:8]} {r[0]['ndcg@10']:.4f}/{r[0]['recall@100']:.4f}" for n, r in res.items()),
            flush=True)  # fmt: skip
        return res

    print(f"{'variant':52s} " + "  ".join(f"{n[:8]} nDCG@10/R@100" for n in sets))
    report("dense", lambda q, e: e["dense"])
    report("bm25", lambda q, e: e["bm25"])
    for key in [] if args.adaptive_only else RM3_GRID:
        report(f"bm25 + RM3 fb={key[0]} terms={key[1]} orig={key[2]}",
               lambda q, e, key=key: e["rm3"][key])  # fmt: skip
    for k in (10, 60):
        report(
            f"rrf k={k}",
            lambda q, e, k=k: reciprocal_rank_fusion([e["dense"], e["bm25"]], [1, 1], k),
        )
    # per-query nDCG@10 of score fusion at each dense weight: the table the adaptive fits use
    per_w: dict[str, dict] = {
        n: {"qids": sorted(d["queries"]), "ndcg": []} for n, d in sets.items()
    }
    for w in W_GRID:
        res = report(f"score w_dense={w}",
                     lambda q, e, w=w: score_fusion([e["dense"], e["bm25"]], [w, 1 - w]))  # fmt: skip
        for n in sets:
            per_w[n]["ndcg"].append([res[n][1][q]["ndcg@10"] for q in per_w[n]["qids"]])
    for n in sets:
        per_w[n]["ndcg"] = np.array(per_w[n]["ndcg"]).T  # (queries, weights)
    for key in [] if args.adaptive_only else RM3_GRID:
        for w in (0.5, 0.6, 0.7):
            report(f"score w_dense={w} with RM3 fb={key[0]} terms={key[1]} orig={key[2]}",
                   lambda q, e, w=w, key=key: score_fusion([e["dense"], e["rm3"][key]], [w, 1 - w]))  # fmt: skip
    adaptive(sets, per_w, report, tuple(args.features))


def adaptive(sets: dict, per_w: dict, report: Callable, names: tuple[str, ...]) -> None:
    """Fit the adaptive weight by 5-fold cross-validation; report CV and in-sample figures."""
    from scipy.optimize import minimize
    from sklearn.linear_model import LogisticRegression

    X, Y, grp = [], [], []
    feats = {n: features(d, names) for n, d in sets.items()}
    for g, n in enumerate(sets):
        qids = per_w[n]["qids"]
        X.append(np.stack([feats[n][q] for q in qids]))
        Y.append(per_w[n]["ndcg"])
        grp.extend([g] * len(qids))
    X, Y, grp = np.vstack(X), np.vstack(Y), np.array(grp)
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = (X - mu) / sd
    wg = np.array(W_GRID)
    oracle = {n: Y[grp == g].max(1).mean() for g, n in enumerate(sets)}
    print(
        "oracle (best fixed weight per query): "
        + "  ".join(f"{n[:8]} {v:.4f}" for n, v in oracle.items())
    )
    rng = np.random.default_rng(0)
    fold = rng.integers(0, 5, len(Z))
    set_weight = np.array([1.0 / (grp == g).sum() for g in grp])  # each set counts equally

    def interp(w_q: np.ndarray, idx: np.ndarray) -> np.ndarray:
        pos = np.clip(w_q, 0, 1) * (len(wg) - 1)
        i0 = np.minimum(pos.astype(int), len(wg) - 2)
        frac = pos - i0
        return Y[idx, i0] * (1 - frac) + Y[idx, i0 + 1] * frac

    def objective_value(w_q: np.ndarray, idx: np.ndarray) -> float:
        return float((interp(w_q, idx) * set_weight[idx]).sum())

    def fit_lr(idx: np.ndarray, c: float) -> tuple[float, np.ndarray]:
        hi, lo = Y[idx][:, 8], Y[idx][:, 2]  # dense-heavy (0.8) against BM25-heavy (0.2)
        keep = hi != lo
        if len(set((hi > lo)[keep])) < 2:  # one class only: no preference to learn
            return 0.0, np.zeros(Z.shape[1])
        clf = LogisticRegression(C=c, max_iter=1000)
        clf.fit(Z[idx][keep], (hi > lo)[keep].astype(int),
                sample_weight=(np.abs(hi - lo) * set_weight[idx])[keep] * len(idx))  # fmt: skip
        return float(clf.intercept_[0]), clf.coef_[0]

    def fit_direct(
        idx: np.ndarray, lam: float, low: float, high: float
    ) -> tuple[float, np.ndarray]:
        def loss(theta: np.ndarray) -> float:
            w_q = low + (high - low) / (1 + np.exp(-(theta[0] + Z[idx] @ theta[1:])))
            return -objective_value(w_q, idx) + lam * float((theta[1:] ** 2).sum())

        res = minimize(loss, np.zeros(Z.shape[1] + 1), method="Powell",
                       options={"maxiter": 4000, "xtol": 1e-3, "ftol": 1e-6})  # fmt: skip
        return float(res.x[0]), res.x[1:]

    def cv(fit: Callable[[np.ndarray], tuple[float, np.ndarray]], low: float, high: float) -> dict:
        w_q = np.zeros(len(Z))
        for f in range(5):
            b, coef = fit(np.where(fold != f)[0])
            test = fold == f
            w_q[test] = low + (high - low) / (1 + np.exp(-(b + Z[test] @ coef)))
        vals = interp(w_q, np.arange(len(Z)))
        return {n: float(vals[grp == g].mean()) for g, n in enumerate(sets)}

    candidates = []
    bounds = [(lo, hi) for lo in (0.2, 0.3, 0.4) for hi in (0.8, 0.9, 1.0)]
    for c in (0.1, 1.0, 10.0):
        for low, high in bounds:
            r = cv(lambda idx, c=c: fit_lr(idx, c), low, high)
            candidates.append(
                (np.mean(list(r.values())), f"logistic C={c} [{low},{high}]", ("lr", c, low, high))
            )
            print(
                f"CV {candidates[-1][1]:44s} "
                + "  ".join(f"{n[:8]} {v:.4f}" for n, v in r.items()),
                flush=True,
            )
    for lam in (0.0, 0.01):
        for low, high in ((0.2, 0.9), (0.3, 0.9)):
            r = cv(lambda idx, lam=lam, lo=low, hi=high: fit_direct(idx, lam, lo, hi), low, high)
            candidates.append(
                (
                    np.mean(list(r.values())),
                    f"direct lam={lam} [{low},{high}]",
                    ("direct", lam, low, high),
                )
            )
            print(
                f"CV {candidates[-1][1]:44s} "
                + "  ".join(f"{n[:8]} {v:.4f}" for n, v in r.items()),
                flush=True,
            )

    rules: list[tuple[float, str, tuple]] = []

    def to_model(b: float, coef: np.ndarray, low: float, high: float) -> AdaptiveModel:
        """Back to raw features: z = b + sum(coef * (x - mu) / sd)."""
        raw = coef / sd
        return AdaptiveModel(intercept=round(b - float((coef * mu / sd).sum()), 4),
                             coefs={n: round(float(v), 4) for n, v in zip(names, raw, strict=True)},
                             low=low, high=high)  # fmt: skip

    def fit(spec: tuple, idx: np.ndarray) -> AdaptiveModel:
        kind, p, low, high = spec
        if kind == "rule":  # a step: dense weight `high` when BM25's top 10 is flatter than p
            return AdaptiveModel(intercept=STEP * p, coefs={"bm25_gap": -STEP}, low=low, high=high)
        b, coef = fit_lr(idx, p) if kind == "lr" else fit_direct(idx, p, low, high)
        return to_model(b, coef, low, high)

    def fuser(size: int, model: Callable[[str], AdaptiveModel]) -> Callable[[str, dict], Ranked]:
        return lambda q, e: adaptive_fusion(e["dense"], e["bm25"], e["tokens"],
                                            e["idf"].__getitem__, size, model(q))  # fmt: skip

    # the interpolated estimate is only a guide: the five best are scored again by running the
    # actual fusion on each held-out fold with the model fitted on the other four
    if "bm25_gap" in names:  # hand-set rule: trust dense when BM25 cannot tell passages apart
        gap = X[:, names.index("bm25_gap")]
        for t in (0.05, 0.08, 0.1, 0.12, 0.15, 0.2):
            for base in (0.4, 0.5):
                for high in (0.8, 0.9, 1.0):
                    w_q = np.where(gap < t, high, base)
                    vals = interp(w_q, np.arange(len(Z)))
                    r = {n: float(vals[grp == g].mean()) for g, n in enumerate(sets)}
                    label = f"rule: bm25_gap < {t} -> {high}, else {base}"
                    rules.append((float(np.mean(list(r.values()))), label, ("rule", t, base, high)))
                    print(f"   {label:44s} " + "  ".join(f"{n[:8]} {v:.4f}" for n, v in r.items()))
    real = []
    shortlist = sorted(candidates, key=lambda t: -t[0])[:5] + sorted(rules, key=lambda t: -t[0])[:2]
    for _, label, spec in shortlist:
        models = [fit(spec, np.where(fold != f)[0]) for f in range(5)]
        fuses = {}
        for g, n in enumerate(sets):
            qfold = dict(zip(per_w[n]["qids"], fold[grp == g].tolist(), strict=True))
            fuses[n] = fuser(sets[n]["n"], lambda q, qfold=qfold, ms=models: ms[qfold[q]])
        res = report(f"CV, real fusion: {label}", fuses)
        real.append((float(np.mean([r[0]["ndcg@10"] for r in res.values()])), label, spec))
    best = max(real, key=lambda t: t[0])
    print(f"best by cross-validated mean nDCG@10 (real fusion): {best[1]} ({best[0]:.4f})")
    report("shipped default (assistant.fusion.DEFAULT_MODEL)",
           {n: fuser(d["n"], lambda q: DEFAULT_MODEL) for n, d in sets.items()})  # fmt: skip
    model = fit(best[2], np.arange(len(Z)))
    print("fitted on all training queries:", model)
    report(f"adaptive {best[1]} (in-sample)",
           {n: fuser(d["n"], lambda q: model) for n, d in sets.items()})  # fmt: skip


if __name__ == "__main__":
    main()
