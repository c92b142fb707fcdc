"""The Milvus store: dense vectors and BM25 text of every chunk in one Milvus collection.

Per chunk the collection holds its row in the snapshot (the primary key), the vector, the BM25
text (the chunk's stemmed tokens; Milvus's BM25 function makes the sparse vector), the source id,
year and source type (scalar fields the filters become expressions on). Milvus Lite (a local
file URI) and a Milvus server or cluster (http(s)://) are used through the same client.

Each build writes a new collection `<alias>__<time>`: rows of unchanged sources are copied from
the live collection (not embedded again), rows of added and changed sources are inserted,
removed sources are left out. The snapshot saved after it names the new collection, and only
then is the alias switched and the old collection dropped, so queries never see a half-written
collection (it is dropped one build later: a server that has not reloaded yet still reads it);
a build that stops half-way leaves an orphan that the next build drops.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import AssistantError, IndexStateError
from .base import Ranked, recorded_kind
from .milvus_client import config_error, connect, milvus_module
from .milvus_schema import collection_schema, entity, filter_expression

if TYPE_CHECKING:
    from ..index import SearchIndex
    from ..retrieve import RetrievalParams
    from ..settings import Settings
    from ..types import Chunk, Filters

IDENTITY = "assistant.identity"  # collection property: what the vectors were made with (JSON)
STATE = "assistant.state"  # collection property: "building" until every row is written
INSERT_BATCH = 512
COPY_BATCH = 1000
MAX_LIMIT = 16384  # Milvus's largest top-k


def _bm25_scores(hits: Sequence[Any], k1: float) -> Ranked:
    # Milvus Lite reports BM25 as a negative distance (smaller is better), a server as a
    # positive score: either way the score is the magnitude. Milvus's BM25 has the factor
    # (k1 + 1) in the numerator that bm25s's Lucene variant leaves out; dividing it out gives
    # the local store's scores, which the adaptive fusion's features read.
    return [(int(h["entity"]["row"]), abs(float(h["distance"])) / (k1 + 1)) for h in hits]


class MilvusStore:
    """A Milvus collection per snapshot, reached through an alias (see the module docstring)."""

    kind = "milvus"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.uri = settings.milvus_target()
        self.alias = settings.milvus_collection
        self._client: Any = None
        self._loaded: set[str] = set()
        self._lock = threading.RLock()
        self.last_publish: dict[str, Any] = {}  # what the last `publish` wrote

    # ------------------------------------------------------------------ connection
    @property
    def client(self) -> Any:
        """The MilvusClient, connected on first use (errors name the setting at fault)."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def open(self) -> None:
        self.client  # noqa: B018 - connects, or raises the error naming the setting

    def _connect(self) -> Any:
        return connect(self.settings, self.uri)

    def config_error(self, exc: BaseException) -> AssistantError:
        """The one-line error for a failed connection or call, naming the setting to fix."""
        return config_error(self.uri, exc)

    def close(self) -> None:
        """Close the client; for Milvus Lite also stop its in-process server, which frees the
        file for another process (every store of this process on that file is closed with it)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                if "://" not in self.uri:
                    from milvus_lite.server_manager import server_manager_instance

                    server_manager_instance.release_server(self.uri)
            self._client = None
            self._loaded.clear()

    # ------------------------------------------------------------------ which collection
    def collection_of(self, index: SearchIndex) -> str:
        """The collection holding this snapshot's rows (named in its manifest)."""
        meta = index.manifest.get("store", {})
        name = meta.get("collection") if meta.get("kind") == self.kind else None
        if not name:
            raise IndexStateError(
                "the index was not published to Milvus (built for the local store)",
                "publish it: assistant index (vectors are reused, nothing is embedded again)",
            )
        return str(name)

    def _ready(self, name: str) -> str:
        if name not in self._loaded:
            try:
                self.client.load_collection(name)
            except Exception as exc:  # noqa: BLE001
                raise IndexStateError(
                    f"Milvus collection {name} at {self.uri} is missing or cannot be loaded: {exc}",
                    "rebuild it: assistant index --force (check ASSISTANT_MILVUS_URI)",
                ) from exc
            self._loaded.add(name)
        return name

    def identity(self, index: SearchIndex) -> dict[str, Any]:
        """What the vectors and BM25 text of a collection were made with."""
        m = index.manifest
        return {
            "model": m.get("model", {}).get("name"),
            "fingerprint": m.get("model", {}).get("fingerprint"),
            "dimension": m.get("model", {}).get("dimension"),
            "backend": m.get("model", {}).get("backend"),
            "chunker": m.get("chunker"),
            "bm25_stemmer": m.get("bm25", {}).get("stemmer"),
        }

    def _properties(self, name: str) -> dict[str, Any]:
        return dict(self.client.describe_collection(name).get("properties") or {})

    # ------------------------------------------------------------------ search
    def _search(
        self, index: SearchIndex, data: list[Any], field: str, metric: str, n: int,
        filters: Filters | None,
    ) -> list[Any]:  # fmt: skip
        name = self._ready(self.collection_of(index))
        n = min(n, MAX_LIMIT)
        if n <= 0:
            return []
        try:
            result = self.client.search(
                name, data, anns_field=field, limit=n, filter=filter_expression(filters),
                output_fields=["row"], search_params={"metric_type": metric},
                timeout=self.settings.milvus_timeout,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            raise self.config_error(exc) from exc
        return list(result[0]) if result else []

    def dense_search(
        self, index: SearchIndex, query_vector: np.ndarray, n: int, filters: Filters | None
    ) -> Ranked:
        vec = np.asarray(query_vector, dtype=np.float32).reshape(-1).tolist()
        hits = self._search(index, [vec], "vector", "IP", n, filters)
        return [(int(h["entity"]["row"]), float(h["distance"])) for h in hits]

    def lexical_search(
        self, index: SearchIndex, query_tokens: Sequence[str], n: int, filters: Filters | None
    ) -> Ranked:
        text = " ".join(query_tokens)
        if not text.strip():
            return []
        hits = self._search(index, [text], "sparse", "BM25", n, filters)
        k1 = float(index.manifest.get("bm25", {}).get("k1", 1.5))
        return [(r, s) for r, s in _bm25_scores(hits, k1) if s > 0]

    def hybrid_search(
        self,
        index: SearchIndex,
        query_vector: np.ndarray,
        query_tokens: Sequence[str],
        n: int,
        params: RetrievalParams,
        filters: Filters | None,
    ) -> Ranked | None:
        """One Milvus hybrid_search when `milvus_hybrid=server`, else None (fused by the caller).

        Milvus normalises scores by arctan, not min-max, and cannot set the adaptive fusion's
        per-query weight: fusion=score and adaptive both use WeightedRanker with the fixed
        weights dense_weight and bm25_weight; rrf uses RRFRanker (unweighted). The depth of
        each list is `max(params.candidates, n)`.
        """
        if self.settings.milvus_hybrid != "server" or not " ".join(query_tokens).strip():
            return None
        pymilvus = milvus_module()
        name = self._ready(self.collection_of(index))
        expr = filter_expression(filters)
        depth = min(max(params.candidates, n), MAX_LIMIT)
        vec = np.asarray(query_vector, dtype=np.float32).reshape(-1).tolist()
        requests = [
            pymilvus.AnnSearchRequest([vec], "vector", {"metric_type": "IP"}, depth, expr=expr),
            pymilvus.AnnSearchRequest(
                [" ".join(query_tokens)], "sparse", {"metric_type": "BM25"}, depth, expr=expr
            ),
        ]
        if params.fusion == "rrf":
            ranker = pymilvus.RRFRanker(params.rrf_k)
        else:
            ranker = pymilvus.WeightedRanker(
                params.dense_weight, params.bm25_weight, norm_score=True
            )
        try:
            result = self.client.hybrid_search(name, requests, ranker, limit=min(n, MAX_LIMIT),
                                               output_fields=["row"],
                                               timeout=self.settings.milvus_timeout)  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            raise self.config_error(exc) from exc
        hits = list(result[0]) if result else []
        return [(int(h["entity"]["row"]), float(h["distance"])) for h in hits]

    def fetch_chunks(self, index: SearchIndex, rows: Sequence[int]) -> list[Chunk]:
        return [index.chunks[int(r)] for r in rows]

    def fetch_sources(self, index: SearchIndex, doc_ids: Sequence[str]) -> dict[str, Any]:
        return {d: index.sources[d] for d in doc_ids if d in index.sources}

    # ------------------------------------------------------------------ writing
    def _new_collection(self, index: SearchIndex) -> str:
        schema, params = collection_schema(self.client, index.manifest)
        name = f"{self.alias}__{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        self.client.create_collection(
            name, schema=schema, index_params=params, consistency_level="Strong",
            properties={IDENTITY: json.dumps(self.identity(index)), STATE: "building"},
        )  # fmt: skip
        return name

    def _entity(self, index: SearchIndex, row: int, vector: Sequence[float]) -> dict[str, Any]:
        return entity(index, row, vector)

    def _insert(self, name: str, entities: list[dict[str, Any]]) -> None:
        self.client.insert(name, entities)

    def _reusable(self, index: SearchIndex, previous: SearchIndex | None) -> str | None:
        """The previous snapshot's collection, when its rows can be copied into the new one."""
        if previous is None or recorded_kind(previous.manifest) != self.kind:
            return None
        name = previous.manifest.get("store", {}).get("collection")
        if not name or not self.client.has_collection(name):
            return None
        props = self._properties(name)
        if props.get(STATE) != "complete":
            return None
        try:
            same = json.loads(props.get(IDENTITY, "{}")) == self.identity(index)
        except ValueError:
            return None
        return str(name) if same else None

    def _row_batches(
        self, name: str, rows: Sequence[int], fields: list[str]
    ) -> Iterator[list[dict[str, Any]]]:
        """The entities of these rows of collection `name`, a primary-key range at a time."""
        wanted = sorted(rows)
        i = 0
        while i < len(wanted):
            start = wanted[i]
            stop = start + COPY_BATCH
            batch = self.client.query(name, filter=f"row >= {start} and row < {stop}",
                                      output_fields=fields, limit=COPY_BATCH,
                                      timeout=self.settings.milvus_timeout)  # fmt: skip
            yield list(batch)
            while i < len(wanted) and wanted[i] < stop:
                i += 1

    def _copy_rows(self, source: str, target: str, keep: dict[int, int]) -> int:
        """Copy the rows `keep` (old row -> new row) from `source` to `target`; returns how many."""
        self._ready(source)
        fields = ["row", "chunk_id", "doc_id", "year", "source_type", "tokens", "vector"]
        copied = 0
        for batch in self._row_batches(source, list(keep), fields):
            out = []
            for found in batch:
                old = int(found["row"])
                if old in keep:
                    item = {k: found[k] for k in fields[1:-1]}
                    item["row"] = keep[old]
                    item["vector"] = [float(x) for x in found["vector"]]
                    out.append(item)
            if out:
                self._insert(target, out)
                copied += len(out)
        return copied

    def publish(
        self, index: SearchIndex, previous: SearchIndex | None, changes: dict[str, list[str]]
    ) -> dict[str, Any]:
        """Write the new collection: unchanged sources copied, changed and added ones inserted.

        Nothing queries it until the snapshot naming it is saved and `activate` runs.
        """
        try:
            self._drop_orphans(keep=self._live_names(previous))
            name = self._new_collection(index)
            source = self._reusable(index, previous)
            keep: dict[int, int] = {}
            if source is not None and previous is not None:
                touched = set(changes.get("added", [])) | set(changes.get("changed", []))
                old_rows = {c.id: (i, c.text) for i, c in enumerate(previous.chunks)}
                for row, chunk in enumerate(index.chunks):
                    old = old_rows.get(chunk.id)
                    if chunk.doc_id not in touched and old is not None and old[1] == chunk.text:
                        keep[old[0]] = row
            copied = self._copy_rows(source, name, keep) if source and keep else 0
            if copied != len(keep):
                raise IndexStateError(
                    f"copying {len(keep)} rows from Milvus collection {source} gave {copied}",
                    "rebuild it: assistant index --force",
                )
            new_rows = sorted(set(range(len(index.chunks))) - set(keep.values()))
            for start in range(0, len(new_rows), INSERT_BATCH):
                rows = new_rows[start : start + INSERT_BATCH]
                vectors = _vectors_of(index, rows)
                self._insert(name, [self._entity(index, r, v) for r, v in
                                    zip(rows, vectors.tolist(), strict=True)])  # fmt: skip
            self.client.flush(name)
            self.client.alter_collection_properties(name, properties={STATE: "complete"})
        except AssistantError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.config_error(exc) from exc
        self.last_publish = {"collection": name, "copied_rows": copied,
                             "inserted_rows": len(new_rows),
                             "removed_sources": list(changes.get("removed", []))}  # fmt: skip
        return self.describe() | {"collection": name}

    def activate(self, index: SearchIndex) -> None:
        """Point the alias at the snapshot's collection, then drop the older collections.

        The collection the alias pointed at until now is kept until the next build, as the
        previous local snapshot is: a server that has not yet reloaded still answers from it.
        """
        name = self.collection_of(index)
        c = self.client
        try:
            replaced = self.live_collection()
            if replaced is not None:
                c.alter_alias(name, self.alias)
            else:
                c.create_alias(name, self.alias)
            self._drop_orphans(keep={name, replaced or name})
        except Exception as exc:  # noqa: BLE001
            raise self.config_error(exc) from exc

    def _live_names(self, index: SearchIndex | None) -> set[str]:
        keep = set()
        if index is not None and recorded_kind(index.manifest) == self.kind:
            keep.add(str(index.manifest.get("store", {}).get("collection")))
        live = self.live_collection()
        if live:
            keep.add(live)
        return keep

    def _drop_orphans(self, keep: set[str]) -> None:
        """Drop this alias's collections other than `keep` (replaced or half-written ones)."""
        pattern = re.compile(re.escape(self.alias) + r"__\d{8}T\d{12}")
        for name in self.client.list_collections():
            if pattern.fullmatch(name) and name not in keep:
                self.client.drop_collection(name)
                self._loaded.discard(name)

    def collections(self) -> list[str]:
        """This alias's collections, oldest first (for tests and `describe`)."""
        pattern = re.compile(re.escape(self.alias) + r"__\d{8}T\d{12}")
        return sorted(n for n in self.client.list_collections() if pattern.fullmatch(n))

    def live_collection(self) -> str | None:
        """The collection the alias points at, or None."""
        if self.alias not in self.client.list_aliases().get("aliases", []):
            return None
        return str(self.client.describe_alias(self.alias)["collection_name"])

    # ------------------------------------------------------------------ checks
    def check(self, index: SearchIndex) -> None:
        name = self.collection_of(index)
        try:
            exists = self.client.has_collection(name)
        except Exception as exc:  # noqa: BLE001
            raise self.config_error(exc) from exc
        if not exists:
            raise IndexStateError(
                f"Milvus at {self.uri} has no collection {name}, which the index names",
                "rebuild it: assistant index --force (or point ASSISTANT_MILVUS_URI at the "
                "Milvus it was built in)",
            )
        props = self._properties(name)
        try:
            built = json.loads(props.get(IDENTITY, "{}"))
        except ValueError:
            built = {}
        wanted = self.identity(index)
        if built.get("fingerprint") != wanted["fingerprint"] or built != wanted:
            raise IndexStateError(
                f"Milvus collection {name} was built with embedding model '{built.get('model')}' "
                f"(fingerprint {built.get('fingerprint')}, backend {built.get('backend')}), but "
                f"the index asks for '{wanted['model']}' (fingerprint {wanted['fingerprint']}, "
                f"backend {wanted['backend']})",
                "rebuild it: assistant index --force (or set ASSISTANT_MILVUS_COLLECTION to the "
                "collection built for this model)",
            )

    def stale_reason(self, manifest: dict[str, Any]) -> str | None:
        meta = manifest.get("store", {})
        if meta.get("kind") != self.kind:
            return "the index was built for the local store, not Milvus"
        if meta.get("uri") != self.uri or meta.get("alias") != self.alias:
            return f"the index was published to Milvus at {meta.get('uri')}, not {self.uri}"
        return None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "uri": self.uri, "alias": self.alias}

    def rows(self, index: SearchIndex) -> Iterator[dict[str, Any]]:
        """Every entity of the snapshot's collection (row, chunk_id, doc_id, year, source_type)."""
        name = self._ready(self.collection_of(index))
        fields = ["row", "chunk_id", "doc_id", "year", "source_type"]
        for batch in self._row_batches(name, range(len(index.chunks)), fields):
            yield from batch


def _vectors_of(index: SearchIndex, rows: Sequence[int]) -> np.ndarray:
    """The snapshot's vectors of these chunk rows (the one place this reads index.vectors)."""
    return np.asarray(index.vectors[np.asarray(rows, dtype=np.int64)], dtype=np.float32)
