"""BM25 built as a stream: the index bm25s would build over the same token lists, without
holding them.

`add` tokenises a batch of texts and spills each text's term counts to two files; `finish`
computes the scores with bm25s's formulas (Lucene idf and term weight, k1 1.5, b 0.75) and
writes bm25s's files (CSC matrix of documents x terms, vocabulary, parameters), one range of
terms at a time, so memory stays bounded by the ranges, not by the corpus. The result is the
same, byte for byte, as `bm25s.BM25().index((token_ids, vocab))` then `save` (tested).
"""

from __future__ import annotations

import json
import math
import shutil
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .lexical import tokenize

EMPTY = "\u2205"  # the token an empty text gets: bm25s needs one per document
RANGE_ENTRIES = 1 << 23  # matrix entries written per pass (two 32 MB buffers)
BLOCK_ENTRIES = 1 << 22  # spilled term counts read at a time


class BM25Builder:
    """Collects term counts batch by batch (spill files in `folder`), then writes the index."""

    def __init__(self, folder: Path, stemmer: str | None) -> None:
        import bm25s  # imported when a build starts, as the index module does

        self.folder = folder
        self.stemmer = stemmer
        self.vocab: dict[str, int] = {}
        self.df = array("q")  # documents per term id
        self.doc_lens = array("q")  # tokens per document
        self.entries = array("q")  # distinct terms per document
        folder.mkdir(parents=True, exist_ok=True)
        self._voc = (folder / "terms.bin").open("wb")  # term ids, document after document
        self._tf = (folder / "counts.bin").open("wb")  # their counts in the document
        self.params = bm25s.BM25()  # the defaults an index built by bm25s gets

    def add(self, texts: Iterable[str]) -> None:
        """Count the terms of the next texts (one document each)."""
        vocab, df = self.vocab, self.df
        terms: list[int] = []
        counts: list[int] = []
        for text in texts:
            ids = [
                vocab.setdefault(t, len(vocab)) for t in (tokenize(text, self.stemmer) or [EMPTY])
            ]
            if len(vocab) > len(df):
                df.extend([0] * (len(vocab) - len(df)))
            tf = Counter(ids)
            for term in tf:
                df[term] += 1
            terms.extend(tf)
            counts.extend(tf.values())
            self.doc_lens.append(len(ids))
            self.entries.append(len(tf))
        self._voc.write(np.asarray(terms, dtype=np.int32).tobytes())
        self._tf.write(np.asarray(counts, dtype=np.float32).tobytes())

    @property
    def doc_freq(self) -> dict[str, int]:
        """Documents per term (without the empty-text token), in vocabulary order."""
        return {t: self.df[i] for t, i in self.vocab.items() if t != EMPTY}

    def close(self) -> None:
        """Close the spill files (the counts are all added)."""
        self._voc.close()
        self._tf.close()

    def finish(self, out: Path, scope: tuple[Mapping[str, int], int] | None = None) -> bool:
        """Write the bm25s index into `out`; False (and nothing written) for no documents.

        `scope` (documents per term, number of documents) scores the terms with their idf over
        a larger collection these documents are part of (an incremental delta: all live chunks);
        a term it lacks keeps its own count. Without it, the idf is these documents' own."""
        self.close()
        n_docs = len(self.doc_lens)
        if not n_docs:
            return False
        from bm25s.utils import json_functions

        p = self.params
        df = np.frombuffer(self.df, dtype=np.int64)
        counts, sizes = df.tolist(), [n_docs] * len(df)  # per term: its documents, of how many
        if scope is not None:
            scope_df, scope_docs = scope
            for t, i in self.vocab.items():
                if t != EMPTY:  # the empty text's token keeps its own (it is never searched)
                    counts[i], sizes[i] = scope_df.get(t, counts[i]), scope_docs
        idf = np.zeros(len(df), dtype=p.dtype)
        for term, (n, size) in enumerate(zip(counts, sizes, strict=True)):  # bm25s's Lucene idf
            idf[term] = math.log(1 + (size - n + 0.5) / (n + 0.5))
        lens = np.frombuffer(self.doc_lens, dtype=np.int64)
        indptr = np.zeros(len(df) + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        out.mkdir(parents=True, exist_ok=True)
        _Scores(self, idf, lens, lens.mean(), indptr).write(out)
        np.save(out / "indptr.csc.index.npy", indptr)
        vocab = dict(self.vocab)
        vocab[""] = len(vocab)  # bm25s adds the empty token last
        with (out / "vocab.index.json").open("wt", encoding="utf-8") as fh:
            fh.write(json_functions.dumps(vocab, ensure_ascii=False))  # as bm25s writes it
        params = {"k1": p.k1, "b": p.b, "delta": p.delta, "method": p.method,
                  "idf_method": p.idf_method, "dtype": p.dtype, "int_dtype": p.int_dtype,
                  "num_docs": n_docs, "version": _bm25s_version(), "backend": p.backend}  # fmt: skip
        (out / "params.index.json").write_text(json.dumps(params, indent=4), encoding="utf-8")
        return True

    def cleanup(self) -> None:
        """Remove the spill files and their folder."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _bm25s_version() -> str:
    import bm25s

    return str(bm25s.__version__)


class _Scores:
    """The CSC score matrix, written a range of terms at a time from the spilled counts."""

    def __init__(self, built: BM25Builder, idf: np.ndarray, lens: np.ndarray,
                 avg_len: np.floating, indptr: np.ndarray) -> None:  # fmt: skip
        self.built, self.idf, self.lens, self.avg_len, self.indptr = (
            built,
            idf,
            lens,
            avg_len,
            indptr,
        )
        self.k1, self.b = built.params.k1, built.params.b
        # the dtype bm25s's `tf / (float64 scalar + tf)` takes under this NumPy's casting rules
        self.tf_dtype = (np.float64(1.0) + np.ones(1, dtype=np.float32)).dtype
        starts = np.zeros(len(built.entries) + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(built.entries, dtype=np.int64), out=starts[1:])
        self.starts = starts  # document d's counts are entries starts[d]:starts[d + 1]

    def write(self, out: Path) -> None:
        nnz = int(self.indptr[-1])
        data_path, rows_path = out / "data.csc.index.npy", out / "indices.csc.index.npy"
        with data_path.open("wb") as data_fh, rows_path.open("wb") as rows_fh:
            data_at = _npy_header(data_fh, np.float32, nnz)
            rows_at = _npy_header(rows_fh, np.int32, nnz)
            n_terms, c0 = len(self.indptr) - 1, 0
            while c0 < n_terms:  # terms c0..c1-1: about RANGE_ENTRIES entries, at least a term
                end = int(self.indptr[c0]) + RANGE_ENTRIES
                c1 = int(np.searchsorted(self.indptr, end, side="right")) - 1
                c1 = min(n_terms, max(c0 + 1, c1))
                data, rows = self._range(c0, c1)
                data_fh.seek(data_at + int(self.indptr[c0]) * 4)
                data_fh.write(data.tobytes())
                rows_fh.seek(rows_at + int(self.indptr[c0]) * 4)
                rows_fh.write(rows.tobytes())
                c0 = c1

    def _blocks(self) -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(term ids, counts, document rows) of the spilled entries, whole documents at a time."""
        folder = self.built.folder
        entries = np.frombuffer(self.built.entries, dtype=np.int64)
        with (
            (folder / "terms.bin").open("rb") as voc_fh,
            (folder / "counts.bin").open("rb") as tf_fh,
        ):
            d0 = 0
            while d0 < len(entries):
                end = self.starts[d0] + BLOCK_ENTRIES
                d1 = int(np.searchsorted(self.starts, end, side="right")) - 1
                d1 = min(len(entries), max(d0 + 1, d1))
                count = int(self.starts[d1] - self.starts[d0])
                terms = np.fromfile(voc_fh, dtype=np.int32, count=count)
                tf = np.fromfile(tf_fh, dtype=np.float32, count=count)
                rows = np.repeat(np.arange(d0, d1, dtype=np.int32), entries[d0:d1])
                yield terms, tf, rows
                d0 = d1

    def _range(self, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and document rows of terms c0..c1-1, column after column, rows ascending."""
        lo = int(self.indptr[c0])
        data = np.empty(int(self.indptr[c1]) - lo, dtype=np.float32)
        rows_out = np.empty(len(data), dtype=np.int32)
        heads = self.indptr[c0:c1] - lo  # next free place of each term's column
        k1, b = self.k1, self.b
        for terms, tf, rows in self._blocks():
            keep = (terms >= c0) & (terms < c1)
            if not keep.any():
                continue
            t, f, r = terms[keep], tf[keep], rows[keep]
            norm = k1 * ((1 - b) + b * self.lens[r] / self.avg_len)
            scores = self.idf[t] * (f / (norm.astype(self.tf_dtype) + f))
            col = t - c0
            order = np.argsort(col, kind="stable")
            col = col[order]
            rank = np.arange(len(col)) - np.searchsorted(col, col, side="left")
            at = heads[col] + rank
            data[at] = scores[order]
            rows_out[at] = r[order]
            heads += np.bincount(col, minlength=c1 - c0)
        return data, rows_out


def _npy_header(fh: BinaryIO, dtype: type, n: int) -> int:
    """Write a 1-D `.npy` header for `n` items of `dtype`; its length (where the data starts)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": (n,)}  # fmt: skip
    np.lib.format.write_array_header_1_0(fh, header)
    return fh.tell()
