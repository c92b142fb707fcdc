"""The Assistant: one object that ties the stages together; the CLI and the HTTP app call it.

It answers (search, ask, sources, context); loading and refreshing the model and the index is
`lifecycle.IndexLifecycle`, which it extends."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec

import numpy as np

from .acronyms import abbreviations_in, find_definitions, spell_out
from .answer import (
    ABSTAIN_MESSAGE,
    ComposerWeights,
    compose_answer,
    should_abstain,
    unknown_message,
    unknown_terms,
)
from .conversation import rewrite_query
from .currency import corpus_stamp, is_after_review
from .errors import InputError
from .index import SearchIndex, index_backend
from .lexical import tokenize
from .lifecycle import IndexLifecycle, StageProgress, one_snapshot
from .references import cited_ids, render
from .rerank import diversify, named_first
from .retrieve import Ranked, RetrievalParams, reciprocal_rank_fusion, retrieve
from .similarity import with_similarity
from .types import CITATION_FIELDS, MODES, Answer, Filters, Passage

__all__ = ["Assistant", "StageProgress", "one_snapshot"]

# Spell out abbreviations in questions of at most this many words: in longer ones the other words
# carry the meaning, and on the dev half spelling out every question moved answer_recall@5 from
# 0.897 to 0.872 (docs/evaluation.md, "Abbreviations").
SPELL_OUT_MAX_WORDS = 8


P = ParamSpec("P")


def _passages_only(
    method: Callable[P, tuple[list[Passage], np.ndarray]], doc: str
) -> Callable[P, list[Passage]]:
    """`method` returning its passages only (the public `search` of `_search`)."""

    @functools.wraps(method)
    def passages(*args: P.args, **kwargs: P.kwargs) -> list[Passage]:
        return method(*args, **kwargs)[0]

    passages.__doc__ = doc
    passages.__name__ = passages.__qualname__ = "search"
    return passages


class Assistant(IndexLifecycle):
    """Answers questions from the indexed literature (the model and index lifecycle is
    `IndexLifecycle`'s). Safe to share between threads."""

    # the corpus stamp and the long forms of the abbreviations questions used, per loaded index
    _stamp: tuple[SearchIndex, dict[str, Any]] | None = None
    _abbreviations: tuple[SearchIndex, dict[str, str | None]] | None = None

    @functools.cached_property
    def composer(self) -> ComposerWeights:
        """How the answer stage scores sentences (assignable: bench/tune_answer.py tries others)."""
        return ComposerWeights(max_words=self.settings.answer_max_words)

    @property
    def retrieval(self) -> RetrievalParams:
        """How searches are run and fused, from the settings."""
        return RetrievalParams.from_settings(self.settings)

    # ----------------------------------------------------------------- questions
    def validate_question(self, question: str) -> str:
        """The question stripped, or an InputError saying what is wrong with it."""
        if not isinstance(question, str) or not question.strip():
            raise InputError("the question is empty", "type a question about the literature")
        try:
            question.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                "the question is not valid UTF-8 text (it holds undecodable bytes)",
                "retype it, or set the terminal to UTF-8",
            ) from None
        if len(question) > self.settings.max_question_chars:
            raise InputError(
                f"the question is {len(question)} characters long; the limit is "
                f"{self.settings.max_question_chars}",
                "shorten it or raise ASSISTANT_MAX_QUESTION_CHARS",
            )
        return question.strip()

    def _mode(self, mode: str | None) -> str:
        mode = mode or self.settings.mode
        if mode not in MODES:
            raise InputError(f"unknown mode '{mode}'", f"use one of: {', '.join(MODES)}")
        return mode

    def _search(
        self,
        query: str,
        k: int | None = None,
        mode: str | None = None,
        filters: Filters | None = None,
        offset: int = 0,
        timings: dict[str, float] | None = None,
        follow_up: str | None = None,
        named: set[str] | None = None,
    ) -> tuple[list[Passage], np.ndarray]:
        """`search`, and the query vector (for the answer stage).

        No source fills more than `max_per_source` of the ranks unless the query names it; its
        further passages move down, after the others. `follow_up` is the clinician's own words
        when `query` was rewritten from a follow-up (see `_focus`); `named`, the sources the
        query names, when the caller has them already.
        """
        query = self.validate_question(query)
        mode = self._mode(mode)
        k = k or self.settings.top_k
        if k < 1 or offset < 0:
            raise InputError("k must be at least 1 and offset at least 0")
        s = self.settings
        index = self.index
        encoder = self.query_encoder
        t0 = time.perf_counter()
        spelled = self._spell_out(index, query)  # the query itself when the setting is off
        qvec = encoder.embed_query(spelled)
        t1 = time.perf_counter()
        tokens = tokenize(spelled if s.spell_out_abbreviations == "both" else query, s.bm25_stemmer)
        ranked = retrieve(
            index,
            mode=mode,
            query_vector=qvec,
            query_tokens=tokens,
            n=max(offset + k, s.candidates) if s.max_per_source else offset + k,
            params=self.retrieval,
            filters=filters,
            store=self.store,
        )
        if follow_up and follow_up != query and s.follow_up_focus:
            ranked = self._focus(index, ranked, follow_up, mode, filters)
        if named is None:
            named = self.named_sources(query)  # a follow-up's query carries earlier names
        if named:
            ranked = named_first(index, ranked, named, qvec, s.rrf_k, filters)
        if s.max_per_source:
            ranked = diversify(ranked, index.doc_of_row, s.max_per_source, named,
                               s.diversity_keep_above)  # fmt: skip
        ranked = ranked[offset : offset + k]
        t2 = time.perf_counter()
        passages = with_similarity(index, ranked, qvec, offset=offset)
        for p in passages:
            p.source["label"] = index.labels.get(p.chunk.doc_id)
            p.cites = cited_ids(p.chunk.text, index.labels)
            if p.cites:
                p.display_text = render(p.chunk.text, index.labels)
        t3 = time.perf_counter()
        if timings is not None:
            timings.update(
                embed=(t1 - t0) * 1000, retrieve=(t2 - t1) * 1000, rerank=(t3 - t2) * 1000
            )
        return passages, qvec

    search = one_snapshot(
        _passages_only(_search, "Passages `offset+1 .. offset+k` for a search query (no answer, "
                       "no abstention); the arguments are `_search`'s.")
    )  # fmt: skip

    @one_snapshot
    def ask(
        self,
        question: str,
        k: int | None = None,
        mode: str | None = None,
        history: Sequence[Mapping[str, str]] | None = None,
        filters: Filters | None = None,
        offset: int = 0,
    ) -> Answer:
        """Answer a question (a follow-up is resolved against `history`) from the literature."""
        started = time.perf_counter()
        question = self.validate_question(question)
        mode = self._mode(mode)
        query = rewrite_query(
            question, history, max_turns=self.settings.history_turns, known=self._known_word
        )
        timings: dict[str, float] = {}
        named = self.named_sources(query)
        passages, qvec = self._search(query, k=k, mode=mode, filters=filters, offset=offset,
                                      timings=timings, follow_up=question, named=named)  # fmt: skip
        t0 = time.perf_counter()
        abstained = should_abstain(passages, self.settings.abstain_threshold, named)
        message = ABSTAIN_MESSAGE if abstained else None
        missing = self._unknown_terms(question) if not abstained else []
        if missing:
            abstained, message = True, unknown_message(missing)
        if not passages and filters is not None and not filters.is_empty():
            message = self._filtered_out(filters) or message
        text = None
        if not abstained:
            s = self.settings
            index = self.index
            text = compose_answer(
                passages,
                tokenize(query, s.bm25_stemmer),
                index.idf,
                lambda t: tokenize(t, s.bm25_stemmer),
                n_sentences=s.answer_sentences,
                question=question,
                query_vector=qvec,
                unit_vectors=index.unit_vectors_of,
                labels=index.labels,
                weights=self.composer,
                named=named,
            )
            abstained = text is None
        timings["answer"] = (time.perf_counter() - t0) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return Answer(
            question=question,
            query=query,
            answer=None if abstained else text,
            abstained=abstained,
            passages=passages,
            message=(message or ABSTAIN_MESSAGE) if abstained else None,
            mode=mode,
            timings_ms=timings,
            corpus=self.corpus_stamp(),
            references=self.references([c for p in passages for c in p.cites]),
        )

    def _filtered_out(self, filters: Filters) -> str | None:
        """The abstention message when no indexed source passes `filters`, else None."""
        sources = self.index.sources.values()
        if any(filters.allows(meta) for meta in sources):
            return None
        years = sorted(int(m["year"]) for m in sources if m.get("year"))
        span = f" The indexed sources were published {years[0]}-{years[-1]}." if years else ""
        return (
            f"No indexed source passes the filter ({filters.describe()}), so no answer is given."
            f"{span} Widen the year range or the source types, or ask without them."
        )

    def _known_word(self, word: str) -> bool:
        """Whether a word (after stemming) occurs anywhere in the indexed corpus."""
        tokens = tokenize(word, self.settings.bm25_stemmer)
        return bool(tokens) and self.index.has_term(tokens[0])

    def named_sources(self, question: str) -> set[str]:
        """The sources a question names by first author or trial (`SearchIndex.named_sources`,
        with the model's whole words as the everyday words)."""
        return self.index.named_sources(question, getattr(self.embedder, "vocabulary", None))

    def _unknown_terms(self, question: str) -> list[str]:
        """Specific words of the question the corpus never uses (see `answer.unknown_terms`)."""
        if not self.settings.abstain_on_unknown_terms:
            return []
        vocabulary = getattr(self.embedder, "vocabulary", None)
        return unknown_terms(question, self._known_word, vocabulary)

    # ----------------------------------------------------------------- sources
    def references(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Citation records (with `label`) of the sources named by id, in order, each once."""
        index = self.index
        out = []
        for doc_id in dict.fromkeys(ids):
            meta = index.sources.get(doc_id)
            if meta is None:
                continue
            record = {k: meta.get(k) for k in CITATION_FIELDS}
            record["label"] = index.labels.get(doc_id)
            record["after_review"] = is_after_review(meta.get("year"))
            out.append(record)
        return out

    def find_reference(self, text: str) -> str | None:
        """The id of the source a reader names by its label ("Le Treut 2013") or by its id."""
        index = self.index
        wanted = " ".join(text.split()).lower()
        if wanted in index.sources:
            return wanted
        for doc_id, label in index.labels.items():
            if label.lower() == wanted:
                return doc_id
        return None

    @one_snapshot
    def sources(self) -> list[dict[str, Any]]:
        """Metadata of every indexed source, with its chunk count, sorted by id."""
        index = self.index
        counts = index.manifest.get("corpus", {}).get("documents", {})
        out = []
        for doc_id in sorted(index.sources):
            meta = dict(index.sources[doc_id])
            meta["chunks"] = counts.get(doc_id, {}).get("chunks", 0)
            meta["after_review"] = is_after_review(meta.get("year"))
            out.append(meta)
        return out

    @one_snapshot
    def source(self, doc_id: str) -> dict[str, Any]:
        """One source's metadata and the full text of its note."""
        meta = self.index.sources.get(doc_id)
        if meta is None:
            raise InputError(
                f"unknown source id '{doc_id}'", "list the ids with: assistant sources"
            )
        out = dict(meta)
        out["after_review"] = is_after_review(meta.get("year"))
        note = self.index.notes.get(doc_id)  # from the snapshot, never from the disk
        out["text"] = render(note["body"], self.index.labels) if note else None
        out["label"] = self.index.labels.get(doc_id)
        if note:
            out["references"] = self.references(cited_ids(note["body"], self.index.labels))
        return out

    @one_snapshot
    def context(self, chunk_id: str, chars: int = 600) -> dict[str, Any]:
        """A passage in its place: the section around it in the source file, and the citation."""
        index = self.index
        row = index.chunk_rows.get(chunk_id)
        if row is None:
            raise InputError(f"unknown passage '{chunk_id}'")
        chunk = index.chunks[row]
        meta = index.sources[chunk.doc_id]
        note = index.notes.get(chunk.doc_id) or {"body": "", "body_offset": 0}
        body = note["body"]
        start, end = chunk.start - note["body_offset"], chunk.end - note["body_offset"]
        inside = 0 <= start <= end <= len(body)
        return {
            "chunk_id": chunk.id,
            "section": chunk.section,
            "page": chunk.page,
            "before": render(body[max(0, start - chars) : start], index.labels) if inside else "",
            "text": render((body[start:end] if inside else "") or chunk.text, index.labels),
            "after": render(body[end : end + chars], index.labels) if inside else "",
            "source": meta,
        }

    @one_snapshot
    def source_records(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Full metadata (volume, pages…) of the given sources, in order, each once."""
        sources = self.index.sources
        unknown = [i for i in ids if i not in sources]
        if unknown:
            raise InputError(
                f"unknown source id '{unknown[0]}'", "list the ids with: assistant sources"
            )
        return [dict(sources[i]) for i in dict.fromkeys(ids)]

    def _focus(
        self, index: SearchIndex, ranked: Ranked, follow_up: str, mode: str, filters: Filters | None
    ) -> Ranked:
        """A follow-up's ranking with the passages of the conversation's source moved up.

        The rewritten query (follow-up plus earlier terms) finds the study being discussed, but
        its earlier terms also pull up the passages that answered the earlier question. The
        follow-up's own words, searched alone within the first `follow_up_focus` sources of
        that ranking, find the passage on the new aspect ("What did those patients die of?");
        the two rankings are fused by reciprocal rank.
        """
        s = self.settings
        focus: list[str] = []
        for row, _ in ranked:
            doc = index.doc_of_row(row)
            if doc not in focus:
                focus.append(doc)
                if len(focus) == s.follow_up_focus:
                    break
        alone = retrieve(
            index,
            mode=mode,
            query_vector=self.query_encoder.embed_query(follow_up),
            query_tokens=tokenize(follow_up, s.bm25_stemmer),
            n=s.candidates,
            params=self.retrieval,
            filters=filters,
            store=self.store,
        )
        within = [(row, score) for row, score in alone if index.doc_of_row(row) in focus]
        return reciprocal_rank_fusion([ranked, within], [1.0, 1.0], s.rrf_k)

    def _spell_out(self, index: SearchIndex, query: str) -> str:
        """The query with the abbreviations the corpus defines followed by their long forms.

        A long form is read from the passages BM25 finds for the abbreviation (at most 50), once
        per abbreviation and loaded index.
        """
        if self.settings.spell_out_abbreviations == "off":
            return query
        words = abbreviations_in(query, max_words=SPELL_OUT_MAX_WORDS)
        if not words:
            return query
        if self._abbreviations is None or self._abbreviations[0] is not index:
            self._abbreviations = (index, {})
        known = self._abbreviations[1]
        for word in words:
            if word not in known:
                tokens = tokenize(word, self.settings.bm25_stemmer)
                rows = self.store.lexical_search(index, tokens, 50, None)
                found = find_definitions(index.chunks[row].text for row, _ in rows)
                known[word] = found.get(word)
        defined = {w: meaning for w in words if (meaning := known[w])}
        return spell_out(query, defined) if defined else query

    def corpus_stamp(self) -> dict[str, Any]:
        """The loaded corpus snapshot (fingerprint, newest source year, sources), computed once
        per loaded index."""
        index = self.index
        if self._stamp is None or self._stamp[0] is not index:
            self._stamp = (index, corpus_stamp(index.manifest, index.sources))
        return dict(self._stamp[1])

    @one_snapshot
    def status(self) -> dict[str, Any]:
        """What is loaded: corpus, index and model, for banners and /readyz."""
        manifest = self.index.manifest
        return {
            "corpus_dir": str(self.settings.corpus_dir),
            "index_dir": str(self.settings.index_dir),
            "sources": manifest["counts"]["documents"],
            "chunks": manifest["counts"]["chunks"],
            "model": manifest["model"]["name"],
            "dimension": manifest["model"]["dimension"],
            "backend": index_backend(manifest),
            "built": manifest.get("created_at"),
            "corpus": self.corpus_stamp(),
            **self.snapshot_info(self.index),
        }
