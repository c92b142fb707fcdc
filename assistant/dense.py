"""The dense index: which FAISS index type a corpus gets, building it, opening it memory-mapped,
and searching it (approximate hits optionally re-scored exactly against the stored vectors).

Every type is made by `faiss.index_factory` with inner product over normalised vectors; the ids
of the dense index are the chunk rows.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .chunk_store import StackedVectors, VectorFile

Vectors = np.ndarray | VectorFile | StackedVectors  # in memory, or read by row from a snapshot
DENSE_FILE = "dense.faiss"
VECTORS_FILE = "vectors.npy"  # the float vectors, for index types that do not hold them
TYPES = ("flat", "hnsw", "ivf-sq8", "ivf-pq")
DEFAULTS: dict[str, Any] = {
    "type": "auto",
    "auto_threshold": 50_000,
    "hnsw_m": 32,
    "hnsw_ef_construction": 80,
    "hnsw_ef_search": 128,
    "ivf_nlist": 0,
    "ivf_nprobe": 48,
    "ivf_train_sample": 100_000,
    "refine": 2,
}


def resolve(config: dict[str, Any] | None, n: int, dimension: int) -> dict[str, Any]:
    """The dense-index description recorded in the manifest: the concrete type chosen for `n`
    vectors (`auto` resolved), its factory string and its build and search parameters."""
    cfg = DEFAULTS | dict(config or {})
    kind = cfg["type"]
    if kind == "auto":
        kind = "flat" if n <= cfg["auto_threshold"] else "ivf-sq8"
    if kind not in TYPES:
        raise ValueError(f"unknown dense index type '{kind}' (use auto or one of {TYPES})")
    nlist = int(cfg["ivf_nlist"]) or max(16, int(4 * math.sqrt(max(n, 1))))
    if kind.startswith("ivf"):  # FAISS wants >= 39 training vectors per list
        nlist = max(1, min(nlist, n // 39))
    pq_m = next(
        (m for m in (48, 32, 24, 16, 12, 8, 4, 2) if dimension % m == 0 and dimension // m >= 8), 1
    )
    factory = {
        "flat": "Flat",
        "hnsw": f"HNSW{cfg['hnsw_m']},Flat",
        "ivf-sq8": f"IVF{nlist},SQ8",
        "ivf-pq": f"IVF{nlist},PQ{pq_m}x8",
    }[kind]
    out: dict[str, Any] = {"type": kind, "requested": cfg["type"], "factory": factory,
                           "metric": "inner_product", "auto_threshold": cfg["auto_threshold"]}  # fmt: skip
    if kind == "hnsw":
        out |= {"hnsw_m": cfg["hnsw_m"], "ef_construction": cfg["hnsw_ef_construction"],
                "ef_search": cfg["hnsw_ef_search"]}  # fmt: skip
    if kind.startswith("ivf"):
        out |= {
            "nlist": nlist,
            "nprobe": cfg["ivf_nprobe"],
            "train_sample": cfg["ivf_train_sample"],
        }
    if kind != "flat":
        out["refine"] = cfg["refine"]
    return out


def holds_vectors(info: dict[str, Any]) -> bool:
    """Whether the FAISS file itself holds the float vectors (then no separate vectors file)."""
    return info.get("type", "flat") in ("flat", "hnsw")


def build(vectors: Vectors, info: dict[str, Any], seed: int = 0) -> Any:
    """A FAISS index of the type `info` describes (see `resolve`), holding `vectors` (ids = rows).

    `vectors` may be a file read by row (`VectorFile`, as a streamed build writes it): rows are
    added a block at a time and IVF trains on a sample of `train_sample` rows, so the matrix is
    never read whole into memory (a flat or HNSW index itself holds every vector, though).
    """
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building may use every core
    try:
        return _build(faiss, vectors, info, seed)
    finally:
        faiss.omp_set_num_threads(1)  # one query, one thread: what serving measures


def _build(faiss: Any, vectors: Vectors, info: dict[str, Any], seed: int) -> Any:
    index = faiss.index_factory(vectors.shape[1], info["factory"], faiss.METRIC_INNER_PRODUCT)
    if info["type"] == "hnsw":
        index.hnsw.efConstruction = int(info["ef_construction"])
    if not index.is_trained:
        sample = vectors
        if len(vectors) > info["train_sample"]:
            rows = np.random.default_rng(seed).choice(len(vectors), info["train_sample"], False)
            sample = vectors[np.sort(rows)]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    for start in range(0, len(vectors), 65536):  # bounded temporary copies
        index.add(np.ascontiguousarray(vectors[start : start + 65536], dtype=np.float32))
    set_search_parameters(index, info)
    return index


def set_search_parameters(index: Any, info: dict[str, Any]) -> None:
    """Apply the recorded search parameters (efSearch, nprobe) to an opened index."""
    import faiss

    if info.get("type") == "hnsw":
        faiss.ParameterSpace().set_index_parameter(index, "efSearch", int(info["ef_search"]))
    elif str(info.get("type", "")).startswith("ivf"):
        faiss.ParameterSpace().set_index_parameter(index, "nprobe", int(info["nprobe"]))


def save(index: Any, vectors: Vectors | None, info: dict[str, Any], folder: Path) -> None:
    """Write the FAISS file, and the float vectors beside it when the index does not hold them
    (`vectors` None: they are already there, as a streamed build writes them)."""
    import faiss

    faiss.write_index(index, str(folder / DENSE_FILE))
    if vectors is not None and not holds_vectors(info):
        np.save(folder / VECTORS_FILE, np.ascontiguousarray(vectors, dtype=np.float32))


def open_dense(folder: Path, info: dict[str, Any]) -> tuple[Any, Vectors]:
    """The FAISS index of a snapshot, memory-mapped, and its float vectors, kept once: a view
    of the vectors inside the FAISS file for flat and HNSW, else vectors.npy read by row."""
    import faiss

    flags = faiss.IO_FLAG_MMAP_IFC if holds_vectors(info) else faiss.IO_FLAG_MMAP
    index = faiss.read_index(str(folder / DENSE_FILE), flags | faiss.IO_FLAG_READ_ONLY)
    set_search_parameters(index, info)
    vectors = stored_vectors(index) if holds_vectors(info) else VectorFile(folder / VECTORS_FILE)
    return index, vectors


def stored_vectors(index: Any) -> np.ndarray:
    """A read-only view of the float vectors inside a flat or HNSW-flat index (no copy)."""
    import faiss

    flat = faiss.downcast_index(index.storage if hasattr(index, "hnsw") else index)
    if flat.ntotal == 0:
        return np.zeros((0, flat.d), dtype=np.float32)
    xb = flat.get_xb()  # type: ignore[attr-defined]
    view = faiss.rev_swig_ptr(xb, flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)
    view.flags.writeable = False
    return view


def search(
    index: Any,
    vectors: Vectors,
    info: dict[str, Any],
    query: np.ndarray,
    n: int,
    allowed: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
) -> list[tuple[int, float]]:
    """The best `n` (row, inner product) pairs; `allowed` restricts the rows searched and
    `exclude` leaves rows out (the tombstones of an incremental index, `delta.py`).

    Flat search is exact. An approximate index ranks by its own scores (`refine` 0), or is asked
    for `refine` x `n` candidates which are re-scored exactly against `vectors`; when a filter
    leaves it fewer than `n` hits, the allowed rows are searched exactly instead.
    """
    import faiss

    merged = getattr(index, "merged_search", None)
    if merged is not None:  # base + delta of an incremental snapshot
        return list(merged(query, n, allowed))
    if exclude is not None and len(exclude) and allowed is not None:
        allowed, exclude = np.setdiff1d(allowed, exclude), None
    if exclude is not None and not len(exclude):
        exclude = None
    total = index.ntotal if allowed is None else len(allowed)
    if exclude is not None:
        total -= len(exclude)
    n = min(n, total)
    if n <= 0:
        return []
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    kind = info.get("type", "flat")
    refine = int(info.get("refine", 1))
    k = n if kind == "flat" else min(total, n * max(1, refine))
    params = None
    keep: list[Any] = []  # the selectors the search parameters point to stay alive
    if allowed is not None or exclude is not None:
        sel: Any
        if allowed is not None:
            sel = faiss.IDSelectorBatch(allowed)
        else:
            keep.append(faiss.IDSelectorBatch(np.asarray(exclude, dtype=np.int64)))
            sel = faiss.IDSelectorNot(keep[0])
        keep.append(sel)
        # faiss's bundled stubs lack the keywords that its SWIG constructors accept
        if kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=int(info["ef_search"]))  # type: ignore[attr-defined]
        elif kind.startswith("ivf"):
            params = faiss.SearchParametersIVF(sel=sel, nprobe=int(info["nprobe"]))  # type: ignore[call-arg]
        else:
            params = faiss.SearchParameters(sel=sel)  # type: ignore[call-arg]
    scores, rows = index.search(q, k, params=params) if params else index.search(q, k)
    hits = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
    if kind == "flat" or (refine == 0 and (allowed is None or len(hits) >= n)):
        return hits[:n]
    if allowed is not None and len(hits) < n:
        hits = [(int(r), 0.0) for r in allowed]
    if not hits:
        return []
    found = np.array([r for r, _ in hits], dtype=np.int64)
    exact = exact_scores(vectors, found, q[0])
    order = np.lexsort((found, -exact))[:n]
    return [(int(found[i]), float(exact[i])) for i in order]


def exact_scores(vectors: Vectors, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Inner products of `query` with the vectors of `rows` (read from the memory map in order)."""
    order = np.argsort(rows, kind="stable")
    out = np.empty(len(rows), dtype=np.float32)
    out[order] = np.asarray(vectors[rows[order]], dtype=np.float32) @ query
    return out
