"""Peak memory and time of a full build (`assistant index`) of a large synthetic corpus of notes
on disk: what the build holds of the corpus itself (metadata only, or every note's body too).

The corpus is written to a temporary folder: N chunks' worth of notes of about --note-chunks
chunks each at the default chunk size, with the front matter of a bundled note (new ids and
titles) and bodies of real sentences of the bundled corpus recombined (seeded). The build runs in
its own process through `IndexLifecycle(settings, embedder=...).build()`, as `assistant index`
does, with a fast deterministic embedder: the vectors are SYNTHETIC (a hash of each text seeds a
normal vector of dimension 384, normalised), so the figures are the build's own cost without
the model's. Peak RSS is the child's ru_maxrss (VmHWM); `rss_before_mb` is its RSS once
everything is imported, before the build.
Usage: .venv/bin/python bench/corpus_memory.py [--chunks 100000] [--note-chunks 30] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from _common import ROOT, machine

sys.path.insert(0, str(ROOT))

DIMENSION = 384


class HashEmbedder:
    """Synthetic vectors: each text's hash seeds a normal vector, normalised. Deterministic."""

    name = "synthetic-hash-384"
    dimension = DIMENSION
    fingerprint = "synthetic-hash-384"
    backend = "torch"
    backend_version = 0

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            out[i] = np.random.default_rng(seed).standard_normal(DIMENSION, dtype=np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        if progress:
            progress(len(texts), len(texts))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts)


def write_corpus(folder: Path, chunks: int, note_chunks: int, seed: int = 0) -> dict[str, int]:
    """Notes of about `note_chunks` chunks each, `chunks` chunks in all (about): front matter
    shaped like a bundled note's, bodies of the bundled corpus's sentences recombined."""
    from assistant.chunk import count_tokens, split_sentences
    from assistant.corpus import load_corpus
    from assistant.settings import Settings

    docs, _ = load_corpus(ROOT / "corpus")
    sentences = []
    for doc in docs:
        for line in doc.body.split("\n"):
            if line.strip() and not line.startswith(("#", "-", "|", "*", ">")):
                sentences += [line[s:e] for s, e in split_sentences(line)]
    sentences = [s for s in sentences if 8 <= count_tokens(s) <= 60]
    s = Settings()
    per_chunk = s.chunk_max_tokens - s.chunk_overlap_tokens  # new tokens per chunk
    mean = sum(count_tokens(x) for x in sentences) / len(sentences)
    per_note = max(1, round(note_chunks * per_chunk / mean))
    n_notes = -(-chunks // note_chunks)
    rng = random.Random(seed)
    shape = docs[0].metadata_dict()
    folder.mkdir(parents=True)
    total = 0
    for i in range(n_notes):
        title = f"Synthetic note {i}: " + " ".join(rng.choice(sentences).split()[:6])
        meta = {"id": f"synthetic-{i:06d}", "title": title, "year": 1990 + i % 35,
                "source_type": shape["source_type"], "authors": shape["authors"],
                "topics": shape["topics"], "summary": rng.choice(sentences),
                "verified": []}  # fmt: skip
        lines = [f"# {title}", ""]
        for k in range(per_note):
            if k % 12 == 0:
                lines += ["", f"## Section {k // 12 + 1}", ""]
            lines.append(rng.choice(sentences))
        front = "".join(f"{key}: {json.dumps(value)}\n" for key, value in meta.items())
        text = f"---\n{front}---\n\n" + "\n".join(lines) + "\n"
        (folder / f"synthetic-{i:06d}.md").write_text(text, encoding="utf-8")
        total += len(text.encode())
    return {"notes": n_notes, "corpus_mb": round(total / 2**20, 1)}


def vm_hwm_mb() -> float:
    """Peak resident memory of this process (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build_child(corpus: Path, index: Path) -> None:
    """The child: one full build; prints its figures as JSON."""
    from assistant.lifecycle import IndexLifecycle
    from assistant.settings import Settings

    s = Settings(corpus_dir=corpus, index_dir=index)
    before = rss_mb()
    t0 = time.perf_counter()
    report = IndexLifecycle(s, embedder=HashEmbedder()).build(force=True)
    seconds = time.perf_counter() - t0
    print(json.dumps({"chunks": report.chunks, "documents": report.documents,
                      "build_s": round(seconds, 1), "rss_before_mb": round(before),
                      "peak_rss_mb": round(vm_hwm_mb()),
                      "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                            / 1024)}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000, help="about how many chunks")
    parser.add_argument("--note-chunks", type=int, default=30, help="about how many per note")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        build_child(*args.child)
        return
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        corpus, index = Path(tmp) / "corpus", Path(tmp) / "index"
        row: dict[str, object] = write_corpus(corpus, args.chunks, args.note_chunks)
        out = subprocess.run([sys.executable, __file__, "--child", str(corpus), str(index)],
                             env=env, check=True, capture_output=True, text=True)  # fmt: skip
        row |= json.loads(out.stdout.strip().splitlines()[-1])
        row["disk_mb"] = round(
            sum(p.stat().st_size for p in index.rglob("*") if p.is_file()) / 2**20, 1
        )
    row["vectors"] = f"synthetic (hash of the text, dimension {DIMENSION})"
    if args.json:
        print(json.dumps(row))
        return
    print(f"# {machine()}")
    print(f"# vectors: {row['vectors']}, not a model's")
    for key, value in row.items():
        if key != "vectors":
            print(f"{key:>14}: {value}")


if __name__ == "__main__":
    main()
