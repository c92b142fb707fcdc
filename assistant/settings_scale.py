"""The settings of the index at scale: dense index type, store (Milvus) and Ray embedding.

Part of the one settings table (`settings.Settings` inherits them, so each reads
`ASSISTANT_<NAME>` like every other setting); kept here so that table stays readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field


class ScaleSettings(BaseModel):
    """Settings for large corpora and for running beyond one machine (docs/scale.md)."""

    # --- dense index (docs/pipeline.md, "Dense index type")
    dense_index: Literal["auto", "flat", "hnsw", "ivf-sq8", "ivf-pq"] = Field(
        default="auto",
        description=(
            "Dense index type (FAISS): flat (exact search), hnsw (graph), ivf-sq8 or ivf-pq "
            "(inverted lists with 8-bit scalar or product quantisation), or auto: flat up to "
            "dense_auto_threshold chunks, ivf-sq8 above (see dense_refine). "
            "Recorded in the manifest; a change takes effect at the next full build "
            "(assistant index --force). See docs/performance.md."
        ),
    )
    dense_auto_threshold: int = Field(
        default=50_000,
        ge=0,
        description="Chunk count above which dense_index=auto builds an approximate index.",
    )
    incremental_min_chunks: int = Field(
        default=50_000,
        ge=0,
        description=(
            "Smallest local index that takes added, changed and removed sources as a delta "
            "beside its base instead of being rebuilt (smaller indexes are rebuilt whole, "
            "which is quick). See docs/performance.md."
        ),
    )
    incremental_compact_share: float = Field(
        default=0.1,
        gt=0,
        description=(
            "Share of the base index (delta chunks plus tombstoned base chunks) above which "
            "`assistant index` suggests merging the delta: assistant index --compact."
        ),
    )
    build_batch_chunks: int = Field(
        default=1024,
        ge=1,
        description=(
            "Chunks a full build embeds and writes at a time: memory stays bounded by a batch, "
            "each embedded batch is staged in the index folder (.building/) so an interrupted "
            "build resumes without embedding it again. Changing it restarts the staging."
        ),
    )
    hnsw_m: int = Field(default=32, ge=4, le=128, description="HNSW: neighbours per node (M).")
    hnsw_ef_construction: int = Field(
        default=80, ge=8, description="HNSW: candidate list size while building (efConstruction)."
    )
    hnsw_ef_search: int = Field(
        default=128, ge=1, description="HNSW: candidate list size while searching (efSearch)."
    )
    ivf_nlist: int = Field(
        default=0,
        ge=0,
        description="IVF: number of inverted lists (0: 4 x sqrt(chunks), at least 16).",
    )
    ivf_nprobe: int = Field(
        default=48, ge=1, description="IVF: inverted lists visited per query (nprobe)."
    )
    ivf_train_sample: int = Field(
        default=100_000,
        ge=1000,
        description="IVF: vectors (a random sample) the coarse quantiser and codes train on.",
    )
    dense_refine: int = Field(
        default=2,
        ge=0,
        le=20,
        description=(
            "Approximate dense search: 0 ranks by the index's own (quantised) scores; N >= 1 "
            "fetches N x n candidates and re-scores them exactly against the stored float "
            "vectors (reads those rows of vectors.npy, by row, not memory-mapped)."
        ),
    )

    # --- store (where the chunks are searched; docs/scale.md)
    store: Literal["local", "milvus"] = Field(
        default="local",
        description=(
            "Where dense and BM25 search run: local (FAISS + bm25s files in the index folder) or "
            "milvus (a Milvus collection holding vectors, BM25 text and filter fields; Milvus "
            "Lite for a local file URI, a server or cluster for http(s)://). Needs the `scale` "
            "extra for milvus. See docs/scale.md."
        ),
    )
    milvus_uri: str | None = Field(
        default=None,
        description=(
            "Milvus to use with store=milvus: a local file (Milvus Lite, e.g. ./milvus.db) or "
            "http(s)://host:19530 for a server or cluster (default: milvus.db in the index folder)."
        ),
    )
    milvus_token: str | None = Field(
        default=None,
        description="Milvus credentials: 'user:password' or an API key (never printed).",
    )
    milvus_db_name: str | None = Field(
        default=None, description="Milvus database (default: the server's default database)."
    )
    milvus_collection: str = Field(
        default="assistant_chunks",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$",
        description=(
            "Alias of the live Milvus collection; each build writes a new collection named "
            "<alias>__<timestamp> and switches this alias to it."
        ),
    )
    milvus_tls_ca: Path | None = Field(
        default=None,
        description="CA certificate (PEM) to verify a Milvus server over TLS (https:// URI).",
    )
    milvus_tls_cert: Path | None = Field(
        default=None, description="Client certificate (PEM) for mutual TLS with Milvus."
    )
    milvus_tls_key: Path | None = Field(
        default=None, description="Client private key (PEM) for mutual TLS with Milvus."
    )
    milvus_tls_server_name: str | None = Field(
        default=None,
        description="Server name expected in the Milvus TLS certificate (default: the URI host).",
    )
    milvus_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for Milvus to connect or answer."
    )
    milvus_hybrid: Literal["client", "server"] = Field(
        default="client",
        description=(
            "With store=milvus, who fuses hybrid search: client (Milvus returns the dense and "
            "BM25 lists, fused here exactly as with the local store) or server (one Milvus "
            "hybrid_search: WeightedRanker with arctan score normalisation for fusion=score or "
            "adaptive, RRFRanker for rrf; measured against client in docs/evaluation.md)."
        ),
    )

    # --- embedding on Ray (assistant index --ray)
    ray_batch_size: int = Field(
        default=256,
        ge=1,
        le=1_000_000,
        description=(
            "Texts sent to one Ray actor at a time by `assistant index --ray` (rounded up to a "
            "multiple of batch_size, so the model sees the same batches as a local build)."
        ),
    )
    ray_actors: int = Field(
        default=2, ge=1, le=10_000, description="Embedding actors `assistant index --ray` starts."
    )
    ray_cpus_per_actor: float = Field(
        default=1.0, gt=0, description="CPUs each Ray embedding actor reserves (and its threads)."
    )
    ray_gpus_per_actor: float | None = Field(
        default=None,
        ge=0,
        description=(
            "GPUs each Ray embedding actor reserves (default: 1 when the cluster has GPUs, else "
            "0); with a GPU the actor runs the model with device cuda."
        ),
    )

    def dense_config(self) -> dict[str, Any]:
        """The dense index settings a build uses (recorded in the manifest)."""
        return {
            "type": self.dense_index,
            "auto_threshold": self.dense_auto_threshold,
            "hnsw_m": self.hnsw_m,
            "hnsw_ef_construction": self.hnsw_ef_construction,
            "hnsw_ef_search": self.hnsw_ef_search,
            "ivf_nlist": self.ivf_nlist,
            "ivf_nprobe": self.ivf_nprobe,
            "ivf_train_sample": self.ivf_train_sample,
            "refine": self.dense_refine,
        }
