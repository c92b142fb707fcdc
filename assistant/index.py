"""Build, save and load the search index: FAISS (exact inner product) + BM25, with a manifest."""

from __future__ import annotations

import bisect
import json
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .chunk import embedding_text
from .embed import Embedder
from .errors import IndexStateError
from .lexical import tokenize_many
from .types import Chunk, Document

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
KEEP_FILES = ("README.md", ".gitignore")
StageProgress = Callable[[str, int, int], None]


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the index and the scores."""
    out = {}
    for name in ("net-liver-assistant", "sentence-transformers", "torch", "faiss-cpu", "bm25s",
                 "numpy", "PyStemmer"):  # fmt: skip
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass
class SearchIndex:
    """An index in memory: chunks, their sources, vectors and the two search structures."""

    manifest: dict[str, Any]
    chunks: list[Chunk]
    sources: dict[str, dict[str, Any]]
    vectors: np.ndarray
    bm25: Any
    doc_freq: dict[str, int]
    dense: Any = None
    chunk_rows: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import faiss

        faiss.omp_set_num_threads(1)
        if self.dense is None:
            self.dense = faiss.IndexFlatIP(self.vectors.shape[1])
            if len(self.vectors):
                self.dense.add(self.vectors)
        self.chunk_rows = {c.id: i for i, c in enumerate(self.chunks)}
        self.n_docs_lexical = max(1, len(self.chunks))
        self._terms = sorted(self.doc_freq)

    def has_term(self, stem: str) -> bool:
        """Whether a stemmed token, or a longer term it is a prefix of, occurs in the corpus.

        The prefix match lets 'jejunal' (stem 'jejun') find 'jejunum' in the corpus.
        """
        if stem in self.doc_freq:
            return True
        if len(stem) < 4:
            return False
        i = bisect.bisect_left(self._terms, stem)
        return i < len(self._terms) and self._terms[i].startswith(stem)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def idf(self, token: str) -> float:
        """Inverse document frequency of a (stemmed) token over chunks."""
        df = self.doc_freq.get(token, 0)
        return math.log(1 + (self.n_docs_lexical - df + 0.5) / (df + 0.5))

    def source_of(self, chunk: Chunk) -> dict[str, Any]:
        meta = self.sources[chunk.doc_id]
        return {k: meta.get(k) for k in ("id", "title", "authors", "journal", "year", "pmid",
                                          "doi", "url", "source_type")}  # fmt: skip


@dataclass
class BuildReport:
    """What a build did."""

    documents: int
    chunks: int
    seconds: float
    added: list[str]
    changed: list[str]
    removed: list[str]
    reused_chunks: int
    embedded_chunks: int
    index_dir: Path

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["index_dir"] = str(self.index_dir)
        return out


def build_index(
    docs: Sequence[Document],
    chunks: Sequence[Chunk],
    embedder: Embedder,
    *,
    chunker: dict[str, int],
    bm25_stemmer: str | None,
    corpus_files: dict[str, str],
    corpus_fingerprint: str,
    previous: SearchIndex | None = None,
    progress: StageProgress | None = None,
) -> tuple[SearchIndex, dict[str, list[str]], int]:
    """Embed what is new or changed (reusing vectors of unchanged documents) and index it all.

    Returns the index, the added/changed/removed document ids and the number of reused chunks.
    """
    import bm25s

    by_doc = {d.id: d for d in docs}
    prev_docs: dict[str, Any] = {}
    reusable = previous is not None and _same_embedding(previous.manifest, embedder, chunker)
    if previous is not None:
        prev_docs = previous.manifest.get("corpus", {}).get("documents", {})
    changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    for doc in docs:
        old = prev_docs.get(doc.id)
        if old is None:
            changes["added"].append(doc.id)
        elif old.get("fingerprint") != doc.fingerprint:
            changes["changed"].append(doc.id)
    changes["removed"] = sorted(set(prev_docs) - set(by_doc))

    vectors = np.zeros((len(chunks), embedder.dimension), dtype=np.float32)
    todo: list[int] = []
    reused = 0
    for i, chunk in enumerate(chunks):
        unchanged = (
            reusable
            and prev_docs.get(chunk.doc_id, {}).get("fingerprint")
            == by_doc[chunk.doc_id].fingerprint
        )
        row = previous.chunk_rows.get(chunk.id) if (unchanged and previous) else None
        if row is not None and previous is not None and previous.chunks[row].text == chunk.text:
            vectors[i] = previous.vectors[row]
            reused += 1
        else:
            todo.append(i)
    texts = [embedding_text(chunks[i], by_doc[chunks[i].doc_id].title) for i in todo]
    if texts:
        vectors[todo] = embedder.embed_documents(
            texts, progress=(lambda d, t: progress("embed", d, t)) if progress else None
        )
    all_texts = [embedding_text(c, by_doc[c.doc_id].title) for c in chunks]
    if progress:
        progress("bm25", 0, 1)
    tokens = tokenize_many(all_texts, bm25_stemmer)
    bm25 = bm25s.BM25()
    bm25.index(_non_empty(tokens), show_progress=False)
    doc_freq = Counter(t for toks in tokens for t in set(toks))
    if progress:
        progress("bm25", 1, 1)
    manifest = {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "name": embedder.name,
            "dimension": embedder.dimension,
            "fingerprint": embedder.fingerprint,
        },
        "chunker": dict(chunker),
        "bm25": {"stemmer": bm25_stemmer, "k1": 1.5, "b": 0.75, "method": "lucene"},
        "corpus": {
            "fingerprint": corpus_fingerprint,
            "files": dict(corpus_files),
            "documents": {
                d.id: {
                    "fingerprint": d.fingerprint,
                    "path": str(d.path),
                    "chunks": sum(1 for c in chunks if c.doc_id == d.id),
                }
                for d in docs
            },
        },
        "counts": {"documents": len(docs), "chunks": len(chunks)},
        "libraries": library_versions(),
    }
    sources = {d.id: d.metadata_dict() for d in docs}
    index = SearchIndex(manifest, list(chunks), sources, vectors, bm25, dict(doc_freq))
    return index, changes, reused


def _non_empty(tokens: list[list[str]]) -> list[list[str]]:
    """bm25s needs at least one token per document; an empty chunk gets a placeholder."""
    return [t if t else ["\u2205"] for t in tokens]


def _same_embedding(manifest: dict[str, Any], embedder: Embedder, chunker: dict[str, int]) -> bool:
    model = manifest.get("model", {})
    return (
        manifest.get("format_version") == FORMAT_VERSION
        and model.get("fingerprint") == embedder.fingerprint
        and model.get("dimension") == embedder.dimension
        and manifest.get("chunker") == chunker
    )


def save_index(index: SearchIndex, index_dir: Path) -> None:
    """Write the index atomically: into a temporary folder beside it, then swap folders."""
    import faiss

    index_dir = index_dir.resolve()
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_dir.parent / f".{index_dir.name}.tmp-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir()
    try:
        faiss.write_index(index.dense, str(tmp / "dense.faiss"))
        index.bm25.save(str(tmp / "bm25"), show_progress=False)
        with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as fh:
            for chunk in index.chunks:
                fh.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
        (tmp / "sources.json").write_text(
            json.dumps(index.sources, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        (tmp / "doc_freq.json").write_text(json.dumps(index.doc_freq), encoding="utf-8")
        for name in KEEP_FILES:
            if (index_dir / name).exists():
                shutil.copy2(index_dir / name, tmp / name)
        # the manifest goes last: a folder without one is never taken for an index
        (tmp / MANIFEST).write_text(json.dumps(index.manifest, indent=2), encoding="utf-8")
        old = None
        if index_dir.exists():
            old = index_dir.parent / f".{index_dir.name}.old-{os.getpid()}-{time.time_ns()}"
            index_dir.rename(old)
        tmp.rename(index_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The manifest of the index in `index_dir`, or None when there is no built index."""
    path = index_dir / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexStateError(
            f"index manifest {path} is unreadable: {exc}",
            f"rebuild it: assistant index --force --index {index_dir}",
        ) from exc


def load_index(index_dir: Path) -> SearchIndex:
    """Read an index written by `save_index`."""
    import bm25s
    import faiss

    manifest = read_manifest(index_dir)
    if manifest is None:
        raise IndexStateError(
            f"no index in {index_dir}", f"build it: assistant index --index {index_dir}"
        )
    try:
        dense = faiss.read_index(str(index_dir / "dense.faiss"))
        chunks = [
            Chunk(**json.loads(line))
            for line in (index_dir / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        sources = json.loads((index_dir / "sources.json").read_text(encoding="utf-8"))
        doc_freq = json.loads((index_dir / "doc_freq.json").read_text(encoding="utf-8"))
        bm25 = bm25s.BM25.load(str(index_dir / "bm25"), show_progress=False, verbosity=0)
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        raise IndexStateError(
            f"index in {index_dir} is incomplete or damaged: {exc}",
            f"rebuild it: assistant index --force --index {index_dir}",
        ) from exc
    vectors = (
        dense.reconstruct_n(0, dense.ntotal)
        if dense.ntotal
        else np.zeros((0, dense.d), dtype=np.float32)
    )
    if len(chunks) != dense.ntotal:
        raise IndexStateError(
            f"index in {index_dir} is inconsistent ({len(chunks)} chunks, {dense.ntotal} vectors)",
            f"rebuild it: assistant index --force --index {index_dir}",
        )
    return SearchIndex(manifest, chunks, sources, np.asarray(vectors, dtype=np.float32), bm25,
                       doc_freq, dense=dense)  # fmt: skip


def check_model(manifest: dict[str, Any], name: str, fingerprint: str, index_dir: Path) -> None:
    """Refuse an index built with another format or embedding model."""
    rebuild = f"rebuild it: assistant index --force --index {index_dir}"
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexStateError(
            f"index in {index_dir} has format version {version}; this program reads "
            f"version {FORMAT_VERSION}",
            rebuild,
        )
    model = manifest.get("model", {})
    if model.get("fingerprint") != fingerprint:
        raise IndexStateError(
            f"index in {index_dir} was built with embedding model '{model.get('name')}' "
            f"(fingerprint {model.get('fingerprint')}), but the settings ask for '{name}' "
            f"(fingerprint {fingerprint})",
            rebuild,
        )


def check_dimension(manifest: dict[str, Any], dimension: int, index_dir: Path) -> None:
    """Refuse an index whose vectors do not have the model's dimension."""
    built = manifest.get("model", {}).get("dimension")
    if built != dimension:
        raise IndexStateError(
            f"index in {index_dir} holds {built}-dimensional vectors; the model makes {dimension}",
            f"rebuild it: assistant index --force --index {index_dir}",
        )


def stale_reason(
    manifest: dict[str, Any],
    corpus_fingerprint: str,
    chunker: dict[str, int],
    bm25_stemmer: str | None,
) -> str | None:
    """Why the index no longer matches the corpus or the chunking settings, or None."""
    if manifest.get("corpus", {}).get("fingerprint") != corpus_fingerprint:
        return "the corpus changed since the index was built"
    if manifest.get("chunker") != chunker:
        return "the chunking settings changed since the index was built"
    if manifest.get("bm25", {}).get("stemmer") != bm25_stemmer:
        return "the BM25 stemmer setting changed since the index was built"
    return None
