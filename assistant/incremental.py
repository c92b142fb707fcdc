"""Saving and opening an incremental snapshot (a base plus a delta, see `delta.py`)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .chunk_store import ChunkRows, ChunkStore, NoteStore, StackedVectors
from .delta import (
    DELTA,
    TOMBSTONES,
    DeltaDense,
    MergedBM25,
    StackedChunks,
    StackedNotes,
    StackedRows,
    link_base,
    token_doc_freq,
)
from .index import (
    MANIFEST,
    ROW_DOCS,
    SNAPSHOTS,
    SearchIndex,
    load_snapshot,
)
from .index_manifest import sources_of
from .snapshots import write_snapshot
from .staging import StagedBatch
from .stream_build import write_index
from .types import Chunk, Document


def add_delta(
    previous: SearchIndex,
    index_dir: Path,
    docs: Sequence[Document],
    changes: dict[str, list[str]],
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    *,
    units: np.ndarray | None = None,
    unit_offsets: np.ndarray | None = None,
    bm25_stemmer: str | None,
    corpus_files: dict[str, str],
    corpus_fingerprint: str,
    corpus_root: Path | None = None,
    extra_manifest: dict[str, Any] | None = None,
) -> SearchIndex:
    """Save `previous` plus the chunks of the added and changed sources (`chunks`, their
    `vectors` and answer-unit vectors) as a new incremental snapshot, and open it.

    `docs` are all the sources now; the chunks of changed and removed sources leave the index
    (tombstoned in the base, dropped from the delta). The base is hard-linked, never rewritten.
    Only added and changed sources need their bodies: the delta's other sources take the note
    `previous` stored.
    """
    m = previous.manifest
    base_folder = index_dir.resolve() / SNAPSHOTS / previous.snapshot
    old = m.get("delta") or {}
    n_base = int(old.get("base_chunks", len(previous.chunks)))
    base_dense = old.get("base_dense") or m.get("dense") or {"type": "flat"}
    old_tomb = np.load(base_folder / TOMBSTONES) if old else np.zeros(0, dtype=np.int64)
    touched = set(changes["changed"]) | set(changes["removed"])
    gone = [i for i, d in enumerate(previous.doc_ids) if d in touched]
    assert previous.row_docs is not None
    row_docs = np.asarray(previous.row_docs)
    dead_base = np.flatnonzero(np.isin(row_docs[:n_base], gone))
    tomb = np.union1d(old_tomb, dead_base).astype(np.int64)
    new_dead = np.setdiff1d(dead_base, old_tomb)
    old_rows = np.arange(n_base, len(previous.chunks))
    dropped_mask = np.isin(row_docs[n_base:], gone)
    survive, dropped = old_rows[~dropped_mask], old_rows[dropped_mask]

    # the delta: surviving delta chunks of the previous snapshot, then the new ones
    delta_chunks = [previous.chunks[int(r)] for r in survive] + list(chunks)
    dim = vectors.shape[1]
    old_vecs = previous.vectors[survive] if len(survive) else np.zeros((0, dim), np.float32)
    delta_vectors = np.concatenate([np.asarray(old_vecs, np.float32), vectors])
    parts = [previous.units_of(int(r)) for r in survive]
    unit_parts = [np.zeros((0, dim), np.float32) if p is None else np.asarray(p) for p in parts]
    if units is None or unit_offsets is None:
        units, unit_offsets = np.zeros((0, dim), np.float32), np.zeros(len(chunks) + 1, np.int64)
    counts = [len(p) for p in unit_parts] + list(np.diff(unit_offsets))
    delta_offsets = np.zeros(len(delta_chunks) + 1, dtype=np.int64)
    delta_offsets[1:] = np.cumsum(counts)
    delta_units = np.concatenate([*unit_parts, units]).astype(np.float32)

    by_id = {d.id: d for d in docs}
    wanted = {c.doc_id for c in delta_chunks} | set(changes["added"]) | set(changes["changed"])
    delta_docs = [_with_note(d, previous, changes) for d in docs if d.id in wanted]
    auto = int(base_dense.get("auto_threshold", 50_000))

    # term statistics of the live chunks: previous, minus what left, plus what came
    prev_titles = {k: str(v.get("title") or "") for k, v in previous.sources.items()}
    left = [previous.chunks[int(r)] for r in np.concatenate([new_dead, dropped])]
    doc_freq = Counter(previous.doc_freq)
    doc_freq.subtract(token_doc_freq(left, prev_titles, bm25_stemmer))
    doc_freq.update(token_doc_freq(chunks, {d.id: d.title for d in docs}, bm25_stemmer))
    merged_df = {t: n for t, n in doc_freq.items() if n > 0}
    n_live = n_base - len(tomb) + len(delta_chunks)

    delta_sources = sources_of(delta_docs, corpus_root)
    sources = {d: (delta_sources[d] if d in delta_sources else previous.sources[d]) for d in by_id}
    pos = {d: i for i, d in enumerate(sources)}
    remap = np.array([pos.get(d, -1) for d in previous.doc_ids] + [-1], dtype=np.int32)
    base_rows = remap[np.where(row_docs[:n_base] >= 0, row_docs[:n_base], -1)]
    base_rows[tomb] = -1
    merged_rows = np.concatenate(
        [base_rows, np.array([pos[c.doc_id] for c in delta_chunks], dtype=np.int32)]
    ).astype(np.int32)
    prev_docs = m.get("corpus", {}).get("documents", {})

    def fill(folder: Path) -> None:
        link_base(base_folder, folder)
        # the delta: a whole small index, written as a full build writes one; its BM25 scored
        # with each term's idf over all live chunks (base and delta), so the two add up
        delta = write_index(folder / DELTA, delta_docs, delta_chunks,
                            StagedBatch(delta_vectors, delta_units, np.asarray(counts)),
                            model=m["model"], chunker=m["chunker"], bm25_stemmer=bm25_stemmer,
                            dense={"type": "auto", "auto_threshold": auto},
                            corpus_root=corpus_root, bm25_scope=(merged_df, n_live))  # fmt: skip
        new_docs = delta["corpus"]["documents"]
        manifest = {k: v for k, v in m.items() if k not in ("store", "build_seconds")}
        manifest |= {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "bm25": dict(m["bm25"]) | {"stemmer": bm25_stemmer},
            "dense": base_dense,
            "delta": {
                "base_chunks": n_base,
                "base_dense": base_dense,
                "base_created_at": old.get("base_created_at", m.get("created_at")),
                "chunks": len(delta_chunks),
                "tombstones": len(tomb),
                "dense": delta["dense"],
            },
            "corpus": {
                "fingerprint": corpus_fingerprint,
                "files": dict(corpus_files),
                "documents": {d: new_docs[d] if d in new_docs else prev_docs[d] for d in by_id},
            },
            "counts": {"documents": len(docs), "chunks": n_live,
                       "sentences": int(m.get("counts", {}).get("sentences", 0)) + len(units)},
        } | dict(extra_manifest or {})  # fmt: skip
        np.save(folder / TOMBSTONES, tomb)
        np.save(folder / ROW_DOCS, merged_rows)
        (folder / "sources.json").write_text(
            json.dumps(sources, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        (folder / "doc_freq.json").write_text(json.dumps(merged_df), encoding="utf-8")
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    name = write_snapshot(index_dir, fill)
    return load_snapshot(index_dir, index_dir.resolve() / SNAPSHOTS / name)


def _with_note(doc: Document, previous: SearchIndex, changes: dict[str, list[str]]) -> Document:
    """`doc` with its body: its own, or (loaded without it, and unchanged since `previous`)
    the body `previous` stored; an added or changed source must hold its body."""
    if doc.body:
        return doc
    if doc.id in changes["added"] or doc.id in changes["changed"]:
        raise ValueError(f"add_delta: the added or changed source {doc.id} holds no body")
    return replace(doc, body=previous.notes[doc.id]["body"])


def open_incremental(
    index_dir: Path,
    folder: Path,
    manifest: dict[str, Any],
    open_parts: Callable[..., tuple[Any, ...]],
    name: str,
) -> SearchIndex:
    """The index of an incremental snapshot: base and delta opened memory-mapped and searched
    as one (rows: the base's, then the delta's; tombstoned base rows never returned)."""
    info = manifest["delta"]
    b_dense, b_vec, b_store, b_bm25, b_units, b_off = open_parts(folder, info["base_dense"],
                                                                 index_dir)  # fmt: skip
    d_dense, d_vec, d_store, d_bm25, d_units, d_off = open_parts(folder / DELTA, info["dense"],
                                                                 index_dir)  # fmt: skip
    tomb = np.load(folder / TOMBSTONES)
    sources = json.loads((folder / "sources.json").read_text(encoding="utf-8"))
    doc_freq = json.loads((folder / "doc_freq.json").read_text(encoding="utf-8"))
    row_docs = np.load(folder / ROW_DOCS, mmap_mode="r")
    if len(row_docs) != b_store.n_chunks + d_store.n_chunks:
        raise ValueError(f"{len(row_docs)} rows for {b_store.n_chunks + d_store.n_chunks} chunks")
    offsets = np.concatenate([np.asarray(b_off)[:-1], np.asarray(d_off) + int(b_off[-1])])
    index = SearchIndex(
        manifest,
        StackedChunks(ChunkStore(b_store), ChunkStore(d_store)),
        sources,
        StackedVectors(b_vec, d_vec),
        MergedBM25(b_bm25, d_bm25, tomb),
        doc_freq,
        dense=DeltaDense(b_dense, b_vec, info["base_dense"], d_dense, d_vec, info["dense"], tomb),
        chunk_rows=StackedRows(ChunkRows(b_store), ChunkRows(d_store), b_store.n_chunks, tomb),
        notes=StackedNotes(NoteStore(b_store), NoteStore(d_store), sources),
        unit_vectors=StackedVectors(b_units, d_units),
        unit_offsets=offsets,
        snapshot=name,
        row_docs=row_docs,
    )
    index.n_docs_lexical = max(1, int(manifest["counts"]["chunks"]))
    return index
