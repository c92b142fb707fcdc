"""The vectors a build indexes: which chunks keep their vectors from the previous index (same
model, backend, chunking and text), and embedding the rest: batch by batch in a full build
(`stream_build.py`), for the new chunks at once in an incremental one (`chunk_vectors`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .chunk import embedding_text
from .embed import Embedder, embedder_backend
from .sentences import answer_units
from .types import Chunk, Document

if TYPE_CHECKING:
    from .index import SearchIndex

StageProgress = Callable[[str, int, int], None]


@dataclass
class ChunkVectors:
    """Vectors of every chunk (row = chunk position) and of their answer units, with what was
    reused from the previous index."""

    vectors: np.ndarray
    units: np.ndarray
    unit_offsets: np.ndarray
    changes: dict[str, list[str]] = field(default_factory=dict)
    reused: int = 0


def index_backend(manifest: dict[str, Any]) -> str:
    """The embedding backend an index was built with (indexes from before backends: torch)."""
    return str(manifest.get("model", {}).get("backend") or "torch")


def index_backend_version(manifest: dict[str, Any]) -> int:
    """The backend recipe an index was built with (indexes from before the field: the first
    ONNX recipe, 1, or 0 for torch)."""
    model = manifest.get("model", {})
    default = 1 if index_backend(manifest).startswith("onnx") else 0
    return int(model.get("backend_version", default))


def same_embedding(
    manifest: dict[str, Any], embedder: Embedder, chunker: dict[str, int], format_version: int
) -> bool:
    """Whether an index's vectors can be reused by a build with this embedder and chunking."""
    model = manifest.get("model", {})
    return (
        manifest.get("format_version") == format_version
        and model.get("fingerprint") == embedder.fingerprint
        and model.get("dimension") == embedder.dimension
        and index_backend(manifest) == embedder_backend(embedder)
        and index_backend_version(manifest) == embedder.backend_version
        and manifest.get("chunker") == chunker
    )


def document_changes(
    docs: Sequence[Document], previous: SearchIndex | None
) -> dict[str, list[str]]:
    """Ids of the documents added, changed and removed since the previous index."""
    prev_docs: dict[str, Any] = {}
    if previous is not None:
        prev_docs = previous.manifest.get("corpus", {}).get("documents", {})
    changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    for doc in docs:
        old = prev_docs.get(doc.id)
        if old is None:
            changes["added"].append(doc.id)
        elif old.get("fingerprint") != doc.fingerprint:
            changes["changed"].append(doc.id)
    changes["removed"] = sorted(set(prev_docs) - {d.id for d in docs})
    return changes


def chunk_vectors(
    docs: Sequence[Document],
    chunks: Sequence[Chunk],
    embedder: Embedder,
    *,
    chunker: dict[str, int],
    format_version: int,
    previous: SearchIndex | None = None,
    progress: StageProgress | None = None,
    unit_vectors: bool = True,
) -> ChunkVectors:
    """Reuse the vectors of unchanged chunks of unchanged documents; embed the others."""
    source = VectorSource(docs, embedder, chunker=chunker, format_version=format_version,
                          previous=previous, unit_vectors=unit_vectors)  # fmt: skip
    return replace(source.vectors(chunks, progress), changes=document_changes(docs, previous))


class VectorSource:
    """Where a build's vectors come from: the previous index for unchanged chunks of unchanged
    documents (same model, backend, chunking and text), the embedder for the others. Called
    once for all chunks (`chunk_vectors`) or batch after batch (`stream_build.py`)."""

    def __init__(
        self,
        docs: Sequence[Document],
        embedder: Embedder,
        *,
        chunker: dict[str, int],
        format_version: int,
        previous: SearchIndex | None = None,
        unit_vectors: bool = True,
    ) -> None:
        self.by_doc = {d.id: d for d in docs}
        self.embedder = embedder
        self.previous = previous
        self.unit_vectors = unit_vectors
        self.reusable = previous is not None and same_embedding(
            previous.manifest, embedder, chunker, format_version
        )
        self.prev_docs: dict[str, Any] = {}
        if previous is not None:
            self.prev_docs = previous.manifest.get("corpus", {}).get("documents", {})

    def _previous_row(self, chunk: Chunk) -> int | None:
        """The chunk's row in the previous index when its vectors can be reused."""
        previous = self.previous
        if not self.reusable or previous is None:
            return None
        old = self.prev_docs.get(chunk.doc_id, {}).get("fingerprint")
        if old != self.by_doc[chunk.doc_id].fingerprint:
            return None
        row = previous.chunk_rows.get(chunk.id)
        return row if row is not None and previous.chunks[row].text == chunk.text else None

    def vectors(
        self, chunks: Sequence[Chunk], progress: StageProgress | None = None
    ) -> ChunkVectors:
        """Vectors of `chunks` (row = position) and of their answer units."""
        embedder, previous = self.embedder, self.previous
        vectors = np.zeros((len(chunks), embedder.dimension), dtype=np.float32)
        todo: list[int] = []
        reused_rows: dict[int, int] = {}  # chunk -> its row in `previous`
        for i, chunk in enumerate(chunks):
            row = self._previous_row(chunk)
            if row is not None and previous is not None:
                vectors[i] = previous.vectors[row]
                reused_rows[i] = row
            else:
                todo.append(i)
        by_doc = self.by_doc
        texts = [embedding_text(chunks[i], by_doc[chunks[i].doc_id].title) for i in todo]
        if texts:
            vectors[todo] = embedder.embed_documents(
                texts, progress=(lambda d, t: progress("embed", d, t)) if progress else None
            )
        if self.unit_vectors:
            units, offsets = _unit_vectors(chunks, embedder, previous, reused_rows, progress)
        else:
            units = np.zeros((0, embedder.dimension), dtype=np.float32)
            offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
        return ChunkVectors(vectors, units, offsets, reused=len(reused_rows))


def _unit_vectors(
    chunks: Sequence[Chunk],
    embedder: Embedder,
    previous: SearchIndex | None,
    reused_rows: dict[int, int],
    progress: StageProgress | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of every chunk's answer units (see `sentences.answer_units`) and, per chunk, where
    its rows start; a reused chunk keeps the unit vectors of the previous index."""
    units = [[u.text for u in answer_units(c.text)] for c in chunks]
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(u) for u in units])
    out = np.zeros((int(offsets[-1]), embedder.dimension), dtype=np.float32)
    todo: list[int] = []  # unit rows to embed
    texts: list[str] = []
    for i, chunk_units in enumerate(units):
        old = previous.units_of(reused_rows[i]) if previous and i in reused_rows else None
        if old is not None and len(old) == len(chunk_units):
            out[offsets[i] : offsets[i + 1]] = old
            continue
        todo.extend(range(int(offsets[i]), int(offsets[i + 1])))
        texts.extend(chunk_units)
    if texts:
        out[todo] = embedder.embed_documents(
            texts, progress=(lambda d, t: progress("embed-sentences", d, t)) if progress else None
        )
    return out, offsets
