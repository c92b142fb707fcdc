"""How the index behaves at N chunks: build time, memory, disk, cold start, latency and recall.

Embedding a million chunks on two cores takes many hours, so the index this builds is
SYNTHESISED (the output says so):
- vectors: real vectors (the project index's chunk and sentence vectors, and the first
  --scifact-docs SciFact abstracts embedded by the default model) serve as centres; each
  synthetic vector is a centre plus a quarter of another centre plus Gaussian noise, normalised,
  so neighbourhoods look like real ones;
- texts: real sentences of the bundled corpus and of SciFact recombined (5 per chunk, 30 chunks
  per source), so BM25 term statistics look like real ones. Source notes are not stored (empty
  bodies): a real index also keeps each source's full text in chunks.db.
The build is the one `assistant index` runs (`StreamBuild`: batches of --batch-chunks, staged,
BM25 and the dense index built from the written files), with the synthetic vectors in place of
the model and without answer-sentence vectors; `build_s` leaves out synthesising the vectors
(`synthesis_s`), `build_rss_mb` is the process's peak resident memory when the build is saved.
--interrupt-after N stops the build after N batches and runs it again, which resumes from the
staged batches (`resumed_chunks`).
Queries are the gold questions, encoded by the default model (not timed: everything after the
question is encoded is). Recall@10 compares the approximate dense search with exact search on
the same vectors. Cold start is a new process's wall time from its start to the first hybrid
search result, beside a process that only loads the model and encodes one question.
With --add N it then adds N chunks of new sources to the built index as an incremental delta
(assistant/incremental.py; the vectors synthesised the same way, their embedding timed apart
with the real model) and compares hybrid, dense and BM25 top-10 with a full rebuild of the same
chunks, for the gold questions and for questions made of the added chunks' first sentences;
the serving figures are then those of the index with its delta (--add-only skips them).
Usage: .venv/bin/python bench/scale.py --chunks 100000 [--index-type auto] [--add 100]
       [--batch-chunks 1024] [--interrupt-after N] [--json]
Needs the project index (assistant index) and /work/shared/bench/scifact (--scifact DIR).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, machine, percentile

sys.path.insert(0, str(ROOT))

from assistant.settings import Settings  # noqa: E402

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
MODEL_ONLY = """
import time; t0 = time.perf_counter()
from assistant.settings import Settings
from assistant.embed import load_embedder
s = Settings()
e = load_embedder(s.embedding_model, s.device, s.batch_size, query_threads=s.query_threads,
                  index_threads=s.index_threads, backend=s.embedding_backend, cache_dir=s.onnx_cache_dir)
e.embed_query("How is octreotide used for liver metastases?")
"""


def load_embedder() -> Any:
    from assistant.embed import load_embedder as load

    s = Settings()
    return load(s.embedding_model, s.device, s.batch_size, query_threads=s.query_threads,
                index_threads=s.index_threads, backend=s.embedding_backend,
                cache_dir=s.onnx_cache_dir)  # fmt: skip


def material(workdir: Path, scifact: Path, n_docs: int) -> dict[str, Any]:
    """Real centres, sentences, questions and the model identity (cached in `workdir`)."""
    cache = workdir / f"material-{n_docs}.npz"
    texts_file = workdir / f"material-{n_docs}.json"
    if cache.exists() and texts_file.exists():
        arrays = np.load(cache)
        return {**json.loads(texts_file.read_text()), "centres": arrays["centres"],
                "queries": arrays["queries"]}  # fmt: skip
    from _common import gold_questions

    from assistant.index import load_index
    from assistant.sentences import answer_units

    project = load_index(ROOT / "index")
    embedder = load_embedder()
    rows = [json.loads(line) for line in (scifact / "corpus.jsonl").open()][:n_docs]
    abstracts = [f"{r.get('title', '')}. {r.get('text', '')}" for r in rows]
    print(f"embedding {len(abstracts)} SciFact abstracts once (cached in {workdir}) ...",
          file=sys.stderr)  # fmt: skip
    centres = [np.asarray(project.vectors), np.asarray(project.unit_vectors)]
    centres.append(embedder.embed_documents(abstracts))
    sentences = [u.text for c in project.chunks for u in answer_units(c.text)]
    sentences += [s for a in rows for s in SENTENCE_END.split(a.get("text", "")) if len(s) > 20]
    questions = sorted(set(gold_questions(1000)))
    queries = np.stack([embedder.embed_query(q) for q in questions])
    out = {"sentences": sentences, "questions": questions, "model": project.manifest["model"]}
    workdir.mkdir(parents=True, exist_ok=True)
    texts_file.write_text(json.dumps(out))
    np.savez(cache, centres=np.concatenate(centres).astype(np.float32), queries=queries)
    return {**out, "centres": np.concatenate(centres).astype(np.float32), "queries": queries}


def exact_top10(vectors: Any, queries: np.ndarray, block: int = 10_000) -> list[set[int]]:
    """Rows of the exact 10 nearest vectors of each query, scanning the vectors by blocks."""
    best = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    rows = np.full((len(queries), 10), -1, dtype=np.int64)
    for start in range(0, len(vectors), block):
        part = np.asarray(vectors[start : start + block], dtype=np.float32)
        scores = np.concatenate([best, queries @ part.T], axis=1)
        ids = np.concatenate([rows, np.broadcast_to(np.arange(start, start + len(part)),
                                                    (len(queries), len(part)))], axis=1)  # fmt: skip
        top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        best, rows = np.take_along_axis(scores, top, 1), np.take_along_axis(ids, top, 1)
    return [{int(r) for r in row} for row in rows]


class Synthetic:
    """`n` chunks of recombined real sentences in sources of 30, made anew at each `chunks()`
    call (each source's sentences drawn from its own seed), and `embedder`, which gives each
    chunk its synthetic vector: centre + a quarter of another centre + noise, normalised (each
    batch's from its own seed), so the build streams them like a real corpus."""

    def __init__(self, n: int, mat: dict[str, Any], seed: int = 0, prefix: str = "syn") -> None:
        from assistant.types import Document

        self.n, self.mat, self.seed, self.prefix = n, mat, seed, prefix
        self.sentences = mat["sentences"]
        self.docs = []
        for j in range((n + 29) // 30):
            doc_id = f"{prefix}-{j:07d}"
            title = self.sentences[self._picks(j)[0, 0]][:80]
            self.docs.append(Document(id=doc_id, title=title, year=int(1985 + j % 40),
                                      source_type="article", body="",
                                      path=Path(f"/synthetic/{doc_id}.md"), body_offset=0,
                                      fingerprint=doc_id))  # fmt: skip
        self.pending: dict[str, list[int]] = {}  # text -> rows given out, not yet embedded
        self.embedder = SyntheticEmbedder(self)

    def _picks(self, j: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, j])
        return rng.integers(0, len(self.sentences), (min(30, self.n - j * 30), 5))

    def chunks(self, register: bool = True) -> Iterator[Any]:
        from assistant.chunk import embedding_text
        from assistant.types import Chunk

        for j, doc in enumerate(self.docs):
            for k, pick in enumerate(self._picks(j)):
                text = " ".join(self.sentences[i] for i in pick)
                chunk = Chunk(id=f"{doc.id}#{k}", doc_id=doc.id, n=k, text=text,
                              section="Results", start=0, end=len(text))  # fmt: skip
                if register:
                    self.pending.setdefault(embedding_text(chunk, doc.title), []).append(j * 30 + k)
                yield chunk


class SyntheticEmbedder:
    """Synthetic 'embedding' of the chunks `Synthetic.chunks` gave out (known by their text);
    it carries the identity of the real model, whose questions the serving process encodes.
    `fail_after` calls, it raises (an interrupted build)."""

    backend_version = 0

    def __init__(self, synthetic: Synthetic) -> None:
        model = synthetic.mat["model"]
        self.synthetic = synthetic
        self.name, self.dimension = model["name"], int(model["dimension"])
        self.fingerprint, self.backend = model["fingerprint"], model.get("backend", "torch")
        self.backend_version = int(model.get("backend_version", 0))
        self.fail_after: int | None = None
        self.calls = 0
        self.seconds = 0.0

    def embed_documents(self, texts: Any, progress: Any = None) -> np.ndarray:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt(f"interrupted after {self.calls} batches")
        t0 = time.perf_counter()
        self.calls += 1
        rows = np.array([self.synthetic.pending[t].pop(0) for t in texts], dtype=np.int64)
        for t in texts:
            if not self.synthetic.pending.get(t, True):
                del self.synthetic.pending[t]
        centres, d = self.synthetic.mat["centres"], self.dimension
        first = int(rows.min()) if len(rows) else 0  # where this batch starts: its own seed
        rng = np.random.default_rng([self.synthetic.seed, 1, first])
        m = len(texts)
        v = (
            centres[rng.integers(0, len(centres), m)]
            + 0.25 * centres[rng.integers(0, len(centres), m)]
        )
        v += rng.normal(scale=0.5 / np.sqrt(d), size=(m, d)).astype(np.float32)
        out = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
        self.seconds += time.perf_counter() - t0
        return out

    def embed_query(self, text: str) -> np.ndarray:
        raise NotImplementedError("the benchmark encodes questions with the real model")


def build(args: argparse.Namespace, mat: dict[str, Any], index_dir: Path) -> dict[str, Any]:
    """Build the index as `assistant index` does (streamed, `StreamBuild`) from synthetic chunks
    and vectors, optionally interrupted and resumed; its timings, memory and recall."""
    from assistant import dense as dense_index
    from assistant.index import load_index
    from assistant.stream_build import StreamBuild

    overrides: dict[str, Any] = {"dense_index": args.index_type}
    if args.nprobe:
        overrides["ivf_nprobe"] = args.nprobe
    if args.ef_search:
        overrides["hnsw_ef_search"] = args.ef_search
    if args.refine >= 0:
        overrides["dense_refine"] = args.refine
    if args.batch_chunks:
        overrides["build_batch_chunks"] = args.batch_chunks
    s = Settings(**overrides)
    syn = Synthetic(args.chunks, mat)

    def stream() -> StreamBuild:
        return StreamBuild(index_dir, syn.docs, syn.chunks, syn.embedder,  # type: ignore[arg-type]
                           chunker=s.chunker_config(), bm25_stemmer=s.bm25_stemmer,
                           corpus_files={}, corpus_fingerprint=f"synthetic-{args.chunks}",
                           unit_vectors=False, dense=s.dense_config(),
                           batch_chunks=s.build_batch_chunks,
                           n_chunks=args.chunks)  # fmt: skip

    out: dict[str, Any] = {"batch_chunks": s.build_batch_chunks}
    if args.interrupt_after:
        syn.embedder.fail_after = args.interrupt_after
        t0 = time.perf_counter()
        try:
            stream().run()
            raise SystemExit("--interrupt-after: the build finished before the interruption")
        except KeyboardInterrupt:
            out["interrupted_s"] = round(time.perf_counter() - t0, 1)
        syn.embedder.fail_after = None
        syn.pending.clear()
    embedded_before = syn.embedder.seconds
    t0 = time.perf_counter()
    built = stream()
    result = built.run()
    built.save(result.index)
    total_s = time.perf_counter() - t0
    synth_s = syn.embedder.seconds - embedded_before
    build_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.interrupt_after:
        out["resumed_chunks"] = result.resumed
        out["embedded_chunks"] = result.embedded
    del result, built
    snap = index_dir / "current"
    disk = sum(p.stat().st_size for p in snap.resolve().rglob("*") if p.is_file())
    index = load_index(index_dir)
    info = index.dense_info
    queries = mat["queries"]
    exact = exact_top10(index.vectors, queries)
    recalls = []
    for q, want in zip(queries, exact, strict=True):
        got = {r for r, _ in dense_index.search(index.dense, index.vectors, info, q, 10)}
        recalls.append(len(got & set(want)) / 10)
    out |= {"synthesis_s": round(synth_s, 1), "build_s": round(total_s - synth_s, 1),
            "build_rss_mb": round(build_rss),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "disk_mb": round(disk / 1e6, 1), "recall_at_10": round(float(np.mean(recalls)), 4),
            "index_type": info["type"], "dense": info}  # fmt: skip
    return out


def measure_add(
    args: argparse.Namespace,
    mat: dict[str, Any],
    index_dir: Path,
) -> dict[str, Any]:
    """Add `args.add` chunks of new sources as a delta; agreement of top-10 with a rebuild."""
    from assistant.chunk import embedding_text
    from assistant.incremental import add_delta
    from assistant.index import load_index, load_snapshot
    from assistant.lexical import tokenize
    from assistant.retrieve import RetrievalParams, retrieve
    from assistant.staging import StagedBatch
    from assistant.stream_build import write_index

    base = Synthetic(args.chunks, mat)  # the built chunks again, their vectors from the index
    docs, chunks = base.docs, list(base.chunks(register=False))
    built = load_index(index_dir)
    vectors = np.array(built.vectors, dtype=np.float32)  # a copy: the view dies with the index
    del built
    new = Synthetic(args.add, mat, seed=1, prefix="add")
    new_chunks = list(new.chunks())
    bodies: dict[str, list[str]] = {}
    for c in new_chunks:
        bodies.setdefault(c.doc_id, []).append(c.text)
    # an added source must hold its body (the delta's notes table); its chunks' texts stand in
    new_docs = [dataclasses.replace(d, body="\n\n".join(bodies.get(d.id, []))) for d in new.docs]
    titles = {d.id: d.title for d in new_docs}
    texts = [embedding_text(c, titles[c.doc_id]) for c in new_chunks]
    new_vectors = new.embedder.embed_documents(texts)
    embedder = load_embedder()
    t0 = time.perf_counter()
    embedder.embed_documents(texts)
    embed_s = time.perf_counter() - t0
    s = Settings(dense_index=args.index_type)
    all_docs = docs + new_docs
    changes = {"added": [d.id for d in new_docs], "changed": [], "removed": []}
    t0 = time.perf_counter()
    previous = load_index(index_dir)
    index = add_delta(previous, index_dir, all_docs, changes, new_chunks, new_vectors,
                      bm25_stemmer=s.bm25_stemmer, corpus_files={},
                      corpus_fingerprint=f"synthetic-{args.chunks}+{args.add}")  # fmt: skip
    add_s = time.perf_counter() - t0
    out: dict[str, Any] = {"add_s": round(add_s, 2), "add_chunks": args.add,
                           "add_embed_s": round(embed_s, 2)}  # fmt: skip
    if args.no_agreement:
        return out
    del previous
    t0 = time.perf_counter()
    rebuild = index_dir.parent / f"{index_dir.name}-rebuild"  # the whole index from its vectors
    shutil.rmtree(rebuild, ignore_errors=True)
    n_all = len(chunks) + len(new_chunks)
    no_units = StagedBatch(np.concatenate([vectors, new_vectors]),
                           np.zeros((0, vectors.shape[1]), np.float32), np.zeros(n_all, np.int64))  # fmt: skip
    write_index(rebuild, all_docs, chunks + new_chunks, no_units, model=mat["model"],
                chunker=s.chunker_config(), bm25_stemmer=s.bm25_stemmer,
                dense=s.dense_config(), corpus_fingerprint="rebuild")  # fmt: skip
    full = load_snapshot(rebuild, rebuild)
    out["rebuild_s"] = round(time.perf_counter() - t0, 1)
    questions = [(q, v) for q, v in zip(mat["questions"], mat["queries"], strict=True)]
    for c, v in list(zip(new_chunks, new_vectors, strict=True))[:50]:
        questions.append((SENTENCE_END.split(c.text)[0], v))
    n_gold = len(mat["questions"])
    params = RetrievalParams.from_settings(s)
    for mode in ("hybrid", "dense", "bm25"):
        agree = []
        for text, vec in questions:
            args_ = {"mode": mode, "query_vector": np.asarray(vec, dtype=np.float32),
                     "query_tokens": tokenize(text, s.bm25_stemmer), "n": 10, "params": params}  # fmt: skip
            got = {index.chunks[r].id for r, _ in retrieve(index, **args_)}
            want = {full.chunks[r].id for r, _ in retrieve(full, **args_)}
            agree.append(len(got & want) / max(1, len(want)))
        key = "add_top10_agreement" + ("" if mode == "hybrid" else f"_{mode}")
        out[key] = round(float(np.mean(agree)), 4)
        out[key + "_gold"] = round(float(np.mean(agree[:n_gold])), 4)
        out[key + "_new"] = round(float(np.mean(agree[n_gold:])), 4)
    del full
    shutil.rmtree(rebuild, ignore_errors=True)
    return out


def serve(index_dir: Path, workdir: Path, queries_file: Path) -> None:
    """The serving process: open the index, answer one search, then time many; print JSON."""
    started = time.perf_counter()
    from assistant import Assistant
    from assistant.lexical import tokenize
    from assistant.retrieve import bm25_search, dense_search

    empty = workdir / "empty-corpus"
    empty.mkdir(exist_ok=True)
    s = Settings(index_dir=index_dir, corpus_dir=empty, auto_rebuild=False)
    assistant = Assistant(s)
    data = json.loads(queries_file.read_text())
    questions, vecs = data["questions"], np.array(data["queries"], dtype=np.float32)
    t0 = time.perf_counter()
    assistant.load(rebuild=False)
    first = assistant.search(questions[0], mode="hybrid")
    first_s = time.perf_counter() - started
    open_s = time.perf_counter() - t0
    assert first, "no passage found"
    print("FIRST", flush=True)
    index = assistant.index
    dense_ms, bm25_ms, hybrid_ms = [], [], []
    for question, vec in zip(questions * 2, np.concatenate([vecs, vecs]), strict=True):
        tokens = tokenize(question, s.bm25_stemmer)
        t = time.perf_counter()
        dense_search(index, vec, s.candidates)
        dense_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        bm25_search(index, tokens, s.candidates)
        bm25_ms.append((time.perf_counter() - t) * 1000)
        timings: dict[str, float] = {}
        assistant.search(question, mode="hybrid", timings=timings)
        hybrid_ms.append(timings["retrieve"] + timings["rerank"])
    by_file: dict[str, int] = {}  # resident kB per mapped file (/proc/self/smaps)
    name = "[anon]"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and not parts[0].endswith(":"):
            name = Path(parts[5]).name if len(parts) > 5 else "[anon]"
        elif parts and parts[0] == "Rss:":
            by_file[name] = by_file.get(name, 0) + int(parts[1])
    top = sorted(by_file.items(), key=lambda kv: -kv[1])[:6]
    status = Path("/proc/self/status").read_text()
    rss = {k: int(line.split()[1]) / 1024 for line in status.splitlines()
           for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile") if line.startswith(k + ":")}  # fmt: skip
    print(json.dumps({"first_answer_s": round(first_s, 3), "open_s": round(open_s, 3),
                      "dense_p50_ms": round(percentile(dense_ms, 50), 2),
                      "dense_p95_ms": round(percentile(dense_ms, 95), 2),
                      "bm25_p50_ms": round(percentile(bm25_ms, 50), 2),
                      "bm25_p95_ms": round(percentile(bm25_ms, 95), 2),
                      "hybrid_p50_ms": round(percentile(hybrid_ms, 50), 2),
                      "hybrid_p95_ms": round(percentile(hybrid_ms, 95), 2),
                      "serve_rss_mb": round(rss["VmRSS"]), "serve_peak_rss_mb": round(rss["VmHWM"]),
            # of the resident memory, pages of memory-mapped index files (reclaimable page cache)
            "serve_rss_anon_mb": round(rss["RssAnon"]),
            "serve_rss_file_mb": round(rss["RssFile"]),
            "serve_rss_by_file_mb": {k: round(v / 1024) for k, v in top}}))  # fmt: skip


def measure_serving(index_dir: Path, workdir: Path, mat: dict[str, Any]) -> dict[str, Any]:
    """Cold start (new process, cold model cache not forced) and latencies, beside model-only."""
    queries_file = workdir / "queries.json"
    queries_file.write_text(json.dumps({"questions": mat["questions"],
                                        "queries": mat["queries"].tolist()}))  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", MODEL_ONLY], check=True, env=env)
    model_only_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(index_dir), "--workdir",
                              str(workdir), "--queries-file", str(queries_file)],
                             env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stdout is not None
    first = child.stdout.readline()  # printed as soon as the first search has answered
    cold_start_s = time.perf_counter() - t0
    rest = child.stdout.read()
    if child.wait() != 0 or not first.startswith("FIRST"):
        raise SystemExit(f"the serving process failed: {first}{rest}")
    result = json.loads(rest.strip().splitlines()[-1])
    result["cold_start_s"] = round(cold_start_s, 3)  # process start to first answer
    result["model_only_s"] = round(model_only_s, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--index-type", default="auto",
                        choices=["auto", "flat", "hnsw", "ivf-sq8", "ivf-pq"])  # fmt: skip
    parser.add_argument("--nprobe", type=int, default=0, help="IVF nprobe (default: setting)")
    parser.add_argument("--ef-search", type=int, default=0, help="HNSW efSearch (default: setting)")
    parser.add_argument("--refine", type=int, default=-1, help="dense_refine (default: setting)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/net-liver-scale"))
    parser.add_argument("--scifact", type=Path, default=ROOT.parent / "shared/bench/scifact")
    parser.add_argument("--scifact-docs", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the built index")
    parser.add_argument("--add", type=int, default=0,
                        help="then add N chunks of new sources incrementally (add_s)")  # fmt: skip
    parser.add_argument("--add-only", action="store_true",
                        help="with --add: skip the serving measurements")  # fmt: skip
    parser.add_argument("--no-agreement", action="store_true",
                        help="with --add: skip the full rebuild compared against")  # fmt: skip
    parser.add_argument("--batch-chunks", type=int, default=0,
                        help="build_batch_chunks (default: setting)")  # fmt: skip
    parser.add_argument("--interrupt-after", type=int, default=0, metavar="N",
                        help="interrupt the build after N batches, then resume it")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--material-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--queries-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.workdir, args.queries_file)
        return
    if not args.scifact.is_dir():
        args.scifact = Path("/work/shared/bench/scifact")
    if args.material_only:
        material(args.workdir, args.scifact, args.scifact_docs)
        return
    if not (
        args.workdir / f"material-{args.scifact_docs}.npz"
    ).exists():  # its memory is not the build's
        subprocess.run([sys.executable, __file__, "--material-only", "--workdir", str(args.workdir),
                        "--scifact", str(args.scifact), "--scifact-docs", str(args.scifact_docs)],
                       check=True)  # fmt: skip
    mat = material(args.workdir, args.scifact, args.scifact_docs)
    index_dir = args.workdir / f"index-{args.chunks}-{args.index_type}-{args.refine}"
    shutil.rmtree(index_dir, ignore_errors=True)
    out: dict[str, Any] = {"chunks": args.chunks, "synthetic": True}
    out |= build(args, mat, index_dir)
    if args.add:  # first, so that the serving figures below are those of base + delta
        out |= measure_add(args, mat, index_dir)
    if not args.add_only:
        out |= measure_serving(index_dir, args.workdir, mat)
    out["queries"] = len(mat["questions"])
    out["machine"] = machine()
    out["note"] = ("synthetic vectors (real vectors as centres + noise) and texts (real sentences "
                   "recombined); 2 shared cores, figures measured under possible load")  # fmt: skip
    if not args.keep:
        shutil.rmtree(index_dir, ignore_errors=True)
    if args.json:
        print(json.dumps(out))
        return
    print(f"{args.chunks} chunks, SYNTHESISED vectors and texts ({out['note']}); {out['machine']}")
    for key, value in out.items():
        if key not in ("note", "machine"):
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
