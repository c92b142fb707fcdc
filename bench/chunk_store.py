"""SQLite or a memory-mapped Arrow file for the chunk store: the measurement behind the choice.

Writes N synthetic chunk rows (id, doc id, section, ~700 characters of text) both ways into a
temporary folder, then times opening the store, reading single rows at random (what a query
does: 10-50 rows), looking a chunk up by its id, and reports the file sizes and the resident
memory each adds. The texts are synthetic (random words); only sizes and access patterns matter.
Usage: .venv/bin/python bench/chunk_store.py [--rows 200000] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import machine, percentile

WORDS = [f"w{i}" for i in range(5000)]


def rows(n: int) -> list[tuple[int, str, str, str, str]]:
    rnd = random.Random(0)
    text = " ".join(rnd.choice(WORDS) for _ in range(140))
    return [(i, f"doc-{i // 30}#{i % 30}", f"doc-{i // 30}", "Results", text) for i in range(n)]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed_reads(read: Any, n: int, probes: int = 2000) -> list[float]:
    rnd = random.Random(1)
    out = []
    for _ in range(probes):
        r = rnd.randrange(n)
        t0 = time.perf_counter()
        read(r)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def figures(
    path: Path,
    write_s: float,
    open_ms: float,
    by_row: Callable[[int], Any],
    by_id: Callable[[int], Any],
    n: int,
    rss_before: float,
) -> dict[str, Any]:
    """One store's figures: write time, size, open time, read latencies, memory it added."""
    row_us = timed_reads(by_row, n)
    id_us = timed_reads(by_id, n)
    return {"write_s": round(write_s, 2), "size_mb": round(path.stat().st_size / 1e6, 1),
            "open_ms": round(open_ms, 2), "row_read_p50_us": round(percentile(row_us, 50), 1),
            "id_lookup_p50_us": round(percentile(id_us, 50), 1),
            "rss_added_mb": round(rss_mb() - rss_before, 1)}  # fmt: skip


def bench_sqlite(folder: Path, data: list[tuple[int, str, str, str, str]]) -> dict[str, Any]:
    path = folder / "chunks.db"
    t0 = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT UNIQUE, doc_id TEXT, "
                "section TEXT, text TEXT)")  # fmt: skip
    con.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?)", data)
    con.commit()
    con.close()
    write_s = time.perf_counter() - t0
    before = rss_mb()
    t0 = time.perf_counter()
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    open_ms = (time.perf_counter() - t0) * 1000

    def by_row(r: int) -> Any:
        return con.execute("SELECT * FROM chunks WHERE row = ?", (r,)).fetchone()

    def by_id(r: int) -> Any:
        return con.execute("SELECT row FROM chunks WHERE id = ?", (data[r][1],)).fetchone()

    return figures(path, write_s, open_ms, by_row, by_id, len(data), before)


def bench_arrow(folder: Path, data: list[tuple[int, str, str, str, str]]) -> dict[str, Any]:
    import pyarrow as pa

    path = folder / "chunks.arrow"
    t0 = time.perf_counter()
    cols = list(zip(*data, strict=True))
    table = pa.table({"row": cols[0], "id": cols[1], "doc_id": cols[2], "section": cols[3],
                      "text": cols[4]})  # fmt: skip
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=4096)
    write_s = time.perf_counter() - t0
    del table, cols
    before = rss_mb()
    t0 = time.perf_counter()
    mapped = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    ids = {v: i for i, v in enumerate(mapped.column("id").to_pylist())}  # no index on disk
    open_ms = (time.perf_counter() - t0) * 1000

    def by_row(r: int) -> Any:
        return mapped.slice(r, 1).to_pylist()[0]

    def by_id(r: int) -> Any:
        return ids[data[r][1]]

    return figures(path, write_s, open_ms, by_row, by_id, len(data), before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = rows(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        out = {"rows": args.rows, "sqlite": bench_sqlite(Path(tmp), data),
               "arrow": bench_arrow(Path(tmp), data), "machine": machine(),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}  # fmt: skip
    if args.json:
        print(json.dumps(out))
        return
    print(f"{args.rows} synthetic chunk rows; {out['machine']}")
    for name in ("sqlite", "arrow"):
        print(f"  {name:7s} " + "  ".join(f"{k}={v}" for k, v in out[name].items()))


if __name__ == "__main__":
    main()
