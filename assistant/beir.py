"""BEIR benchmarks: read a BEIR-format dataset, index it apart from `index/`, score the modes.

A dataset folder holds `corpus.jsonl` ({"_id", "title", "text"}), `queries.jsonl`
({"_id", "text"}) and `qrels/<split>.tsv` (query-id, corpus-id, score, with a header). Each
abstract becomes a `Document` chunked with the corpus chunker; a document's score for a query
is its best chunk's. The index lives in a cache folder named by a fingerprint of the data, the
model, the chunker and the stemmer, so it is built once and never touches the main index.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chunk import chunk_documents
from .embed import Embedder, embedder_backend
from .errors import InputError
from .index import FORMAT_VERSION, SearchIndex, load_index
from .lexical import tokenize
from .metrics import eval_libraries, ranking_metrics
from .retrieve import RetrievalParams, retrieve
from .settings import Settings
from .snapshots import read_live
from .stream_build import StreamBuild
from .types import MODES, Document

StageProgress = Callable[[str, int, int], None]
BEIR_METRICS = ("ndcg@10", "recall@100", "mrr@10")
FUSIONS = ("score", "rrf", "adaptive")  # hybrid fusions `assistant eval --beir` runs side by side


@dataclass
class BeirDataset:
    """A BEIR dataset in memory."""

    name: str
    folder: Path
    docs: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str
    fingerprint: str


def ranked_documents(
    index: SearchIndex, ranked: Sequence[tuple[int, float]], depth: int
) -> list[str]:
    """Document ids in the order of their best chunk, at most `depth` of them."""
    docs: list[str] = []
    seen: set[str] = set()
    for row, _ in ranked:
        doc = index.chunks[row].doc_id
        if doc not in seen:
            seen.add(doc)
            docs.append(doc)
            if len(docs) == depth:
                break
    return docs


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise InputError(
            f"{path} not found", "a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/"
        )
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{n}: invalid JSON: {exc.msg}") from exc
            if not isinstance(row, dict) or "_id" not in row:
                raise InputError(f"{path}:{n}: each line needs an object with an '_id'")
            rows.append(row)
    return rows


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> {doc id: relevance} from a BEIR qrels TSV (header line optional)."""
    if not path.exists():
        raise InputError(f"{path} not found", "BEIR relevance judgements live in qrels/<split>.tsv")
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.strip().split("\t")
        if not line.strip() or (n == 1 and parts[0] == "query-id"):
            continue
        if len(parts) < 3:
            raise InputError(f"{path}:{n}: expected query-id<TAB>corpus-id<TAB>score")
        try:
            score = int(float(parts[2]))
        except ValueError as exc:
            raise InputError(f"{path}:{n}: score '{parts[2]}' is not a number") from exc
        qrels.setdefault(parts[0], {})[parts[1]] = score
    return qrels


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    """Read a BEIR dataset folder; queries are limited to those judged in `split`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"BEIR folder {folder} not found", "pass the dataset folder to --beir")
    corpus_path = folder / "corpus.jsonl"
    rows = _read_jsonl(corpus_path)
    digest = hashlib.sha256()
    docs = []
    for row in rows:
        doc_id, title, text = (
            str(row["_id"]),
            str(row.get("title") or ""),
            str(row.get("text") or ""),
        )
        fp = hashlib.sha256(f"{doc_id}\0{title}\0{text}".encode()).hexdigest()[:16]
        digest.update(fp.encode())
        docs.append(Document(id=doc_id, title=title or doc_id, year=0, source_type="other",
                             body=text, path=corpus_path, body_offset=0, fingerprint=fp))  # fmt: skip
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    queries = {
        str(r["_id"]): str(r.get("text") or "") for r in _read_jsonl(folder / "queries.jsonl")
    }
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise InputError(
            f"{len(missing)} judged queries are not in queries.jsonl (first: {missing[0]})"
        )
    return BeirDataset(
        name=folder.resolve().name,
        folder=folder,
        docs=docs,
        queries={q: queries[q] for q in qrels},
        qrels=qrels,
        split=split,
        fingerprint=digest.hexdigest()[:16],
    )


def default_cache_dir() -> Path:
    """~/.cache/net-liver-assistant/beir (or under $XDG_CACHE_HOME)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "net-liver-assistant" / "beir"


def index_key(dataset: BeirDataset, embedder: Embedder, settings: Settings) -> str:
    """Fingerprint of everything that shapes the dataset's index."""
    parts = {
        "data": dataset.fingerprint,
        "model": embedder.fingerprint,
        "backend": embedder_backend(embedder),
        "backend_version": embedder.backend_version,
        "chunker": settings.chunker_config(),
        "stemmer": settings.bm25_stemmer,
        "dense": settings.dense_config(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def open_index(
    dataset: BeirDataset,
    embedder: Embedder,
    settings: Settings,
    cache_dir: Path | None = None,
    progress: StageProgress | None = None,
) -> SearchIndex:
    """The dataset's index from the cache, built (and cached) first when missing."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    folder = cache_dir / f"{dataset.name}-{index_key(dataset, embedder, settings)}"
    live = read_live(folder)
    if live is not None and live.manifest.get("format_version") == FORMAT_VERSION:
        return load_index(folder, live)
    chunks = chunk_documents(dataset.docs, settings.chunk_max_tokens, settings.chunk_overlap_tokens)
    started = time.perf_counter()
    # the full build `assistant index` runs, into the cache folder, in one batch: int8 vectors
    # depend a little on which texts are embedded together, and a benchmark's figures should not
    # depend on `build_batch_chunks` (a BEIR set is small: SciFact is 10,561 chunks)
    build = StreamBuild(folder, dataset.docs, lambda: chunks, embedder,
                        chunker=settings.chunker_config(), bm25_stemmer=settings.bm25_stemmer,
                        corpus_files={"corpus.jsonl": dataset.fingerprint},
                        corpus_fingerprint=dataset.fingerprint, progress=progress,
                        unit_vectors=False,  # ranking only: no answer-unit vectors needed
                        dense=settings.dense_config(),
                        batch_chunks=max(1, len(chunks)), n_chunks=len(chunks))  # fmt: skip
    index = build.run().index
    index.manifest["build_seconds"] = round(time.perf_counter() - started, 3)
    index.manifest["beir"] = {"dataset": dataset.name, "folder": str(dataset.folder)}
    build.save(index)
    return load_index(folder)  # the saved snapshot: the build's files were moved there


def rank_documents(
    index: SearchIndex,
    embedder: Embedder,
    settings: Settings,
    queries: dict[str, str],
    mode: str,
    depth: int = 100,
    progress: StageProgress | None = None,
    fusion: str | None = None,
) -> tuple[dict[str, list[str]], list[float]]:
    """Top `depth` document ids per query (document score = best chunk score), and latencies.

    `fusion` overrides the setting's hybrid fusion (rrf, score or adaptive).
    """
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}'", f"use one of: {', '.join(MODES)}")
    chunks_per_doc = max(1, round(len(index.chunks) / max(1, len(index.sources))))
    n_chunks = depth * chunks_per_doc * 3
    run: dict[str, list[str]] = {}
    latencies = []
    items = sorted(queries.items())
    params = RetrievalParams.from_settings(
        settings, candidates=max(settings.candidates, n_chunks), fusion=fusion or settings.fusion
    )
    for i, (qid, text) in enumerate(items):
        t0 = time.perf_counter()
        ranked = retrieve(
            index,
            mode=mode,
            query_vector=embedder.embed_query(text) if mode != "bm25" else None,
            query_tokens=tokenize(text, settings.bm25_stemmer),
            n=n_chunks,
            params=params,
        )
        run[qid] = ranked_documents(index, ranked, depth)
        latencies.append((time.perf_counter() - t0) * 1000)
        if progress:
            progress(f"queries ({mode})", i + 1, len(items))
    return run, latencies


def evaluate_beir(
    folder: Path,
    settings: Settings,
    embedder: Embedder,
    modes: Sequence[str] = MODES,
    split: str = "test",
    cache_dir: Path | None = None,
    progress: StageProgress | None = None,
    fusions: Sequence[str] = (),
) -> dict[str, Any]:
    """nDCG@10, recall@100 and MRR@10 per mode on a BEIR dataset, with what produced them.

    Each of `fusions` other than the setting's adds a hybrid run named `hybrid-<fusion>`.
    """
    dataset = load_beir(folder, split)
    index = open_index(dataset, embedder, settings, cache_dir, progress)
    results: dict[str, Any] = {}
    runs: list[tuple[str, str, str | None]] = [(mode, mode, None) for mode in modes]
    runs += [(f"hybrid-{f}", "hybrid", f) for f in fusions if f != settings.fusion]
    for name, mode, fusion in runs:
        run, latencies = rank_documents(
            index, embedder, settings, dataset.queries, mode, progress=progress, fusion=fusion
        )
        means, _ = ranking_metrics(dataset.qrels, run, BEIR_METRICS)
        results[name] = {k: round(v, 4) for k, v in means.items()}
        results[name]["latency_ms_p50"] = round(sorted(latencies)[len(latencies) // 2], 2)
    return {
        "kind": "beir",
        "dataset": dataset.name,
        "split": split,
        "n_documents": len(dataset.docs),
        "n_queries": len(dataset.queries),
        "modes": results,
        "index_manifest": {k: v for k, v in index.manifest.items() if k != "corpus"},
        "settings": settings.model_dump(mode="json"),
        "libraries": eval_libraries(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
