"""The model and the index of an Assistant: load, build or refresh, reload a newly saved
snapshot, and pin one snapshot per call. Answering questions is `assistant.py`'s job."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .chunk import chunk_document, chunk_documents
from .chunk_vectors import chunk_vectors, document_changes, index_backend_version, same_embedding
from .corpus import combined_fingerprint, corpus_fingerprints, load_corpus, read_body, with_body
from .delta import drift, touched_docs
from .embed import Embedder, QueryBatcher, describe_model, embedder_backend, load_embedder
from .errors import AssistantError, IndexStateError
from .incremental import add_delta
from .index import (
    FORMAT_VERSION,
    SNAPSHOTS,
    BuildReport,
    SearchIndex,
    check_backend,
    check_dimension,
    check_model,
    index_backend,
    load_index,
    load_snapshot,
    snapshot_dir,
    stale_reason,
)
from .settings import Settings
from .snapshots import read_live
from .stores import Store, open_store
from .stream_build import StreamBuild
from .types import Chunk, Document

StageProgress = Callable[[str, int, int], None]
F = TypeVar("F", bound=Callable[..., Any])


def one_snapshot(method: F) -> F:
    """Run an Assistant method wholly on one index snapshot, even if a reload swaps it."""

    @functools.wraps(method)
    def pinned(self: IndexLifecycle, *args: Any, **kwargs: Any) -> Any:
        with self.snapshot():
            return method(self, *args, **kwargs)

    return pinned  # type: ignore[return-value]


class IndexLifecycle:
    """The embedding model and the live index snapshot. Safe to share between threads."""

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
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """Where the chunks are searched (settings `store`; the local files by default)."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings)
            return self._store

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
            check_backend(index.manifest, embedder_backend(self.embedder), s.index_dir,
                          self.embedder.backend_version)  # fmt: skip
            check_dimension(index.manifest, self.embedder.dimension, s.index_dir)
            self.store.check(index)
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
        self.store.open()
        with self._lock:
            live = read_live(s.index_dir)  # read once: what is checked here is what is opened
            if live is None:
                if not auto:
                    raise AssistantError(
                        f"no index in {s.index_dir}",
                        f"build it: assistant index --index {s.index_dir}",
                    )
                self.build()
                return self.index
            manifest = live.manifest
            name, fingerprint = self._model_identity()
            check_model(manifest, name, fingerprint, s.index_dir)
            backend = embedder_backend(self.embedder)  # the given embedder's, else the setting's
            version = self.embedder.backend_version
            if (index_backend(manifest), index_backend_version(manifest)) != (backend, version):
                if not auto:  # vectors of another backend or recipe: never mixed
                    check_backend(manifest, backend, s.index_dir, version)
                self.build(force=True)
                return self.index
            files = corpus_fingerprints(s.corpus_dir)
            reason = stale_reason(
                manifest, combined_fingerprint(files), s.chunker_config(), s.bm25_stemmer
            )
            store_reason = self.store.stale_reason(manifest)
            if store_reason and not reason:
                if not auto:
                    raise IndexStateError(
                        f"{store_reason} (ASSISTANT_STORE={s.store})",
                        f"publish it: assistant index --index {s.index_dir}",
                    )
                reason = store_reason
            index = load_index(s.index_dir, live)
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
            self.store.check(self.index)
            return self.index

    def build(
        self, force: bool = False, ray: str | None = None, compact: bool = False
    ) -> BuildReport:
        """(Re)build the index from the corpus, re-embedding only new or changed documents.

        A large local index (at least `incremental_min_chunks`) takes added, changed and removed
        sources as a delta beside its base (`incremental.py`); `compact` (or `force`) merges
        them into a fresh full index instead.

        `ray` embeds on Ray ("" or "local": a Ray started here, else the cluster address);
        the selected store gets the new snapshot's rows before the snapshot is saved, and makes
        them live after (`Store.publish`, `Store.activate`).
        """
        s = self.settings
        started = time.perf_counter()
        self.store.open()
        with self._lock:
            self._report("load-corpus", 0, 1)
            # metadata only: each body is read again when its note is chunked (`read_body`)
            docs, warnings = load_corpus(s.corpus_dir, max_bytes=s.max_note_bytes, bodies=False)
            self.warnings.extend(warnings)
            # the same per-file fingerprints as corpus_fingerprints(), without reading again
            files = {str(d.path.relative_to(s.corpus_dir)): d.fingerprint for d in docs}
            self._report("load-corpus", 1, 1)
            previous = None
            if not force:
                previous = self._index
                live = read_live(s.index_dir) if previous is None else None
                if live is not None:
                    try:
                        previous = load_index(s.index_dir, live)
                    except AssistantError:
                        previous = None
            embedder = self.embedder
            batch_chunks = s.build_batch_chunks
            if ray is not None:
                from .ray_embed import RayEmbedder

                embedder = RayEmbedder(embedder, s, address=ray)
                batch_chunks = embedder.build_batch_chunks(batch_chunks)
            if previous is not None and not compact and self._takes_delta(previous):
                return self._build_delta(docs, files, previous, embedder, started)
            return self._build_full(docs, files, previous, embedder, started, batch_chunks)

    def _build_full(
        self,
        docs: list[Document],
        files: dict[str, str],
        previous: SearchIndex | None,
        embedder: Embedder,
        started: float,
        batch_chunks: int,
    ) -> BuildReport:
        """Build a whole new index as a stream (`stream_build.py`: batches of `batch_chunks`,
        resumed after an interruption), publish it to the store, save it as a new snapshot and
        serve from that; the previous snapshot stays live until then. `docs` hold no bodies:
        each note is read again as it is chunked, and as its row of the notes table is
        written, so the build holds a few bodies at a time, never the corpus."""
        s = self.settings

        def chunks() -> Iterator[Chunk]:
            for doc in docs:
                yield from chunk_document(with_body(doc), s.chunk_max_tokens,
                                          s.chunk_overlap_tokens)  # fmt: skip

        build = StreamBuild(s.index_dir, docs, chunks, embedder, chunker=s.chunker_config(),
                            bm25_stemmer=s.bm25_stemmer, corpus_files=files,
                            corpus_fingerprint=combined_fingerprint(files), previous=previous,
                            progress=self.progress, corpus_root=s.corpus_dir,
                            dense=s.dense_config(), batch_chunks=batch_chunks,
                            note_bodies=read_body)  # fmt: skip
        try:
            result = build.run()
        finally:
            self.warnings.extend(build.warnings)
        index = result.index
        self._report("store", 0, 1)
        index.manifest["store"] = self.store.publish(index, previous, result.changes)
        self._report("store", 1, 1)
        seconds = time.perf_counter() - started
        index.manifest["build_seconds"] = round(seconds, 3)
        build.save(index)
        self.store.activate(index)
        # serve from the saved snapshot: its files were moved there from the build folder
        self._index = load_snapshot(s.index_dir, s.index_dir.resolve() / SNAPSHOTS / index.snapshot)
        changes = result.changes
        self.last_build = BuildReport(
            documents=len(docs),
            chunks=result.chunks,
            seconds=seconds,
            added=changes["added"],
            changed=changes["changed"],
            removed=changes["removed"],
            reused_chunks=result.reused,
            embedded_chunks=result.embedded,
            index_dir=s.index_dir,
            resumed_chunks=result.resumed,
        )
        return self.last_build

    def _takes_delta(self, previous: SearchIndex) -> bool:
        """Whether a build may add a delta to `previous` instead of rebuilding it: a local
        store, a base of at least `incremental_min_chunks`, the same model, chunking, stemmer
        and requested dense index type."""
        s = self.settings
        m = previous.manifest
        base = int((m.get("delta") or {}).get("base_chunks", len(previous.chunks)))
        return (
            self.store.describe().get("kind") == "local"
            and bool(previous.snapshot)
            and (s.index_dir.resolve() / SNAPSHOTS / previous.snapshot).is_dir()
            and base >= s.incremental_min_chunks
            and same_embedding(m, self.embedder, s.chunker_config(), FORMAT_VERSION)
            and m.get("bm25", {}).get("stemmer") == s.bm25_stemmer
            and (m.get("dense") or {}).get("requested", s.dense_index) == s.dense_index
        )

    def _build_delta(
        self,
        docs: list[Document],
        files: dict[str, str],
        previous: SearchIndex,
        embedder: Embedder,
        started: float,
    ) -> BuildReport:
        """Embed the chunks of added and changed sources and save them as a delta (only
        their notes are read again: `docs` hold no bodies)."""
        s = self.settings
        changes = document_changes(docs, previous)
        new_docs = [with_body(d) for d in touched_docs(docs, changes)]
        read = {d.id: d for d in new_docs}
        docs = [read.get(d.id, d) for d in docs]
        chunks = chunk_documents(new_docs, s.chunk_max_tokens, s.chunk_overlap_tokens)
        ready = chunk_vectors(new_docs, chunks, embedder, chunker=s.chunker_config(),
                              format_version=FORMAT_VERSION, progress=self.progress)  # fmt: skip
        extra = {"store": self.store.describe(),
                 "build_seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
        self._index = add_delta(previous, s.index_dir, docs, changes, chunks, ready.vectors,
                                units=ready.units, unit_offsets=ready.unit_offsets,
                                bm25_stemmer=s.bm25_stemmer, corpus_files=files,
                                corpus_fingerprint=combined_fingerprint(files),
                                corpus_root=s.corpus_dir, extra_manifest=extra)  # fmt: skip
        share = drift(self._index.manifest)
        if share > s.incremental_compact_share:
            self.warnings.append(
                f"the incremental delta is {share:.0%} of the base index (more than "
                f"incremental_compact_share {s.incremental_compact_share:.0%}); merge it into a "
                f"fresh full index: assistant index --compact --index {s.index_dir}"
            )
        total = int(self._index.manifest["counts"]["chunks"])
        self.last_build = BuildReport(
            documents=len(docs),
            chunks=total,
            seconds=time.perf_counter() - started,
            added=changes["added"],
            changed=changes["changed"],
            removed=changes["removed"],
            reused_chunks=total - len(chunks),
            embedded_chunks=len(chunks),
            index_dir=s.index_dir,
        )
        return self.last_build
