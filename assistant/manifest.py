"""The index manifest (`manifest.json` of a snapshot): what an index is, as a typed model.

A build writes it through `Manifest` and a load reads it back through `Manifest`, so a field
misspelt by a change, or a manifest damaged on disk, is caught with the field named. The rest of
the program reads the validated manifest as the plain dict it is stored as (`Manifest.dump`).
Fields of a later format are kept (`extra="allow"`); only what every format since the first has
is required, so an older index still reaches the format check that names the rebuild command.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import IndexStateError


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


class ModelInfo(_Part):
    """The embedding model the vectors were made with."""

    name: str = Field(description="Model name or path as given in the settings.")
    dimension: int = Field(ge=1, description="Length of every vector.")
    fingerprint: str = Field(description="Hash of the model's files (another model: rebuild).")
    backend: str = Field(default="torch", description="torch, onnx or onnx-int8.")
    backend_version: int | None = Field(
        default=None, description="Version of the backend's recipe (ONNX export, quantisation)."
    )


class Bm25Info(_Part):
    """How the lexical index scores."""

    stemmer: str | None = Field(default=None, description="Snowball stemmer language, or none.")
    k1: float = Field(default=1.5, description="BM25 term-frequency saturation.")
    b: float = Field(default=0.75, description="BM25 length normalisation.")
    method: str = Field(default="lucene", description="bm25s scoring variant.")


class CorpusInfo(_Part):
    """The corpus the index was built from (staleness and incremental builds read it)."""

    fingerprint: str = Field(description="Combined fingerprint of every corpus file.")
    files: dict[str, str] = Field(default_factory=dict, description="File -> fingerprint.")
    documents: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Source id -> fingerprint, path and chunk count."
    )


class Counts(_Part):
    """How much the index holds."""

    documents: int = Field(ge=0, description="Sources.")
    chunks: int = Field(ge=0, description="Passages.")
    sentences: int = Field(default=0, ge=0, description="Answer units with their own vectors.")


class Manifest(_Part):
    """Everything an index says about itself."""

    format_version: int = Field(description="Layout of the snapshot's files (see index_checks).")
    created_at: str | None = Field(default=None, description="When the build finished (UTC).")
    model: ModelInfo
    chunker: dict[str, int] = Field(default_factory=dict, description="Chunking settings.")
    bm25: Bm25Info = Field(default_factory=Bm25Info)
    dense: dict[str, Any] = Field(
        default_factory=dict, description="Dense index type, factory string, search parameters."
    )
    layout: dict[str, str] = Field(default_factory=dict, description="Which file holds what.")
    corpus: CorpusInfo | None = None
    counts: Counts
    libraries: dict[str, str] = Field(default_factory=dict, description="Library versions.")
    notes: str | None = Field(default=None, description="File of the sources' note bodies.")
    store: dict[str, Any] = Field(default_factory=dict, description="The store it is served by.")
    build_seconds: float | None = Field(default=None, description="Wall time of the build.")

    def dump(self) -> dict[str, Any]:
        """The manifest as stored: a JSON-ready dict holding what was given (nothing added)."""
        return self.model_dump(mode="json", exclude_unset=True)


def validated(raw: Any, where: str, rebuild: str) -> dict[str, Any]:
    """`raw` checked against `Manifest`, as a dict; a bad one names its field and the fix."""
    try:
        return Manifest.model_validate(raw).dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise IndexStateError(
            f"index manifest {where} is damaged: {field}: {first['msg']}", rebuild
        ) from None


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the index and the scores."""
    out = {}
    for name in ("net-liver-assistant", "sentence-transformers", "torch", "faiss-cpu", "bm25s",
                 "numpy", "PyStemmer", "onnxruntime", "tokenizers"):  # fmt: skip
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
