"""Fault injection for the index save: kill the saver at every step, check a complete index loads.

Run as a script (`python tests/fault_save.py WORKDIR`); prints one JSON object. It builds two small
indexes ("old" and "new", told apart by their document count and a marker in the manifest), saves
"old", then for every line of the save modules (`assistant/index.py`, `snapshots.py`,
`chunk_store.py`, `dense.py`) that a save of "new" executes (in the order
first reached) forks a child that saves "new" and SIGKILLs itself just before that line runs.
After each kill the parent checks that the index folder loads, that it is wholly "old" or wholly
"new", and that the next save succeeds and leaves no leftovers. Used by
tests/test_reliability.py and bench/reliability.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import index as index_module  # noqa: E402
from assistant.chunk import chunk_documents  # noqa: E402
from assistant.embed import EmbedderBase  # noqa: E402
from assistant.index import (  # noqa: E402
    CURRENT,
    SNAPSHOTS,
    SearchIndex,
    load_index,
    save_index,
)
from assistant.stream_build import StreamBuild  # noqa: E402
from assistant.types import Document  # noqa: E402

# the modules a save runs through: the index files, the store, the dense index, the snapshot switch
SAVE_FILES = {
    str(Path(index_module.__file__).resolve().with_name(name))
    for name in ("index.py", "snapshots.py", "chunk_store.py", "dense.py")
}
Point = tuple[str, int, str]  # (function name, line number, module file) in assistant/


class HashEmbedder(EmbedderBase):
    """Deterministic toy embedder (no model): hashed words."""

    name = "fault-embedder"
    dimension = 16
    fingerprint = "fault-embedder-16"

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        for word in text.lower().split():
            v[int(hashlib.md5(word.encode()).hexdigest()[:6], 16) % self.dimension] += 1
        n = float(np.linalg.norm(v))
        return v / n if n else v

    def embed_documents(self, texts: Sequence[str], progress: Any = None) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, 16), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)


def make_index(label: str, n_docs: int, workdir: Path) -> SearchIndex:
    """A small index whose every document says which version it belongs to: built as
    `assistant index` builds (`StreamBuild`, in `workdir`), then held in memory for the saves."""
    docs = []
    for i in range(n_docs):
        body = (
            f"\n# Study {i} ({label})\n\n## Findings\n\nVersion {label}: hepatic metastases of "
            f"neuroendocrine tumours, cohort {i}, resection and embolization outcomes.\n"
        )
        docs.append(Document(id=f"doc-{i}", title=f"Study {i} {label}", year=2000 + i,
                             source_type="cohort", body=body, path=Path(f"/corpus/doc-{i}.md"),
                             body_offset=10, fingerprint=f"{label}-{i}"))  # fmt: skip
    chunks = chunk_documents(docs, 60, 10)
    build = StreamBuild(workdir / f"built-{label}", docs, lambda: chunks, HashEmbedder(),
                        chunker={"chunk_max_tokens": 60, "chunk_overlap_tokens": 10},
                        bm25_stemmer=None, corpus_files={}, corpus_fingerprint=label,
                        corpus_root=Path("/corpus"))  # fmt: skip
    built = build.run().index
    build.save(built)
    built = load_index(workdir / f"built-{label}")
    # read whole into memory, so a forked saver reads no database its parent opened
    return SearchIndex(built.manifest | {"fault_label": label}, list(built.chunks),
                       dict(built.sources), np.array(built.vectors), built.bm25,
                       dict(built.doc_freq), dense=built.dense, notes=dict(built.notes),
                       unit_vectors=np.array(built.unit_vectors),
                       unit_offsets=np.array(built.unit_offsets))  # fmt: skip


def trace_points(action: Callable[[], None]) -> list[Point]:
    """The lines of the save modules that `action` executes, in the order first reached."""
    seen: dict[Point, None] = {}

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            seen.setdefault((frame.f_code.co_name, frame.f_lineno, frame.f_code.co_filename), None)
        return local

    def global_(frame: Any, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename in SAVE_FILES else None

    sys.settrace(global_)
    try:
        action()
    finally:
        sys.settrace(None)
    return list(seen)


def kill_at(point: Point, action: Callable[[], None]) -> None:
    """Run `action`, SIGKILLing this process just before `point` first executes."""

    def local(frame: Any, event: str, arg: Any) -> Any:
        where = (frame.f_code.co_name, frame.f_lineno, frame.f_code.co_filename)
        if event == "line" and where == point:
            os.kill(os.getpid(), signal.SIGKILL)
        return local

    def global_(frame: Any, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename in SAVE_FILES else None

    sys.settrace(global_)
    action()
    sys.settrace(None)


def leftovers(index_dir: Path) -> list[str]:
    """What an interrupted save may leave and the next save must remove."""
    out = [p.name for p in index_dir.parent.iterdir() if p.name.startswith(f".{index_dir.name}.")]
    if index_dir.is_dir():
        out += [p.name for p in index_dir.iterdir() if ".tmp-" in p.name or ".link-" in p.name]
        snaps = index_dir / SNAPSHOTS
        if snaps.is_dir() and len(list(snaps.iterdir())) > 2:
            out += [f"{len(list(snaps.iterdir()))} snapshots"]
    return out


def check(index_dir: Path, expected: dict[str, int]) -> str | None:
    """None when the index folder loads as wholly one of the expected versions, else why not."""
    try:
        loaded = load_index(index_dir)
    except Exception as exc:  # noqa: BLE001 - reported
        return f"does not load: {exc}"
    label = loaded.manifest.get("fault_label")
    if label not in expected:
        return f"unknown version {label!r}"
    if len(loaded.sources) != expected[label] or len(loaded.notes) != expected[label]:
        return f"mixed snapshot: {label} with {len(loaded.sources)} sources"
    if any(f"Version {label}:" not in c.text for c in loaded.chunks if "Version" in c.text):
        return "chunks of another version"
    return None


def run(workdir: Path) -> dict[str, Any]:
    """Inject a kill at every step of a save; return the counts and every failure."""
    started = time.perf_counter()
    old, new = make_index("old", 3, workdir), make_index("new", 5, workdir)
    expected = {"old": 3, "new": 5}
    template = workdir / "template" / "index"
    save_index(old, template)
    scratch = workdir / "scratch" / "index"
    shutil.copytree(template, scratch, symlinks=True)
    points = trace_points(lambda: save_index(new, scratch))
    results = {"kill_points": len(points), "killed": 0, "completed": 0, "loaded_old": 0,
               "loaded_new": 0, "failures": []}  # fmt: skip
    for n, point in enumerate(points):
        case = workdir / f"case-{n}"
        index_dir = case / "index"
        shutil.copytree(template, index_dir, symlinks=True)
        pid = os.fork()
        if pid == 0:  # the child: save "new", killed before `point`
            try:
                kill_at(point, lambda: save_index(new, index_dir))  # noqa: B023 - runs now
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        results["killed" if killed else "completed"] += 1
        where = f"killed before {Path(point[2]).name}:{point[0]}:{point[1]}"
        problem = check(index_dir, expected)
        if problem:
            results["failures"].append(f"{where}: {problem}")
        else:
            label = load_index(index_dir).manifest["fault_label"]
            results[f"loaded_{label}"] += 1
        try:  # the next save recovers: "new" is live and nothing is left over
            save_index(new, index_dir)
            if load_index(index_dir).manifest["fault_label"] != "new":
                results["failures"].append(f"{where}: the next save did not make 'new' live")
            left = leftovers(index_dir)
            if left:
                results["failures"].append(f"{where}: leftovers after the next save: {left}")
            if not (index_dir / CURRENT).is_symlink():
                results["failures"].append(f"{where}: no '{CURRENT}' link after the next save")
        except Exception as exc:  # noqa: BLE001 - reported
            results["failures"].append(f"{where}: the next save failed: {exc}")
        shutil.rmtree(case, ignore_errors=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]))))
