"""On-disk stores of a snapshot read by row: chunk texts and note bodies (SQLite, by row or id),
and float vectors (`VectorFile`); and their writers, which a build fills batch by batch
(`ChunkWriter`, `MatrixWriter`).

SQLite was chosen over a memory-mapped Arrow file by measurement (bench/chunk_store.py): it opens
in well under a millisecond, reads a row in a few microseconds and looks a chunk up by id through
its own index, without holding anything in memory; Arrow needs an id table built at every start.
A query reads only the rows it shows.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from .types import Chunk

CHUNKS_DB = "chunks.db"
_BATCH = 10_000


def write_store(
    path: Path, chunks: Iterable[Chunk], notes: Mapping[str, Mapping[str, Any]]
) -> None:
    """Write the chunks (row = position) and each source's note body into a new SQLite file."""
    writer = ChunkWriter(path)
    try:
        batch: list[Chunk] = []
        for chunk in chunks:
            batch.append(chunk)
            if len(batch) >= _BATCH:
                writer.add(batch)
                batch.clear()
        writer.add(batch)
        writer.finish((k, v["body"], v["body_offset"]) for k, v in notes.items())
    finally:
        writer.close()


class ChunkWriter:
    """A new chunks.db filled batch by batch (rows numbered in the order chunks are added); the
    notes and the index on chunk ids come last (`finish`), so the file is the same whether the
    chunks came in one batch or many."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._con = sqlite3.connect(path)
        self._con.execute("PRAGMA journal_mode = OFF")
        self._con.execute("PRAGMA synchronous = OFF")
        self._con.execute(
            "CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT NOT NULL, data TEXT)"
        )
        self._con.execute(
            "CREATE TABLE notes (doc_id TEXT PRIMARY KEY, body TEXT, body_offset INTEGER)"
        )

    def add(self, chunks: Sequence[Chunk]) -> None:
        """Append chunks as the next rows."""
        rows = [(self.rows + i, c.id, json.dumps(c.to_dict(), ensure_ascii=False))
                for i, c in enumerate(chunks)]  # fmt: skip
        self._con.executemany("INSERT INTO chunks VALUES (?, ?, ?)", rows)
        self.rows += len(rows)

    def finish(self, notes: Iterable[tuple[str, str, int]]) -> None:
        """Add each source's note (id, body, body offset: taken one at a time, so `notes` may
        read each body as it goes), index the chunk ids and commit."""
        self._con.executemany("INSERT INTO notes VALUES (?, ?, ?)", notes)
        self._con.execute("CREATE UNIQUE INDEX chunk_ids ON chunks (id)")
        self._con.commit()

    def close(self) -> None:
        self._con.close()


class RowStore:
    """A read-only connection to a snapshot's chunks.db, shared by threads (calls serialised)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise OSError(f"{path} is missing")
        self._con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True,
                                    check_same_thread=False)  # fmt: skip
        self._lock = threading.Lock()
        self.n_chunks = int(self.one("SELECT COUNT(*) FROM chunks")[0])
        self.n_notes = int(self.one("SELECT COUNT(*) FROM notes")[0])

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        with self._lock:
            return self._con.execute(sql, args).fetchone()

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._con.execute(sql, args).fetchall()


class RowSequence(Sequence[Chunk]):
    """Chunks by row: a slice gives a list, a negative row counts from the end; subclasses
    give `__len__` and `_chunk(row)` for a row in range."""

    @overload
    def __getitem__(self, row: int) -> Chunk: ...
    @overload
    def __getitem__(self, row: slice) -> list[Chunk]: ...
    def __getitem__(self, row: int | slice) -> Chunk | list[Chunk]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        row = int(row)
        return self._chunk(row + len(self) if row < 0 else row)

    def _chunk(self, row: int) -> Chunk:
        raise NotImplementedError


class ChunkStore(RowSequence):
    """The chunks of a snapshot as a sequence read row by row from disk."""

    def __init__(self, store: RowStore) -> None:
        self._store = store

    def __len__(self) -> int:
        return self._store.n_chunks

    def _chunk(self, row: int) -> Chunk:
        found = self._store.one("SELECT data FROM chunks WHERE row = ?", (row,))
        if found is None:
            raise IndexError(f"chunk row {row} out of range")
        return Chunk(**json.loads(found[0]))

    def __iter__(self) -> Iterator[Chunk]:
        for start in range(0, len(self), _BATCH):
            rows = self._store.all(
                "SELECT data FROM chunks WHERE row >= ? AND row < ? ORDER BY row",
                (start, start + _BATCH),
            )
            for (data,) in rows:
                yield Chunk(**json.loads(data))


class ChunkRows(Mapping[str, int]):
    """Chunk id -> row, looked up in the store's index on ids."""

    def __init__(self, store: RowStore) -> None:
        self._store = store

    def __getitem__(self, chunk_id: str) -> int:
        found = self._store.one("SELECT row FROM chunks WHERE id = ?", (chunk_id,))
        if found is None:
            raise KeyError(chunk_id)
        return int(found[0])

    def __len__(self) -> int:
        return self._store.n_chunks

    def __iter__(self) -> Iterator[str]:
        return iter([r[0] for r in self._store.all("SELECT id FROM chunks ORDER BY row")])


class NoteStore(Mapping[str, dict[str, Any]]):
    """Source id -> {"body", "body_offset"}: the note text each source is served from."""

    def __init__(self, store: RowStore) -> None:
        self._store = store

    def __getitem__(self, doc_id: str) -> dict[str, Any]:
        sql = "SELECT body, body_offset FROM notes WHERE doc_id = ?"
        found = self._store.one(sql, (doc_id,))
        if found is None:
            raise KeyError(doc_id)
        return {"body": found[0], "body_offset": found[1]}

    def __len__(self) -> int:
        return self._store.n_notes

    def __iter__(self) -> Iterator[str]:
        return iter([r[0] for r in self._store.all("SELECT doc_id FROM notes ORDER BY doc_id")])


class VectorFile:
    """Float vectors of a `.npy` file read by row with `pread`: nothing is mapped or cached, so
    a query that reads a few rows of a gigabyte file adds nothing to the resident memory (a
    memory map of a freshly written file maps whole large pages around each row it touches)."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            self._start = fh.tell()
        if fortran or len(shape) != 2:
            raise ValueError(f"{path} does not hold a C-ordered matrix")
        self.path = path
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.ndim = 2
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def _block(self, start: int, stop: int) -> np.ndarray:
        n = max(0, stop - start)
        data = os.pread(self._fd, n * self._row_bytes, self._start + start * self._row_bytes)
        return np.frombuffer(data, dtype=self.dtype).reshape(n, self.shape[1])

    def __getitem__(self, rows: Any) -> np.ndarray:
        if isinstance(rows, slice):
            start, stop, step = rows.indices(len(self))
            block = self._block(start, stop)
            return block if step == 1 else block[::step]
        wanted = np.asarray(rows, dtype=np.int64)
        flat = np.where(wanted < 0, wanted + len(self), wanted).reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= len(self)):
            raise IndexError(f"row out of range for {len(self)} vectors")
        out = np.empty((flat.size, self.shape[1]), dtype=self.dtype)
        for i, row in enumerate(flat.tolist()):
            out[i] = self._block(row, row + 1)[0]
        return out[0] if wanted.ndim == 0 else out.reshape(*wanted.shape, self.shape[1])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self._block(0, len(self))
        return whole if dtype is None else whole.astype(dtype)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


class MatrixWriter:
    """A float32 matrix written to a `.npy` file block by block (append only): the header is
    rewritten with the final row count on `close`, so nothing is held in memory."""

    def __init__(self, path: Path, dimension: int) -> None:
        self.path = path
        self.dimension = dimension
        self.rows = 0
        self._fh = path.open("wb")
        self._header = self._header_bytes(0)
        self._fh.write(self._header)

    def _header_bytes(self, rows: int) -> bytes:
        out = io.BytesIO()
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")),
                  "fortran_order": False, "shape": (rows, self.dimension)}  # fmt: skip
        np.lib.format.write_array_header_1_0(out, header)
        return out.getvalue()

    def append(self, block: np.ndarray) -> None:
        """Append rows (converted to little-endian float32)."""
        block = np.ascontiguousarray(block, dtype="<f4").reshape(-1, self.dimension)
        self._fh.write(block.tobytes())
        self.rows += len(block)

    def close(self) -> None:
        """Write the final shape into the header (NumPy pads it so its length never changes)."""
        if self._fh.closed:
            return
        header = self._header_bytes(self.rows)
        if len(header) != len(self._header):
            raise ValueError(f"{self.path}: the .npy header changed length")
        self._fh.seek(0)
        self._fh.write(header)
        self._fh.close()


class StackedVectors:
    """Base vectors then delta vectors, read by row like a matrix (nothing is copied)."""

    def __init__(self, base: Any, delta: Any) -> None:
        self.base, self.delta = base, delta
        self.n_base = len(base)
        d = base.shape[1] if len(base) or not len(delta) else delta.shape[1]
        self.shape: tuple[int, int] = (self.n_base + len(delta), int(d))
        self.dtype = np.dtype(np.float32)
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> np.ndarray:
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(len(self)))
        wanted = np.asarray(rows, dtype=np.int64)
        flat = np.where(wanted < 0, wanted + len(self), wanted).reshape(-1)
        out = np.empty((flat.size, self.shape[1]), dtype=np.float32)
        low = flat < self.n_base
        if low.any():
            out[low] = self.base[flat[low]]
        if (~low).any():
            out[~low] = self.delta[flat[~low] - self.n_base]
        return out[0] if wanted.ndim == 0 else out.reshape(*wanted.shape, self.shape[1])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = np.concatenate([np.asarray(self.base), np.asarray(self.delta)]).astype(np.float32)
        return whole if dtype is None else whole.astype(dtype)
