"""Snapshots of an index folder: each save writes a complete new folder under `snapshots/`, then
switches the `current` symlink to it with one atomic rename, so a reader (or a kill at any point)
sees the old index or the new one, never a mix. Which files a snapshot holds is `index.py`'s
business; this module only makes them live safely."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import IndexStateError
from .manifest import validated

MANIFEST = "manifest.json"
SNAPSHOTS = "snapshots"  # index_dir/snapshots/<name>/: one complete index each
CURRENT = "current"  # index_dir/current -> snapshots/<name>: the live one, switched atomically
LOCK_FILE = ".lock"
KEEP_FILES = ("README.md", ".gitignore")


def write_snapshot(index_dir: Path, fill: Callable[[Path], None]) -> str:
    """Make a new snapshot folder, let `fill` write the index files into it (the manifest last:
    a folder without one is never taken for an index), then make it live in one atomic step.

    The symlink `current` is replaced by a new one with a single rename. Leftovers of
    interrupted saves are removed here. Returns the snapshot's folder name.
    """
    index_dir = index_dir.resolve()
    index_dir.mkdir(parents=True, exist_ok=True)
    with _save_lock(index_dir):
        (index_dir / SNAPSHOTS).mkdir(exist_ok=True)
        tmp = index_dir / SNAPSHOTS / _snapshot_name()
        tmp.mkdir()
        switched = False
        try:
            fill(tmp)
            if not (tmp / MANIFEST).is_file():
                raise IndexStateError(f"snapshot {tmp} was written without a manifest")
            previous = _switch_current(index_dir, tmp)
            switched = True
        finally:
            if not switched:
                shutil.rmtree(tmp, ignore_errors=True)
        _link_entries(index_dir, tmp)
        _remove_leftovers(index_dir, keep={tmp.name, previous})
        return tmp.name


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


@dataclass(frozen=True)
class LiveManifest:
    """The live snapshot of an index folder and its manifest, read once: what is checked before
    a load is what `index.load_index` then opens."""

    folder: Path  # the snapshot folder (`snapshot_dir`)
    manifest: dict[str, Any]  # validated against `manifest.Manifest`, as stored


def read_live(index_dir: Path) -> LiveManifest | None:
    """The live snapshot of `index_dir` with its validated manifest, or None when there is no
    built index."""
    folder = snapshot_dir(index_dir)
    if folder is None:
        return None
    path = folder / MANIFEST
    rebuild = f"rebuild it: assistant index --force --index {index_dir}"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexStateError(f"index manifest {path} is unreadable: {exc}", rebuild) from exc
    return LiveManifest(folder, validated(raw, str(path), rebuild))


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The manifest of the index in `index_dir`, or None when there is no built index."""
    live = read_live(index_dir)
    return None if live is None else live.manifest
