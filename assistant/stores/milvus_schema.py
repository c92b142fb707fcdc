"""What a Milvus collection of the assistant holds: its schema and index parameters, one
chunk's row (entity), and the filters as a Milvus expression."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..chunk import embedding_text
from ..lexical import tokenize
from .milvus_client import milvus_module

if TYPE_CHECKING:
    from ..index import SearchIndex
    from ..types import Filters

NO_YEAR = -1  # a source without a year: excluded by any year filter, as Filters.allows does
MAX_TEXT = 65535


def collection_schema(client: Any, manifest: dict[str, Any]) -> tuple[Any, Any]:
    """The schema and index parameters of a collection for an index with this manifest: row
    (primary key), chunk and source ids, year, source type, the BM25 tokens with Milvus's BM25
    function making the sparse vector from them, and the dense vector."""
    pymilvus = milvus_module()
    DataType, Function, FunctionType = (pymilvus.DataType, pymilvus.Function,
                                        pymilvus.FunctionType)  # fmt: skip
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("chunk_id", DataType.VARCHAR, max_length=1024)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=512)
    schema.add_field("year", DataType.INT64)
    schema.add_field("source_type", DataType.VARCHAR, max_length=128)
    # the chunk's own BM25 tokens (stemmed, stop words out), split again only at spaces
    schema.add_field("tokens", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard"})  # fmt: skip
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(manifest["model"]["dimension"]))
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["tokens"],
                                 output_field_names=["sparse"]))  # fmt: skip
    params = client.prepare_index_params()
    # exact search, as the local store; a cluster would choose HNSW or IVF here
    params.add_index("vector", index_type="FLAT", metric_type="IP")
    bm25 = manifest.get("bm25", {})
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"bm25_k1": bm25.get("k1", 1.5),
                             "bm25_b": bm25.get("b", 0.75)})  # fmt: skip
    return schema, params


def entity(index: SearchIndex, row: int, vector: Sequence[float]) -> dict[str, Any]:
    """The collection row of chunk `row` of the snapshot."""
    chunk = index.chunks[row]
    meta = index.sources.get(chunk.doc_id, {})
    year = meta.get("year")
    stemmer = index.manifest.get("bm25", {}).get("stemmer")
    title = str(meta.get("title") or "")
    tokens = " ".join(tokenize(embedding_text(chunk, title), stemmer)) or "\u2205"
    return {
        "row": row,
        "chunk_id": chunk.id,
        "doc_id": chunk.doc_id,
        "year": int(year) if isinstance(year, int) else NO_YEAR,
        "source_type": str(meta.get("source_type") or ""),
        "tokens": tokens[:MAX_TEXT],
        "vector": list(vector),
    }


def filter_expression(filters: Filters | None) -> str:
    """A Milvus boolean expression for the filters ('' when nothing is filtered)."""
    if filters is None or filters.is_empty():
        return ""
    parts = []
    if filters.year_min is not None or filters.year_max is not None:
        parts.append(f"year >= {max(0, filters.year_min or 0)}")
        if filters.year_max is not None:
            parts.append(f"year <= {int(filters.year_max)}")
    if filters.source_types:
        parts.append(f"source_type in {json.dumps(list(filters.source_types))}")
    return " and ".join(parts)
