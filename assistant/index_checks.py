"""Whether an index can be used: its format, model, backend and dimension against the settings,
and whether it is stale against the corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .chunk_vectors import index_backend, index_backend_version
from .errors import IndexStateError

# 2: answer-unit (sentence) vectors; 3: layout for scale (chunk store in SQLite, vectors kept
# once and memory-mapped, dense index type recorded under "dense", BM25 memory-mapped)
FORMAT_VERSION = 3


def check_format(manifest: dict[str, Any], index_dir: Path) -> None:
    """Refuse an index written in another layout (format version)."""
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexStateError(
            f"index in {index_dir} has format version {version} (an older layout); this program "
            f"reads version {FORMAT_VERSION}",
            f"rebuild it: assistant index --force --index {index_dir}",
        )


def check_model(manifest: dict[str, Any], name: str, fingerprint: str, index_dir: Path) -> None:
    """Refuse an index built with another format or embedding model."""
    rebuild = f"rebuild it: assistant index --force --index {index_dir}"
    check_format(manifest, index_dir)
    model = manifest.get("model", {})
    if model.get("fingerprint") != fingerprint:
        raise IndexStateError(
            f"index in {index_dir} was built with embedding model '{model.get('name')}' "
            f"(fingerprint {model.get('fingerprint')}), but the settings ask for '{name}' "
            f"(fingerprint {fingerprint})",
            rebuild,
        )


def check_backend(
    manifest: dict[str, Any], backend: str, index_dir: Path, version: int | None = None
) -> None:
    """Refuse an index embedded by another backend (torch, onnx, onnx-int8) or another version
    of its recipe: the vectors differ."""
    built = index_backend(manifest)
    built_version = index_backend_version(manifest)
    if built == backend and version is not None and built_version != version:
        raise IndexStateError(
            f"index in {index_dir} was built with version {built_version} of the '{built}' "
            f"recipe (export and quantisation); this program makes version {version}",
            f"rebuild it: assistant index --force --index {index_dir}",
        )
    if built != backend:
        raise IndexStateError(
            f"index in {index_dir} was built with the '{built}' embedding backend, but the "
            f"settings ask for '{backend}'",
            f"rebuild it: assistant index --force --index {index_dir} (or set "
            f"ASSISTANT_EMBEDDING_BACKEND={built})",
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
    if not manifest.get("notes"):
        return "the index predates source texts stored in the index"
    if manifest.get("chunker") != chunker:
        return (
            "the chunking settings or the answer-sentence recipe changed since the index was built"
        )
    if manifest.get("bm25", {}).get("stemmer") != bm25_stemmer:
        return "the BM25 stemmer setting changed since the index was built"
    return None
