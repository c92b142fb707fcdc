"""The manifest of a built index (what it was built from and with, its layout and counts) and
the per-source records it stores, as the build (`stream_build.py`) writes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .chunk_store import CHUNKS_DB
from .embed import Embedder, embedder_backend
from .index_checks import FORMAT_VERSION
from .manifest import Manifest, library_versions
from .types import Document

NOTES = CHUNKS_DB  # each source's note body (table notes), so sources are served from the snapshot


def model_record(embedder: Embedder) -> dict[str, Any]:
    """The embedding model as the manifest records it (what its vectors depend on)."""
    return {
        "name": embedder.name,
        "dimension": embedder.dimension,
        "fingerprint": embedder.fingerprint,
        "backend": embedder_backend(embedder),
        "backend_version": embedder.backend_version,
    }


def relative_path(path: Path, corpus_root: Path | None) -> str:
    """A note's path as stored: relative to `corpus_root` when inside it, else as given."""
    full = Path(path).absolute()
    if corpus_root is not None and full.is_relative_to(corpus_root.absolute()):
        return full.relative_to(corpus_root.absolute()).as_posix()
    return str(path)


def sources_of(docs: Sequence[Document], corpus_root: Path | None) -> dict[str, dict[str, Any]]:
    """Source id -> its metadata and note path (sources.json)."""
    return {d.id: d.metadata_dict() | {"path": relative_path(d.path, corpus_root)} for d in docs}


def build_manifest(
    docs: Sequence[Document],
    per_doc: Mapping[str, int],
    *,
    chunks: int,
    sentences: int,
    model: dict[str, Any],
    chunker: dict[str, int],
    bm25_stemmer: str | None,
    corpus_files: dict[str, str],
    corpus_fingerprint: str,
    corpus_root: Path | None,
    dense: dict[str, Any],
) -> dict[str, Any]:
    """The validated manifest of an index of `chunks` chunks (`per_doc`: chunks per source)."""
    manifest = {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": dict(model),
        "chunker": dict(chunker),
        "bm25": {"stemmer": bm25_stemmer, "k1": 1.5, "b": 0.75, "method": "lucene"},
        "dense": dense,
        "layout": {
            "chunks": f"{CHUNKS_DB} (SQLite, read by row)",
            "vectors": "kept once: in dense.faiss (flat, hnsw; memory-mapped) or "
            "vectors.npy (read by row)",
            "bm25": "bm25/ (memory-mapped)",
        },
        "corpus": {
            "fingerprint": corpus_fingerprint,
            "files": dict(corpus_files),
            "documents": {
                d.id: {
                    "fingerprint": d.fingerprint,
                    "path": relative_path(d.path, corpus_root),
                    "chunks": per_doc.get(d.id, 0),
                }
                for d in docs
            },
        },
        "counts": {"documents": len(docs), "chunks": chunks, "sentences": sentences},
        "libraries": library_versions(),
        "notes": NOTES,
    }
    return Manifest.model_validate(manifest).dump()  # a misspelt field fails here, not later
