"""Fit the composer's sentence-score weights to the gold patterns instead of grid-searching them.

A candidate sentence's score is a weighted sum of its features (`answer.FEATURES`). This script
labels each candidate sentence of the top passages by whether a gold pattern matches it, and
fits non-negative weights by a conditional logit: per question, a softmax over its candidate
sentences, maximising the probability given to the sentences that state the answer (L2 penalty
`--l2`; questions without such a sentence among the candidates are left out of the fit). It
prints the fitted weights and answer_match by 5-fold cross-validation over the questions of the
split (fitted on four folds, the composer run on the fifth), beside the current weights on the
same questions (which were chosen on the dev half itself, so not cross-validated).

    .venv/bin/python bench/fit_composer.py                    # dev half, several --l2
    .venv/bin/python bench/fit_composer.py --l2 1.0 --folds 0  # fit on the whole split only

Tune on the dev half only: the test half is for reporting, once.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib

import numpy as np
from _common import machine
from scipy.optimize import minimize
from tune_answer import Asked, ask_all, grid, score_weights

from assistant import Assistant, Settings
from assistant.answer import FEATURES, ComposerWeights, candidate_features
from assistant.evaluate import DEFAULT_GOLD, load_gold, select_split
from assistant.lexical import tokenize

Group = tuple[np.ndarray, np.ndarray]  # (features of the candidates, 1 where a pattern matches)


def groups(assistant: Assistant, asked: Asked) -> dict[str, Group]:
    """Each answerable question's candidate features and labels (questions with at least one
    matching and one other candidate)."""
    index, stem = assistant.index, assistant.settings.bm25_stemmer
    out = {}
    for q, ans, qvec in asked:
        if not q.answerable or not q.answers or ans.abstained:
            continue
        feats = candidate_features(
            ans.passages, q.question, tokenize(ans.query, stem), index.idf,
            lambda t: tokenize(t, stem), qvec, index.unit_vectors_of, ComposerWeights(),
            index.named_sources(ans.query),
        )  # fmt: skip
        if not feats:
            continue
        y = np.array([any(p.search(f.text) for p in q.patterns) for f in feats], dtype=float)
        if 0 < y.sum() < len(y):
            out[q.id] = (np.stack([f.values for f in feats]), y)
    return out


def fit(data: list[Group], l2: float, start: np.ndarray) -> np.ndarray:
    """Non-negative weights maximising the log-probability of the matching sentences."""

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = l2 * float(w @ w), 2 * l2 * w
        for x, y in data:
            s = x @ w
            s -= s.max()
            p = np.exp(s)
            z = p.sum()
            zp = (p * y).sum()
            total -= np.log(zp) - np.log(z)
            grad -= (x * (p * y)[:, None]).sum(0) / zp - (x * p[:, None]).sum(0) / z
        return total, grad

    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(0, None)] * len(start))
    return np.asarray(result.x)


def with_coef(coef: np.ndarray) -> ComposerWeights:
    return dataclasses.replace(
        ComposerWeights(), **{n: round(float(v), 3) for n, v in zip(FEATURES, coef, strict=True)}
    )


def fold_of(qid: str, folds: int) -> int:
    return int(hashlib.sha256(qid.encode()).hexdigest(), 16) % folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", default="dev", choices=("dev", "test", "all"))
    parser.add_argument("--l2", default="0.1,1,10", help="comma-separated L2 penalties")
    parser.add_argument("--folds", type=int, default=5, help="0: no cross-validation")
    parser.add_argument(
        "--grid-cv", choices=("small", "full", "facet", "length"),
        help="also cross-validate choosing by grid search (bench/tune_answer.py --grid)",
    )  # fmt: skip
    args = parser.parse_args()
    assistant = Assistant(Settings())
    assistant.load(rebuild=False)
    questions = select_split(load_gold(DEFAULT_GOLD, set(assistant.index.sources)), args.split)
    asked = ask_all(assistant, questions)
    data = groups(assistant, asked)
    current = ComposerWeights()
    start = np.array([getattr(current, n) for n in FEATURES])
    print(f"machine: {machine()}")
    print(f"split: {args.split} ({len(questions)} questions; {len(data)} with a matching and "
          "another candidate sentence)")  # fmt: skip
    match, *_ = score_weights(assistant, asked, current)
    print(
        f"current weights (chosen on dev): answer_match={match:.4f}  "
        + " ".join(f"{n}={v:g}" for n, v in zip(FEATURES, start, strict=True))
    )
    if args.grid_cv and args.folds:
        hits = n = 0.0
        for k in range(args.folds):
            train = [a for a in asked if fold_of(a[0].id, args.folds) != k]
            held = [a for a in asked if fold_of(a[0].id, args.folds) == k]
            best = max(
                (dataclasses.replace(current, **params) for params in grid(args.grid_cv)),
                key=lambda w: score_weights(assistant, train, w)[0],
            )
            m, _, _, n_with = score_weights(assistant, held, best)
            hits, n = hits + m * n_with, n + n_with
        print(f"grid search '{args.grid_cv}' chosen on four folds: {args.folds}-fold CV "
              f"answer_match={hits / n:.4f}")  # fmt: skip
    for l2 in (float(v) for v in args.l2.split(",")):
        coef = fit(list(data.values()), l2, start)
        match, *_ = score_weights(assistant, asked, with_coef(coef))
        line = f"l2={l2:g}: fitted on all, answer_match={match:.4f} (in sample)"
        if args.folds:
            hits = n = 0.0
            for k in range(args.folds):
                train = [g for qid, g in data.items() if fold_of(qid, args.folds) != k]
                held = [a for a in asked if fold_of(a[0].id, args.folds) == k]
                m, _, _, n_with = score_weights(assistant, held, with_coef(fit(train, l2, start)))
                hits, n = hits + m * n_with, n + n_with
            line += f"; {args.folds}-fold CV answer_match={hits / n:.4f}"
        print(line)
        print("   " + " ".join(f"{n}={v:.3f}" for n, v in zip(FEATURES, coef, strict=True)))


if __name__ == "__main__":
    main()
