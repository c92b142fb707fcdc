"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    """One line describing the machine the figures come from."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return (
        statistics.quantiles(sorted(values), n=100, method="inclusive")[int(q) - 1]
        if q < 100
        else max(values)
    )


def gold_questions(limit: int = 100) -> list[str]:
    """Questions from the gold file (cycled up to `limit`), else a built-in list."""
    path = ROOT / "corpus" / "gold" / "questions.jsonl"
    questions: list[str] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                questions.append(json.loads(line)["question"])
    if not questions:
        questions = [
            "What is the survival after hepatic resection of neuroendocrine liver metastases?",
            "Which patients qualify for liver transplantation?",
            "How does octreotide LAR affect time to progression?",
        ]
    return [questions[i % len(questions)] for i in range(limit)]


BACKENDS = ("torch", "onnx", "onnx-int8")


def parse_backends(value: str) -> list[str]:
    """A comma-separated list of embedding backends (torch, onnx, onnx-int8), checked."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise SystemExit(f"unknown backend(s) {unknown}; use a comma-separated list of {BACKENDS}")
    return names


def bench_index_dir(backend: str) -> Path:
    """A separate index folder per backend, so that comparing backends never rebuilds ROOT/index."""
    import tempfile

    return Path(tempfile.gettempdir()) / "net-liver-bench" / f"index-{backend}"


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a running process in MiB (Linux /proc), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def corpus_chunks(corpus: Path, settings: Any) -> tuple[list[Any], list[Any], list[str]]:
    """The corpus's documents, its chunks and the texts a build embeds for them."""
    from assistant.chunk import chunk_documents, embedding_text
    from assistant.corpus import load_corpus

    docs, _ = load_corpus(corpus)
    chunks = chunk_documents(docs, settings.chunk_max_tokens, settings.chunk_overlap_tokens)
    titles = {d.id: d.title for d in docs}
    return docs, chunks, [embedding_text(c, titles[c.doc_id]) for c in chunks]
