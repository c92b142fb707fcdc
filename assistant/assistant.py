"""The Assistant: one object that ties the stages together; the CLI and the HTTP app call it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .answer import (
    ABSTAIN_MESSAGE,
    compose_answer,
    should_abstain,
    unknown_message,
    unknown_terms,
)
from .chunk import chunk_documents
from .conversation import rewrite_query
from .corpus import combined_fingerprint, corpus_fingerprints, load_corpus, parse_note
from .embed import Embedder, QueryBatcher, describe_model, load_embedder
from .errors import AssistantError, InputError
from .index import (
    BuildReport,
    SearchIndex,
    build_index,
    check_dimension,
    check_model,
    load_index,
    read_manifest,
    save_index,
    stale_reason,
)
from .lexical import tokenize
from .rerank import rerank
from .retrieve import retrieve
from .settings import Settings
from .types import MODES, Answer, Filters, Passage

StageProgress = Callable[[str, int, int], None]


class Assistant:
    """Answers questions from the indexed literature. Safe to share between threads."""

    def __init__(
        self,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        progress: StageProgress | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._embedder = embedder
        self._batcher: QueryBatcher | None = None
        self._index: SearchIndex | None = None
        self._lock = threading.RLock()
        self.progress = progress
        self.warnings: list[str] = []
        self.last_build: BuildReport | None = None

    # ----------------------------------------------------------------- model and index
    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use."""
        with self._lock:
            if self._embedder is None:
                self._report("load-model", 0, 1)
                s = self.settings
                self._embedder = load_embedder(
                    s.embedding_model,
                    s.device,
                    s.batch_size,
                    query_threads=s.query_threads,
                    index_threads=s.index_threads,
                )
                self._report("load-model", 1, 1)
            return self._embedder

    @property
    def query_encoder(self) -> QueryBatcher:
        """Encodes questions, batching the ones that arrive at the same time."""
        with self._lock:
            if self._batcher is None or self._batcher.embedder is not self.embedder:
                self._batcher = QueryBatcher(self.embedder)
            return self._batcher

    def _model_identity(self) -> tuple[str, str]:
        if self._embedder is not None:
            return self._embedder.name, self._embedder.fingerprint
        return self.settings.embedding_model, describe_model(self.settings.embedding_model)[1]

    def _report(self, stage: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(stage, done, total)

    @property
    def index(self) -> SearchIndex:
        """The loaded index (built or refreshed first when needed)."""
        if self._index is None:
            self.load()
        assert self._index is not None
        return self._index

    @property
    def is_loaded(self) -> bool:
        return self._index is not None and self._embedder is not None

    def load(self, rebuild: bool | None = None) -> SearchIndex:
        """Open the index; build it when missing, refresh it when the corpus changed.

        `rebuild=False` uses a stale index as it is (with a warning); an index built with another
        model or format is always refused with the command that rebuilds it.
        """
        s = self.settings
        auto = s.auto_rebuild if rebuild is None else rebuild
        with self._lock:
            manifest = read_manifest(s.index_dir)
            if manifest is None:
                if not auto:
                    raise AssistantError(
                        f"no index in {s.index_dir}",
                        f"build it: assistant index --index {s.index_dir}",
                    )
                self.build()
                return self.index
            name, fingerprint = self._model_identity()
            check_model(manifest, name, fingerprint, s.index_dir)
            files = corpus_fingerprints(s.corpus_dir)
            reason = stale_reason(
                manifest, combined_fingerprint(files), s.chunker_config(), s.bm25_stemmer
            )
            index = load_index(s.index_dir)
            if reason and auto:
                self._index = index
                self.build()
            else:
                if reason:
                    self.warnings.append(
                        f"{reason}; answers come from the old index (run: assistant index)"
                    )
                self._index = index
            check_dimension(self.index.manifest, self.embedder.dimension, s.index_dir)
            return self.index

    def build(self, force: bool = False) -> BuildReport:
        """(Re)build the index from the corpus, re-embedding only new or changed documents."""
        s = self.settings
        started = time.perf_counter()
        with self._lock:
            self._report("load-corpus", 0, 1)
            docs, warnings = load_corpus(s.corpus_dir)
            self.warnings.extend(warnings)
            # the same per-file fingerprints as corpus_fingerprints(), without reading again
            files = {str(d.path.relative_to(s.corpus_dir)): d.fingerprint for d in docs}
            self._report("load-corpus", 1, 1)
            chunks = chunk_documents(docs, s.chunk_max_tokens, s.chunk_overlap_tokens)
            previous = None
            if not force:
                previous = self._index
                if previous is None and read_manifest(s.index_dir) is not None:
                    try:
                        previous = load_index(s.index_dir)
                    except AssistantError:
                        previous = None
            index, changes, reused = build_index(
                docs,
                chunks,
                self.embedder,
                chunker=s.chunker_config(),
                bm25_stemmer=s.bm25_stemmer,
                corpus_files=files,
                corpus_fingerprint=combined_fingerprint(files),
                previous=previous,
                progress=self.progress,
            )
            seconds = time.perf_counter() - started
            index.manifest["build_seconds"] = round(seconds, 3)
            save_index(index, s.index_dir)
            self._index = index
            self.last_build = BuildReport(
                documents=len(docs),
                chunks=len(chunks),
                seconds=seconds,
                added=changes["added"],
                changed=changes["changed"],
                removed=changes["removed"],
                reused_chunks=reused,
                embedded_chunks=len(chunks) - reused,
                index_dir=s.index_dir,
            )
            return self.last_build

    # ----------------------------------------------------------------- questions
    def validate_question(self, question: str) -> str:
        """The question stripped, or an InputError saying what is wrong with it."""
        if not isinstance(question, str) or not question.strip():
            raise InputError("the question is empty", "type a question about the literature")
        if len(question) > self.settings.max_question_chars:
            raise InputError(
                f"the question is {len(question)} characters long; the limit is "
                f"{self.settings.max_question_chars}",
                "shorten it or raise ASSISTANT_MAX_QUESTION_CHARS",
            )
        return question.strip()

    def _mode(self, mode: str | None) -> str:
        mode = mode or self.settings.mode
        if mode not in MODES:
            raise InputError(f"unknown mode '{mode}'", f"use one of: {', '.join(MODES)}")
        return mode

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: str | None = None,
        filters: Filters | None = None,
        offset: int = 0,
        timings: dict[str, float] | None = None,
    ) -> list[Passage]:
        """Passages `offset+1 .. offset+k` for a search query (no answer, no abstention)."""
        query = self.validate_question(query)
        mode = self._mode(mode)
        k = k or self.settings.top_k
        if k < 1 or offset < 0:
            raise InputError("k must be at least 1 and offset at least 0")
        s = self.settings
        index = self.index
        encoder = self.query_encoder
        t0 = time.perf_counter()
        qvec = encoder.embed_query(query)
        t1 = time.perf_counter()
        tokens = tokenize(query, s.bm25_stemmer)
        ranked = retrieve(
            index,
            mode=mode,
            query_vector=qvec,
            query_tokens=tokens,
            n=offset + k,
            candidates=s.candidates,
            rrf_k=s.rrf_k,
            dense_weight=s.dense_weight,
            bm25_weight=s.bm25_weight,
            filters=filters,
            fusion=s.fusion,
        )[offset:]
        t2 = time.perf_counter()
        passages = rerank(index, ranked, qvec, offset=offset)
        t3 = time.perf_counter()
        if timings is not None:
            timings.update(
                embed=(t1 - t0) * 1000, retrieve=(t2 - t1) * 1000, rerank=(t3 - t2) * 1000
            )
        return passages

    def ask(
        self,
        question: str,
        k: int | None = None,
        mode: str | None = None,
        history: Sequence[Mapping[str, str]] | None = None,
        filters: Filters | None = None,
        offset: int = 0,
    ) -> Answer:
        """Answer a question (a follow-up is resolved against `history`) from the literature."""
        started = time.perf_counter()
        question = self.validate_question(question)
        mode = self._mode(mode)
        query = rewrite_query(
            question, history, max_turns=self.settings.history_turns, known=self._known_word
        )
        timings: dict[str, float] = {}
        passages = self.search(query, k=k, mode=mode, filters=filters, offset=offset,
                               timings=timings)  # fmt: skip
        t0 = time.perf_counter()
        abstained = should_abstain(passages, self.settings.abstain_threshold)
        message = ABSTAIN_MESSAGE if abstained else None
        missing = self._unknown_terms(question) if not abstained else []
        if missing:
            abstained, message = True, unknown_message(missing)
        text = None
        if not abstained:
            s = self.settings
            text = compose_answer(
                passages,
                tokenize(query, s.bm25_stemmer),
                self.index.idf,
                lambda t: tokenize(t, s.bm25_stemmer),
                n_sentences=s.answer_sentences,
            )
            abstained = text is None
        timings["answer"] = (time.perf_counter() - t0) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return Answer(
            question=question,
            query=query,
            answer=None if abstained else text,
            abstained=abstained,
            passages=passages,
            message=(message or ABSTAIN_MESSAGE) if abstained else None,
            mode=mode,
            timings_ms=timings,
        )

    def _known_word(self, word: str) -> bool:
        """Whether a word (after stemming) occurs anywhere in the indexed corpus."""
        tokens = tokenize(word, self.settings.bm25_stemmer)
        return bool(tokens) and self.index.has_term(tokens[0])

    def _unknown_terms(self, question: str) -> list[str]:
        """Specific words of the question the corpus never uses (see `answer.unknown_terms`)."""
        if not self.settings.abstain_on_unknown_terms:
            return []
        vocabulary = getattr(self.embedder, "vocabulary", None)
        return unknown_terms(question, self._known_word, vocabulary)

    # ----------------------------------------------------------------- sources
    def sources(self) -> list[dict[str, Any]]:
        """Metadata of every indexed source, with its chunk count, sorted by id."""
        index = self.index
        counts = index.manifest.get("corpus", {}).get("documents", {})
        out = []
        for doc_id in sorted(index.sources):
            meta = dict(index.sources[doc_id])
            meta["chunks"] = counts.get(doc_id, {}).get("chunks", 0)
            out.append(meta)
        return out

    def source(self, doc_id: str) -> dict[str, Any]:
        """One source's metadata and the full text of its note."""
        meta = self.index.sources.get(doc_id)
        if meta is None:
            raise InputError(
                f"unknown source id '{doc_id}'", "list the ids with: assistant sources"
            )
        out = dict(meta)
        path = Path(meta["path"])
        out["text"] = parse_note(path).body if path.exists() else None
        return out

    def context(self, chunk_id: str, chars: int = 600) -> dict[str, Any]:
        """A passage in its place: the section around it in the source file, and the citation."""
        index = self.index
        row = index.chunk_rows.get(chunk_id)
        if row is None:
            raise InputError(f"unknown passage '{chunk_id}'")
        chunk = index.chunks[row]
        meta = index.sources[chunk.doc_id]
        path = Path(meta["path"])
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        before = text[max(0, chunk.start - chars) : chunk.start]
        after = text[chunk.end : chunk.end + chars]
        return {
            "chunk_id": chunk.id,
            "section": chunk.section,
            "page": chunk.page,
            "before": before,
            "text": text[chunk.start : chunk.end] or chunk.text,
            "after": after,
            "source": meta,
        }

    def status(self) -> dict[str, Any]:
        """What is loaded: corpus, index and model, for banners and /readyz."""
        manifest = self.index.manifest
        return {
            "corpus_dir": str(self.settings.corpus_dir),
            "index_dir": str(self.settings.index_dir),
            "sources": manifest["counts"]["documents"],
            "chunks": manifest["counts"]["chunks"],
            "model": manifest["model"]["name"],
            "dimension": manifest["model"]["dimension"],
            "built": manifest.get("created_at"),
        }
