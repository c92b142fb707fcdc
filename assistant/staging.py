"""Staged batches of an unfinished build, so an interrupted build resumes without embedding again.

A full build (`stream_build.py`) writes the vectors of each batch it embeds to
`index_dir/.building/<key>/batch-NNNNNN.npz` (written whole, then renamed into place). `<key>`
fingerprints everything that decides those vectors: model, backend and its recipe, chunking,
corpus, batch size. A rerun with the same key takes the staged batches as they are; folders of
other keys are stale and removed; a batch file that cannot be read, or holds other chunks, is
discarded and embedded again. The folder goes once the new snapshot is saved.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BUILDING = ".building"  # index_dir/.building/<key>/: the staged batches of an unfinished build
WORK = "work"  # index_dir/.building/<key>/work/: the files of the snapshot being assembled


def staging_key(parts: dict[str, Any]) -> str:
    """A short fingerprint of what decides a build's vectors (JSON-serialisable `parts`)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def batch_digest(ids: Sequence[str], texts: Sequence[str]) -> str:
    """Fingerprint of a batch's chunks (ids and embedded texts): a staged batch must match it."""
    h = hashlib.sha256()
    for chunk_id, text in zip(ids, texts, strict=True):
        h.update(chunk_id.encode())
        h.update(b"\0")
        h.update(text.encode())
        h.update(b"\1")
    return h.hexdigest()


@dataclass
class StagedBatch:
    """The vectors of one batch: its chunks' (rows in batch order), their answer units (rows
    grouped by chunk; `unit_counts` per chunk), and how many chunks were reused, not embedded."""

    vectors: np.ndarray
    units: np.ndarray
    unit_counts: np.ndarray
    reused: int = 0


class Staging:
    """The staging folder of one build key under `index_dir/.building/`."""

    def __init__(self, index_dir: Path, key: str) -> None:
        self.root = index_dir / BUILDING
        self.folder = self.root / key
        self.warnings: list[str] = []

    def open(self) -> None:
        """Create the folder; remove stale keys and half-written batch files."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for other in self.root.iterdir():
            if other != self.folder:
                if other.is_dir():
                    shutil.rmtree(other, ignore_errors=True)
                else:
                    other.unlink(missing_ok=True)
        for tmp in self.folder.glob("*.tmp-*"):
            tmp.unlink(missing_ok=True)

    def new_work(self) -> Path:
        """An empty folder for the files of the snapshot being assembled (emptied if present)."""
        work = self.folder / WORK
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        return work

    def path(self, batch: int) -> Path:
        return self.folder / f"batch-{batch:06d}.npz"

    def staged(self, n_batches: int) -> list[int]:
        """Numbers of the batches (below `n_batches`) that have a staged file."""
        return [i for i in range(n_batches) if self.path(i).is_file()]

    def load(self, batch: int, digest: str, n_chunks: int, dimension: int) -> StagedBatch | None:
        """The staged vectors of `batch` when its file is whole and holds these chunks, else
        None (a damaged or mismatched file is removed, with a warning)."""
        path = self.path(batch)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                staged = StagedBatch(np.asarray(data["vectors"], dtype=np.float32),
                                     np.asarray(data["units"], dtype=np.float32),
                                     np.asarray(data["unit_counts"], dtype=np.int64),
                                     int(data["reused"]))  # fmt: skip
                same = str(data["digest"]) == digest
        except Exception as exc:  # noqa: BLE001 - any damage means: embed it again
            self._discard(path, f"unreadable ({type(exc).__name__}: {exc})")
            return None
        shapes = (
            staged.vectors.shape == (n_chunks, dimension)
            and staged.units.shape[1:] == (dimension,)
            and len(staged.unit_counts) == n_chunks
            and int(staged.unit_counts.sum()) == len(staged.units)
        )
        if not (same and shapes):
            self._discard(path, "made for other chunks")
            return None
        return staged

    def _discard(self, path: Path, why: str) -> None:
        path.unlink(missing_ok=True)
        self.warnings.append(f"staged build batch {path} is {why}; embedding it again")

    def save(self, batch: int, digest: str, staged: StagedBatch) -> None:
        """Write a batch's vectors: whole to a temporary file, synced, then renamed into place."""
        path = self.path(batch)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        with tmp.open("wb") as fh:
            np.savez(fh, vectors=staged.vectors, units=staged.units,
                     unit_counts=staged.unit_counts, reused=np.int64(staged.reused),
                     digest=np.str_(digest))  # fmt: skip
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def remove(self) -> None:
        """Delete this key's folder, and `.building` when nothing else is in it."""
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.root.rmdir()
