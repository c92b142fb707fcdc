"""Build, save and load the search index: FAISS (exact inner product) + BM25, with a manifest."""

from __future__ import annotations

import bisect
import functools
import json
import math
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .chunk import embedding_text
from .currency import is_after_review
from .embed import Embedder, embedder_backend
from .errors import IndexStateError
from .lexical import tokenize_many
from .references import source_labels, source_names
from .sentences import answer_units
from .types import Chunk, Document

FORMAT_VERSION = 2  # 2: answer-unit (sentence) vectors
SENTENCES = "sentences.npy"  # vectors of the chunks' answer units
SENTENCE_OFFSETS = "sentence_offsets.npy"  # chunk row i owns sentence rows [i] .. [i + 1]
MANIFEST = "manifest.json"
NOTES = "notes.json"  # each source's note body, so sources are served from the snapshot
SNAPSHOTS = "snapshots"  # index_dir/snapshots/<name>/: one complete index each
CURRENT = "current"  # index_dir/current -> snapshots/<name>: the live one, switched atomically
LOCK_FILE = ".lock"
KEEP_FILES = ("README.md", ".gitignore")
StageProgress = Callable[[str, int, int], None]


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


@dataclass
class SearchIndex:
    """An index in memory: chunks, their sources, vectors and the two search structures."""

    manifest: dict[str, Any]
    chunks: list[Chunk]
    sources: dict[str, dict[str, Any]]
    vectors: np.ndarray
    bm25: Any
    doc_freq: dict[str, int]
    dense: Any = None
    chunk_rows: dict[str, int] = field(default_factory=dict)
    # note body and its offset in the file, per source id: what /v1/sources/{id} serves
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # vectors of the chunks' answer units; chunk row i owns rows unit_offsets[i]:[i + 1]
    unit_vectors: np.ndarray | None = None
    unit_offsets: np.ndarray | None = None
    snapshot: str = ""  # name of the snapshot folder it was saved as / loaded from

    def __post_init__(self) -> None:
        import faiss

        faiss.omp_set_num_threads(1)
        if self.dense is None:
            self.dense = faiss.IndexFlatIP(self.vectors.shape[1])
            if len(self.vectors):
                self.dense.add(self.vectors)
        self.chunk_rows = {c.id: i for i, c in enumerate(self.chunks)}
        self.n_docs_lexical = max(1, len(self.chunks))
        self._terms = sorted(self.doc_freq)

    def has_term(self, stem: str) -> bool:
        """Whether a stemmed token, or a longer term it is a prefix of, occurs in the corpus.

        The prefix match lets 'jejunal' (stem 'jejun') find 'jejunum' in the corpus.
        """
        if stem in self.doc_freq:
            return True
        if len(stem) < 4:
            return False
        i = bisect.bisect_left(self._terms, stem)
        return i < len(self._terms) and self._terms[i].startswith(stem)

    @functools.cached_property
    def labels(self) -> dict[str, str]:
        """Source id -> short citation label ("Le Treut 2013")."""
        return source_labels(self.sources)

    @functools.cached_property
    def _names(self) -> dict[str, frozenset[str]]:
        return {doc_id: source_names(meta) for doc_id, meta in self.sources.items()}

    def named_sources(self, question: str) -> set[str]:
        """Ids of the sources whose first author or trial name the question mentions."""
        words = set(re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", question.lower()))
        return {doc_id for doc_id, names in self._names.items() if names & words}

    def doc_of_row(self, row: int) -> str:
        return self.chunks[row].doc_id

    def units_of(self, row: int) -> np.ndarray | None:
        """The answer-unit vectors of chunk row `row` (None for an index without them)."""
        if self.unit_vectors is None or self.unit_offsets is None:
            return None
        return self.unit_vectors[int(self.unit_offsets[row]) : int(self.unit_offsets[row + 1])]

    def unit_vectors_of(self, chunk_id: str) -> np.ndarray | None:
        """The answer-unit vectors of a chunk by id (for the answer stage)."""
        row = self.chunk_rows.get(chunk_id)
        return None if row is None else self.units_of(row)

    def idf(self, token: str) -> float:
        """Inverse document frequency of a (stemmed) token over chunks."""
        df = self.doc_freq.get(token, 0)
        return math.log(1 + (self.n_docs_lexical - df + 0.5) / (df + 0.5))

    def source_of(self, chunk: Chunk) -> dict[str, Any]:
        meta = self.sources[chunk.doc_id]
        out = {k: meta.get(k) for k in ("id", "title", "authors", "journal", "year", "pmid",
                                         "doi", "url", "source_type")}  # fmt: skip
        out["after_review"] = is_after_review(meta.get("year"))
        return out


@dataclass
class BuildReport:
    """What a build did."""

    documents: int
    chunks: int
    seconds: float
    added: list[str]
    changed: list[str]
    removed: list[str]
    reused_chunks: int
    embedded_chunks: int
    index_dir: Path

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["index_dir"] = str(self.index_dir)
        return out


def build_index(
    docs: Sequence[Document],
    chunks: Sequence[Chunk],
    embedder: Embedder,
    *,
    chunker: dict[str, int],
    bm25_stemmer: str | None,
    corpus_files: dict[str, str],
    corpus_fingerprint: str,
    previous: SearchIndex | None = None,
    progress: StageProgress | None = None,
    corpus_root: Path | None = None,
    unit_vectors: bool = True,
) -> tuple[SearchIndex, dict[str, list[str]], int]:
    """Embed what is new or changed (reusing vectors of unchanged documents) and index it all.

    Note paths are stored relative to `corpus_root` when given, and each note's body is stored
    in the index, so a snapshot serves its sources without reading the corpus again.
    `unit_vectors=False` leaves the answer-unit vectors out (an index used for ranking only, as
    the BEIR benchmarks are). Returns the index, the added/changed/removed document ids and the
    number of reused chunks.
    """

    def rel(path: Path) -> str:
        full = Path(path).absolute()
        if corpus_root is not None and full.is_relative_to(corpus_root.absolute()):
            return full.relative_to(corpus_root.absolute()).as_posix()
        return str(path)

    import bm25s

    by_doc = {d.id: d for d in docs}
    prev_docs: dict[str, Any] = {}
    reusable = previous is not None and _same_embedding(previous.manifest, embedder, chunker)
    if previous is not None:
        prev_docs = previous.manifest.get("corpus", {}).get("documents", {})
    changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    for doc in docs:
        old = prev_docs.get(doc.id)
        if old is None:
            changes["added"].append(doc.id)
        elif old.get("fingerprint") != doc.fingerprint:
            changes["changed"].append(doc.id)
    changes["removed"] = sorted(set(prev_docs) - set(by_doc))

    vectors = np.zeros((len(chunks), embedder.dimension), dtype=np.float32)
    todo: list[int] = []
    reused = 0
    reused_rows: dict[int, int] = {}  # chunk -> its row in `previous`
    for i, chunk in enumerate(chunks):
        unchanged = (
            reusable
            and prev_docs.get(chunk.doc_id, {}).get("fingerprint")
            == by_doc[chunk.doc_id].fingerprint
        )
        row = previous.chunk_rows.get(chunk.id) if (unchanged and previous) else None
        if row is not None and previous is not None and previous.chunks[row].text == chunk.text:
            vectors[i] = previous.vectors[row]
            reused_rows[i] = row
            reused += 1
        else:
            todo.append(i)
    texts = [embedding_text(chunks[i], by_doc[chunks[i].doc_id].title) for i in todo]
    if texts:
        vectors[todo] = embedder.embed_documents(
            texts, progress=(lambda d, t: progress("embed", d, t)) if progress else None
        )
    if unit_vectors:
        units, unit_offsets = _unit_vectors(chunks, embedder, previous, reused_rows, progress)
    else:
        units = np.zeros((0, embedder.dimension), dtype=np.float32)
        unit_offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    all_texts = [embedding_text(c, by_doc[c.doc_id].title) for c in chunks]
    if progress:
        progress("bm25", 0, 1)
    tokens = tokenize_many(all_texts, bm25_stemmer)
    bm25 = bm25s.BM25()
    bm25.index(_non_empty(tokens), show_progress=False)
    doc_freq = Counter(t for toks in tokens for t in set(toks))
    if progress:
        progress("bm25", 1, 1)
    manifest = {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "name": embedder.name,
            "dimension": embedder.dimension,
            "fingerprint": embedder.fingerprint,
            "backend": embedder_backend(embedder),
        },
        "chunker": dict(chunker),
        "bm25": {"stemmer": bm25_stemmer, "k1": 1.5, "b": 0.75, "method": "lucene"},
        "corpus": {
            "fingerprint": corpus_fingerprint,
            "files": dict(corpus_files),
            "documents": {
                d.id: {
                    "fingerprint": d.fingerprint,
                    "path": rel(d.path),
                    "chunks": sum(1 for c in chunks if c.doc_id == d.id),
                }
                for d in docs
            },
        },
        "counts": {"documents": len(docs), "chunks": len(chunks), "sentences": len(units)},
        "libraries": library_versions(),
    }
    manifest["notes"] = NOTES
    sources = {d.id: d.metadata_dict() | {"path": rel(d.path)} for d in docs}
    notes = {d.id: {"body": d.body, "body_offset": d.body_offset} for d in docs}
    index = SearchIndex(manifest, list(chunks), sources, vectors, bm25, dict(doc_freq),
                        notes=notes, unit_vectors=units,
                        unit_offsets=unit_offsets)  # fmt: skip
    return index, changes, reused


def _unit_vectors(
    chunks: Sequence[Chunk],
    embedder: Embedder,
    previous: SearchIndex | None,
    reused_rows: dict[int, int],
    progress: StageProgress | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of every chunk's answer units (see `sentences.answer_units`) and, per chunk, where
    its rows start; a reused chunk keeps the unit vectors of the previous index."""
    units = [[u.text for u in answer_units(c.text)] for c in chunks]
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(u) for u in units])
    out = np.zeros((int(offsets[-1]), embedder.dimension), dtype=np.float32)
    todo: list[int] = []  # unit rows to embed
    texts: list[str] = []
    for i, chunk_units in enumerate(units):
        old = previous.units_of(reused_rows[i]) if previous and i in reused_rows else None
        if old is not None and len(old) == len(chunk_units):
            out[offsets[i] : offsets[i + 1]] = old
            continue
        todo.extend(range(int(offsets[i]), int(offsets[i + 1])))
        texts.extend(chunk_units)
    if texts:
        out[todo] = embedder.embed_documents(
            texts, progress=(lambda d, t: progress("embed-sentences", d, t)) if progress else None
        )
    return out, offsets


def _non_empty(tokens: list[list[str]]) -> list[list[str]]:
    """bm25s needs at least one token per document; an empty chunk gets a placeholder."""
    return [t if t else ["\u2205"] for t in tokens]


def _same_embedding(manifest: dict[str, Any], embedder: Embedder, chunker: dict[str, int]) -> bool:
    model = manifest.get("model", {})
    return (
        manifest.get("format_version") == FORMAT_VERSION
        and model.get("fingerprint") == embedder.fingerprint
        and model.get("dimension") == embedder.dimension
        and index_backend(manifest) == embedder_backend(embedder)
        and manifest.get("chunker") == chunker
    )


def save_index(index: SearchIndex, index_dir: Path) -> None:
    """Write the index as a new snapshot folder, then make it live in one atomic step.

    The files go to `snapshots/<name>/` (the manifest last: a folder without one is never
    taken for an index); then the symlink `current` is replaced by a new one with a single
    rename, so a reader sees the old snapshot or the new one, never a mix, and a kill at any
    point leaves a complete index. Leftovers of interrupted saves are removed here.
    """
    index_dir = index_dir.resolve()
    index_dir.mkdir(parents=True, exist_ok=True)
    with _save_lock(index_dir):
        (index_dir / SNAPSHOTS).mkdir(exist_ok=True)
        tmp = index_dir / SNAPSHOTS / _snapshot_name()
        tmp.mkdir()
        _save_snapshot(index, index_dir, tmp)


def _save_snapshot(index: SearchIndex, index_dir: Path, tmp: Path) -> None:
    """Fill the snapshot folder `tmp`, switch `current` to it, then tidy up."""
    import faiss

    switched = False
    try:
        faiss.write_index(index.dense, str(tmp / "dense.faiss"))
        index.bm25.save(str(tmp / "bm25"), show_progress=False)
        with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as fh:
            for chunk in index.chunks:
                fh.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
        (tmp / "sources.json").write_text(
            json.dumps(index.sources, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        (tmp / "doc_freq.json").write_text(json.dumps(index.doc_freq), encoding="utf-8")
        (tmp / NOTES).write_text(json.dumps(index.notes, ensure_ascii=False), encoding="utf-8")
        if index.unit_vectors is not None and index.unit_offsets is not None:
            np.save(tmp / SENTENCES, index.unit_vectors)
            np.save(tmp / SENTENCE_OFFSETS, index.unit_offsets)
        # the manifest goes last: a folder without one is never taken for an index
        (tmp / MANIFEST).write_text(json.dumps(index.manifest, indent=2), encoding="utf-8")
        previous = _switch_current(index_dir, tmp)
        switched = True
    finally:
        if not switched:
            shutil.rmtree(tmp, ignore_errors=True)
    index.snapshot = tmp.name
    _link_entries(index_dir, tmp)
    _remove_leftovers(index_dir, keep={tmp.name, previous})


def _snapshot_name() -> str:
    """A new snapshot folder name; names sort in the order the snapshots were made."""
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{os.getpid()}"


@contextmanager
def _save_lock(index_dir: Path) -> Iterator[None]:
    """One saver at a time per index folder (the lock goes with the process, even on a kill)."""
    import fcntl

    with (index_dir / LOCK_FILE).open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _switch_current(index_dir: Path, snapshot: Path) -> str | None:
    """Point `current` at `snapshot` with one rename; return the snapshot it pointed at before."""
    current = index_dir / CURRENT
    previous = None
    if current.is_symlink():
        previous = Path(os.readlink(current)).name
    elif current.is_dir():  # a copy that followed the link: keep it as an ordinary snapshot
        previous = f"{_snapshot_name()}-copy"
        current.rename(index_dir / SNAPSHOTS / previous)
    link = index_dir / f".{CURRENT}.tmp-{os.getpid()}"
    link.unlink(missing_ok=True)
    os.symlink(Path(SNAPSHOTS) / snapshot.name, link)
    _fsync_dir(snapshot)
    os.replace(link, current)  # the switch: atomic on POSIX file systems
    _fsync_dir(index_dir)
    return previous


def _link_entries(index_dir: Path, snapshot: Path) -> None:
    """`index_dir/<file>` -> `current/<file>` for every file of the snapshot (for people and
    tools that look inside the folder), replacing the files of an index saved before snapshots."""
    for entry in sorted(snapshot.iterdir()):
        target = index_dir / entry.name
        wanted = Path(CURRENT) / entry.name
        if target.is_symlink() and Path(os.readlink(target)) == wanted:
            continue
        if entry.name in KEEP_FILES:
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        link = index_dir / f".{entry.name}.link-{os.getpid()}"
        link.unlink(missing_ok=True)
        os.symlink(wanted, link)
        os.replace(link, target)
    for target in index_dir.iterdir():  # links to files the new snapshot no longer has
        if target.is_symlink() and not target.exists() and target.name != CURRENT:
            target.unlink()


def _remove_leftovers(index_dir: Path, keep: set[str | None]) -> None:
    """Delete snapshots other than `keep` (complete or not), temporary links, and the folders an
    interrupted save of an older version of this program left beside the index."""
    for snap in (index_dir / SNAPSHOTS).iterdir():
        if snap.name not in keep:
            shutil.rmtree(snap, ignore_errors=True)
    for entry in index_dir.iterdir():
        if entry.is_symlink() and (".tmp-" in entry.name or ".link-" in entry.name):
            entry.unlink(missing_ok=True)
    for old in _old_layout_leftovers(index_dir):
        shutil.rmtree(old, ignore_errors=True)


def _old_layout_leftovers(index_dir: Path) -> list[Path]:
    """`.index.tmp-*` and `.index.old-*` folders of saves that swapped whole folders."""
    parent, name = index_dir.parent, index_dir.name
    if not parent.is_dir():
        return []
    return sorted(
        p for p in parent.glob(f".{name}.*-*")
        if p.is_dir() and p.name.startswith((f".{name}.tmp-", f".{name}.old-"))
    )  # fmt: skip


def snapshot_dir(index_dir: Path) -> Path | None:
    """The folder holding the live index of `index_dir`, or None when there is none.

    That is the snapshot `current` points to; for an index saved before snapshots existed, the
    folder itself; and when an interrupted save of that older layout left no index, the newest
    complete folder it left beside it.
    """
    current = index_dir / CURRENT
    if (current / MANIFEST).is_file():
        return current.resolve()
    if (index_dir / MANIFEST).is_file():
        return index_dir
    complete = [p for p in _old_layout_leftovers(index_dir.resolve()) if (p / MANIFEST).is_file()]
    if not complete:
        return None
    return max(complete, key=lambda p: (_created_at(p), p.stat().st_mtime))


def _created_at(folder: Path) -> str:
    try:
        return str(json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("created_at"))
    except (OSError, ValueError):
        return ""


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The manifest of the index in `index_dir`, or None when there is no built index."""
    folder = snapshot_dir(index_dir)
    if folder is None:
        return None
    path = folder / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexStateError(
            f"index manifest {path} is unreadable: {exc}",
            f"rebuild it: assistant index --force --index {index_dir}",
        ) from exc


def load_index(index_dir: Path) -> SearchIndex:
    """Read the live snapshot of an index written by `save_index`.

    A save that switches `current` while this reads is noticed and the new snapshot read.
    """
    for _ in range(3):
        folder = snapshot_dir(index_dir)
        try:
            return _load_snapshot(index_dir, folder)
        except IndexStateError:
            if folder is None or snapshot_dir(index_dir) == folder:
                raise
    return _load_snapshot(index_dir, snapshot_dir(index_dir))


def _load_snapshot(index_dir: Path, folder: Path | None) -> SearchIndex:
    """The index in one snapshot `folder` of `index_dir` (named in messages)."""
    import bm25s
    import faiss

    manifest = read_manifest(folder) if folder is not None else None
    if folder is None or manifest is None:
        raise IndexStateError(
            f"no index in {index_dir}", f"build it: assistant index --index {index_dir}"
        )
    try:
        dense = faiss.read_index(str(folder / "dense.faiss"))
        chunks = [
            Chunk(**json.loads(line))
            for line in (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        sources = json.loads((folder / "sources.json").read_text(encoding="utf-8"))
        doc_freq = json.loads((folder / "doc_freq.json").read_text(encoding="utf-8"))
        bm25 = bm25s.BM25.load(str(folder / "bm25"), show_progress=False, verbosity=0)
        notes_file = folder / NOTES
        notes = json.loads(notes_file.read_text(encoding="utf-8")) if notes_file.exists() else {}
        unit_vectors = np.load(folder / SENTENCES)
        unit_offsets = np.load(folder / SENTENCE_OFFSETS)
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        raise IndexStateError(
            f"index in {index_dir} is incomplete or damaged: {exc}",
            f"rebuild it: assistant index --force --index {index_dir}",
        ) from exc
    vectors = (
        dense.reconstruct_n(0, dense.ntotal)
        if dense.ntotal
        else np.zeros((0, dense.d), dtype=np.float32)
    )
    if len(chunks) != dense.ntotal:
        raise IndexStateError(
            f"index in {index_dir} is inconsistent ({len(chunks)} chunks, {dense.ntotal} vectors)",
            f"rebuild it: assistant index --force --index {index_dir}",
        )
    return SearchIndex(manifest, chunks, sources, np.asarray(vectors, dtype=np.float32), bm25,
                       doc_freq, dense=dense, notes=notes, unit_vectors=unit_vectors,
                       unit_offsets=unit_offsets,
                       snapshot=folder.name if folder != index_dir else "")  # fmt: skip


def check_model(manifest: dict[str, Any], name: str, fingerprint: str, index_dir: Path) -> None:
    """Refuse an index built with another format or embedding model."""
    rebuild = f"rebuild it: assistant index --force --index {index_dir}"
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexStateError(
            f"index in {index_dir} has format version {version}; this program reads "
            f"version {FORMAT_VERSION}",
            rebuild,
        )
    model = manifest.get("model", {})
    if model.get("fingerprint") != fingerprint:
        raise IndexStateError(
            f"index in {index_dir} was built with embedding model '{model.get('name')}' "
            f"(fingerprint {model.get('fingerprint')}), but the settings ask for '{name}' "
            f"(fingerprint {fingerprint})",
            rebuild,
        )


def index_backend(manifest: dict[str, Any]) -> str:
    """The embedding backend an index was built with (indexes from before backends: torch)."""
    return str(manifest.get("model", {}).get("backend") or "torch")


def check_backend(manifest: dict[str, Any], backend: str, index_dir: Path) -> None:
    """Refuse an index embedded by another backend (torch, onnx, onnx-int8): vectors differ."""
    built = index_backend(manifest)
    if built != backend:
        raise IndexStateError(
            f"index in {index_dir} was built with the '{built}' embedding backend, but the "
            f"settings ask for '{backend}'",
            f"rebuild it: assistant index --force --index {index_dir} (or set "
            f"ASSISTANT_EMBEDDING_BACKEND={built})",
        )


def check_dimension(manifest: dict[str, Any], dimension: int, index_dir: Path) -> None:
    """Refuse an index whose vectors do not have the model's dimension."""
    built = manifest.get("model", {}).get("dimension")
    if built != dimension:
        raise IndexStateError(
            f"index in {index_dir} holds {built}-dimensional vectors; the model makes {dimension}",
            f"rebuild it: assistant index --force --index {index_dir}",
        )


def stale_reason(
    manifest: dict[str, Any],
    corpus_fingerprint: str,
    chunker: dict[str, int],
    bm25_stemmer: str | None,
) -> str | None:
    """Why the index no longer matches the corpus or the chunking settings, or None."""
    if manifest.get("corpus", {}).get("fingerprint") != corpus_fingerprint:
        return "the corpus changed since the index was built"
    if not manifest.get("notes"):
        return "the index predates source texts stored in the index"
    if manifest.get("chunker") != chunker:
        return "the chunking settings changed since the index was built"
    if manifest.get("bm25", {}).get("stemmer") != bm25_stemmer:
        return "the BM25 stemmer setting changed since the index was built"
    return None
