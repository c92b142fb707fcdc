"""Incremental re-index after changing one document of the bundled corpus, against a full rebuild.

Run: .venv/bin/python bench/incremental.py [--repeat N]

Works on a copy of corpus/ in a temporary folder with the real offline model (loaded once, not
timed). Prints the full-build time, the incremental time after editing one note, and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from assistant import Assistant, Settings
from assistant.embed import load_embedder
from assistant.settings import DEFAULT_MODEL, PROJECT_ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions of each build")
    parser.add_argument("--corpus", type=Path, default=PROJECT_ROOT / "corpus")
    args = parser.parse_args()

    embedder = load_embedder(DEFAULT_MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(args.corpus, corpus)
        notes = sorted(p for p in corpus.glob("*.md") if p.name != "README.md")
        target = notes[len(notes) // 2]
        settings = Settings(corpus_dir=corpus, index_dir=Path(tmp) / "index")
        assistant = Assistant(settings, embedder=embedder)
        embedder.embed_documents(["warm-up"])  # first call pays one-off costs

        full_times, inc_times = [], []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            full = assistant.build(force=True)
            full_times.append(time.perf_counter() - t0)
            target.write_text(target.read_text() + f"\nEdited for the benchmark, round {i}.\n")
            t0 = time.perf_counter()
            inc = assistant.build()
            inc_times.append(time.perf_counter() - t0)
            assert inc.changed == [target.stem], inc.changed

    f, n = statistics.median(full_times), statistics.median(inc_times)
    print(f"corpus: {full.documents} documents, {full.chunks} chunks ({args.corpus})")
    print(f"changed document: {target.stem} ({inc.embedded_chunks} chunks re-embedded, "
          f"{inc.reused_chunks} reused)")  # fmt: skip
    print(
        f"full rebuild:        median {f:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in full_times)})"
    )
    print(
        f"incremental re-index: median {n:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in inc_times)})"
    )
    print(f"speed-up: {f / n:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
