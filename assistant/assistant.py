"""The Assistant: one object that ties the stages together; the CLI and the HTTP app call it."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from .answer import (
    ABSTAIN_MESSAGE,
    ComposerWeights,
    compose_answer,
    should_abstain,
    unknown_message,
    unknown_terms,
)
from .chunk import chunk_documents
from .conversation import rewrite_query
from .corpus import combined_fingerprint, corpus_fingerprints, load_corpus
from .currency import corpus_stamp, is_after_review
from .embed import Embedder, QueryBatcher, describe_model, embedder_backend, load_embedder
from .errors import AssistantError, InputError
from .index import (
    BuildReport,
    SearchIndex,
    build_index,
    check_backend,
    check_dimension,
    check_model,
    index_backend,
    load_index,
    read_manifest,
    save_index,
    snapshot_dir,
    stale_reason,
)
from .lexical import tokenize
from .references import cited_ids, render
from .rerank import diversify, rerank
from .retrieve import retrieve
from .settings import Settings
from .types import MODES, Answer, Filters, Passage

StageProgress = Callable[[str, int, int], None]
REFERENCE_FIELDS = ("id", "title", "authors", "journal", "year", "pmid", "doi", "url", "source_type")
F = TypeVar("F", bound=Callable[..., Any])


def one_snapshot(method: F) -> F:
    """Run an Assistant method wholly on one index snapshot, even if a reload swaps it."""

    @functools.wraps(method)
    def pinned(self: Assistant, *args: Any, **kwargs: Any) -> Any:
        with self.snapshot():
            return method(self, *args, **kwargs)

    return pinned  # type: ignore[return-value]


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
        self._reload_lock = threading.Lock()
        self._pins = threading.local()  # the snapshot each thread's current call answers from
        self.progress = progress
        self.warnings: list[str] = []
        self.last_build: BuildReport | None = None
        self._stamp: tuple[SearchIndex, dict[str, Any]] | None = None
        # how the answer stage scores sentences (bench/tune_answer.py tries others)
        self.composer = ComposerWeights(max_words=self.settings.answer_max_words)

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
                    backend=s.embedding_backend,
                    cache_dir=s.onnx_cache_dir,
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
        """The loaded index (built or refreshed first when needed); inside `snapshot()`, the
        snapshot pinned for this thread."""
        pinned = getattr(self._pins, "index", None)
        if pinned is not None:
            return pinned
        if self._index is None:
            self.load()
        assert self._index is not None
        return self._index

    @contextmanager
    def snapshot(self) -> Iterator[SearchIndex]:
        """Pin the live index for this thread: everything inside answers from that snapshot,
        even if `reload()` makes another one live meanwhile."""
        outer = getattr(self._pins, "index", None)
        index = outer if outer is not None else self.index
        self._pins.index = index
        try:
            yield index
        finally:
            self._pins.index = outer

    def reload(self) -> dict[str, Any]:
        """Make the index now saved in the index folder live, if it is not already.

        Calls already running finish on the snapshot they started with; new calls use the new
        one. The corpus is not re-read and nothing is rebuilt. An index built with another model
        is refused (IndexStateError) and the live one kept. Returns `snapshot_info()` plus
        `reloaded` (whether the live snapshot changed).
        """
        s = self.settings
        with self._reload_lock:
            live = self._index
            folder = snapshot_dir(s.index_dir)
            if live is not None and folder is not None and folder.name == live.snapshot:
                return {"reloaded": False, **self.snapshot_info(live)}
            index = load_index(s.index_dir)
            name, fingerprint = self._model_identity()
            check_model(index.manifest, name, fingerprint, s.index_dir)
            check_backend(index.manifest, embedder_backend(self.embedder), s.index_dir)
            check_dimension(index.manifest, self.embedder.dimension, s.index_dir)
            self._index = index
            return {"reloaded": True, **self.snapshot_info(index)}

    def snapshot_info(self, index: SearchIndex | None = None) -> dict[str, Any]:
        """Which snapshot answers (the live one by default): its folder name, build time,
        corpus fingerprint and counts."""
        index = index if index is not None else self.index
        counts = index.manifest.get("counts", {})
        return {
            "snapshot": index.snapshot or None,
            "created_at": index.manifest.get("created_at"),
            "corpus_fingerprint": index.manifest.get("corpus", {}).get("fingerprint"),
            "sources": counts.get("documents"),
            "chunks": counts.get("chunks"),
        }

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
            backend = embedder_backend(self.embedder)  # the given embedder's, else the setting's
            if index_backend(manifest) != backend:  # vectors of another backend: never mixed
                if not auto:
                    check_backend(manifest, backend, s.index_dir)
                self.build(force=True)
                return self.index
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
            docs, warnings = load_corpus(s.corpus_dir, max_bytes=s.max_note_bytes)
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
                corpus_root=s.corpus_dir,
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
        try:
            question.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                "the question is not valid UTF-8 text (it holds undecodable bytes)",
                "retype it, or set the terminal to UTF-8",
            ) from None
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

    @one_snapshot
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
        return self._search(query, k, mode, filters, offset, timings)[0]

    def _search(
        self,
        query: str,
        k: int | None = None,
        mode: str | None = None,
        filters: Filters | None = None,
        offset: int = 0,
        timings: dict[str, float] | None = None,
    ) -> tuple[list[Passage], np.ndarray]:
        """`search`, and the query vector (for the answer stage).

        No source fills more than `max_per_source` of the ranks unless the query names it; its
        further passages move down, after the others.
        """
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
            n=max(offset + k, s.candidates) if s.max_per_source else offset + k,
            candidates=s.candidates,
            rrf_k=s.rrf_k,
            dense_weight=s.dense_weight,
            bm25_weight=s.bm25_weight,
            filters=filters,
            fusion=s.fusion,
        )
        if s.max_per_source:
            named = index.named_sources(query)  # a follow-up's query carries earlier names
            ranked = diversify(ranked, index.doc_of_row, s.max_per_source, named,
                               s.diversity_keep_above)  # fmt: skip
        ranked = ranked[offset : offset + k]
        t2 = time.perf_counter()
        passages = rerank(index, ranked, qvec, offset=offset)
        for p in passages:
            p.source["label"] = index.labels.get(p.chunk.doc_id)
            p.cites = cited_ids(p.chunk.text, index.labels)
            if p.cites:
                p.display_text = render(p.chunk.text, index.labels)
        t3 = time.perf_counter()
        if timings is not None:
            timings.update(
                embed=(t1 - t0) * 1000, retrieve=(t2 - t1) * 1000, rerank=(t3 - t2) * 1000
            )
        return passages, qvec

    @one_snapshot
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
        passages, qvec = self._search(query, k=k, mode=mode, filters=filters, offset=offset,
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
            index = self.index
            text = compose_answer(
                passages,
                tokenize(query, s.bm25_stemmer),
                index.idf,
                lambda t: tokenize(t, s.bm25_stemmer),
                n_sentences=s.answer_sentences,
                question=question,
                query_vector=qvec,
                unit_vectors=index.unit_vectors_of,
                labels=index.labels,
                weights=self.composer,
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
            corpus=self.corpus_stamp(),
            references=self.references([c for p in passages for c in p.cites]),
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
    def references(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Citation records (with `label`) of the sources named by id, in order, each once."""
        index = self.index
        out = []
        for doc_id in dict.fromkeys(ids):
            meta = index.sources.get(doc_id)
            if meta is None:
                continue
            record = {k: meta.get(k) for k in REFERENCE_FIELDS}
            record["label"] = index.labels.get(doc_id)
            record["after_review"] = is_after_review(meta.get("year"))
            out.append(record)
        return out

    def find_reference(self, text: str) -> str | None:
        """The id of the source a reader names by its label ("Le Treut 2013") or by its id."""
        index = self.index
        wanted = " ".join(text.split()).lower()
        if wanted in index.sources:
            return wanted
        for doc_id, label in index.labels.items():
            if label.lower() == wanted:
                return doc_id
        return None

    @one_snapshot
    def sources(self) -> list[dict[str, Any]]:
        """Metadata of every indexed source, with its chunk count, sorted by id."""
        index = self.index
        counts = index.manifest.get("corpus", {}).get("documents", {})
        out = []
        for doc_id in sorted(index.sources):
            meta = dict(index.sources[doc_id])
            meta["chunks"] = counts.get(doc_id, {}).get("chunks", 0)
            meta["after_review"] = is_after_review(meta.get("year"))
            out.append(meta)
        return out

    @one_snapshot
    def source(self, doc_id: str) -> dict[str, Any]:
        """One source's metadata and the full text of its note."""
        meta = self.index.sources.get(doc_id)
        if meta is None:
            raise InputError(
                f"unknown source id '{doc_id}'", "list the ids with: assistant sources"
            )
        out = dict(meta)
        out["after_review"] = is_after_review(meta.get("year"))
        note = self.index.notes.get(doc_id)  # from the snapshot, never from the disk
        out["text"] = render(note["body"], self.index.labels) if note else None
        out["label"] = self.index.labels.get(doc_id)
        if note:
            out["references"] = self.references(cited_ids(note["body"], self.index.labels))
        return out

    @one_snapshot
    def context(self, chunk_id: str, chars: int = 600) -> dict[str, Any]:
        """A passage in its place: the section around it in the source file, and the citation."""
        index = self.index
        row = index.chunk_rows.get(chunk_id)
        if row is None:
            raise InputError(f"unknown passage '{chunk_id}'")
        chunk = index.chunks[row]
        meta = index.sources[chunk.doc_id]
        note = index.notes.get(chunk.doc_id) or {"body": "", "body_offset": 0}
        body = note["body"]
        start, end = chunk.start - note["body_offset"], chunk.end - note["body_offset"]
        inside = 0 <= start <= end <= len(body)
        return {
            "chunk_id": chunk.id,
            "section": chunk.section,
            "page": chunk.page,
            "before": render(body[max(0, start - chars) : start], index.labels) if inside else "",
            "text": render((body[start:end] if inside else "") or chunk.text, index.labels),
            "after": render(body[end : end + chars], index.labels) if inside else "",
            "source": meta,
        }

    @one_snapshot
    def source_records(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Full metadata (volume, pages…) of the given sources, in order, each once."""
        sources = self.index.sources
        unknown = [i for i in ids if i not in sources]
        if unknown:
            raise InputError(
                f"unknown source id '{unknown[0]}'", "list the ids with: assistant sources"
            )
        return [dict(sources[i]) for i in dict.fromkeys(ids)]

    def corpus_stamp(self) -> dict[str, Any]:
        """The loaded corpus snapshot (fingerprint, newest source year, sources), computed once
        per loaded index."""
        index = self.index
        if self._stamp is None or self._stamp[0] is not index:
            self._stamp = (index, corpus_stamp(index.manifest, index.sources))
        return dict(self._stamp[1])

    @one_snapshot
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
            "backend": index_backend(manifest),
            "built": manifest.get("created_at"),
            "corpus": self.corpus_stamp(),
            **self.snapshot_info(self.index),
        }
