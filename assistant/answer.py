"""Compose an extractive answer: the passages' most relevant sentences, each with its [n] marker."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .lexical import STOPWORDS, TOKEN_RE
from .references import render
from .sentences import Unit, answer_units
from .types import Passage

UnitVectors = Callable[[str], "np.ndarray | None"]  # chunk id -> vectors of its answer units

ABSTAIN_MESSAGE = (
    "The indexed literature does not appear to address this question, so no answer is given. "
    "Try naming the treatment, tumour site or outcome you mean, or check the sources directly."
)


def unknown_message(terms: Sequence[str]) -> str:
    """The abstention message when the question names things the corpus never mentions."""
    quoted = ", ".join(f"'{t}'" for t in terms)
    return (
        f"The indexed literature never mentions {quoted}, so it cannot answer this question; "
        "no answer is given. Check the spelling, try another name for it, or consult other sources."
    )


COMMON_SUFFIXES = ("s", "es", "d", "ed", "r", "er", "st", "est", "ly", "ing", "ness")


def _is_common(word: str, common_words: Collection[str]) -> bool:
    """A common word, or a plain inflection of one ('kinder', 'shrinking')."""
    if word in common_words:
        return True
    return any(
        word.endswith(suffix) and word[: -len(suffix)] in common_words
        for suffix in COMMON_SUFFIXES
        if len(word) - len(suffix) >= 3
    )


def unknown_terms(
    question: str,
    in_corpus: Callable[[str], bool],
    common_words: Collection[str] | None,
    min_length: int = 4,
) -> list[str]:
    """Specific words of the question that the corpus never uses.

    A word counts when it is not a stop word, is at least `min_length` letters (no digits), does not occur
    in the corpus (`in_corpus`, on stems, with prefix matching) and is not a common word
    (`common_words`, the embedding model's whole-word vocabulary): a drug, isotope, procedure
    or disease the literature does not cover. Without a vocabulary nothing counts.
    """
    if not common_words:
        return []
    out: list[str] = []
    for word in TOKEN_RE.findall(question.lower()):
        if len(word) < min_length or word in STOPWORDS or word in out:
            continue
        if _is_common(word, common_words):
            continue
        if any(c.isdigit() for c in word) or in_corpus(word):  # years, doses, "1970s"
            continue
        out.append(word)
    return out


def should_abstain(
    passages: Sequence[Passage], threshold: float, named: Collection[str] = ()
) -> bool:
    """Abstain when no passage is at least `threshold`-similar to the question, unless one of
    them comes from a source the question names (`named`: "What did NETTER-1 show?" is short
    and far from any passage in meaning, yet plainly about a source the corpus holds)."""
    if not passages:
        return True
    if any(p.chunk.doc_id in named for p in passages):
        return False
    return max(p.similarity for p in passages) < threshold


def answer_sentences(text: str | None) -> list[str]:
    """The sentences of a composed answer, each with its [n] markers."""
    if not text:
        return []
    return [m.group(0).strip() for m in re.finditer(r".+?\[\d+\](?:\s*\[\d+\])*", text)]


def answer_sentences_text(text: str | None) -> str:
    """A composed answer without its [n] markers."""
    return re.sub(r"\s*\[\d+\]", "", text or "").strip()


FIGURE_QUESTION = re.compile(
    r"\b(how (long|many|much|often|frequent|likely|common|well|effective)|median|mean|average|rate|rates|"
    r"proportion|percentage|percent|share|fraction|number|survival|pfs|os|time to|duration|"
    r"hazard|risk|incidence|prevalence|mortality|frequency|odds|response|orr|dose|activity|"
    r"results?|outcomes?|benefit|efficacy|longer|improve|improved|"
    r"(what|which) did\b.{0,80}\b(show|find|report|demonstrate|achieve))\b",
    re.I,
)
LIST_QUESTION = re.compile(
    r"\b(criteria|criterion|contraindications?|complications?|indications?|side[- ]effects?|"
    r"adverse (events?|effects?|reactions?)|toxicit(y|ies)|risk factors?|factors|which patients|"
    r"who (can|should|may)|selection|select|prerequisites?|requirements?|eligib\w*|risks|"
    r"options|steps|features)\b",
    re.I,
)
FIGURE_RE = re.compile(
    r"(\d+(\.\d+)?\s*(%|per ?cent|months?|years?|weeks?|days?|mg|GBq|mCi|Gy|patients|fold)|"
    r"\bHR\b|hazard ratio|odds ratio|\b\d+\.\d+\b|\bP\s*[=<]|\b\d+ of \d+\b)",
    re.I,
)
FINDINGS_SECTION = re.compile(
    r"(key findings|results?|outcomes?|efficacy|safety|toxicit|survival|response|complications)",
    re.I,
)
COMPARATIVE_QUESTION = re.compile(
    r"\b(worse|better|longer|shorter|higher|lower|more|less|fewer|than|versus|vs|compared|"
    r"differ|difference)\b",
    re.I,
)
AUXILIARIES = frozenset({"was", "were", "is", "are", "did", "does", "do", "has", "have", "had",
                         "can", "could", "should", "would", "will", "may", "might"})  # fmt: skip
FACET_BREAKS = frozenset({"after", "in", "for", "with", "among", "from", "by", "versus", "vs",
                          "compared", "than", "when", "during", "on", "under", "following",
                          "behind", "within", "without", "before", "against"})  # fmt: skip
CLAUSE_SPLIT = re.compile(r"[,;]?\s+and\s+(?=(?:how|what|which|who)\b)", re.I)
COMPARISON_RE = re.compile(
    r"\b(versus|vs\.?|compared with|compared to|than|placebo|hazard ratio|HR|odds ratio)\b", re.I
)


# What a question can ask for in words its answer need not use: (the question's words, the
# words of a sentence that answers it). The question's words are replaced by one term for the
# concept, which a sentence holds when it holds either ("side effects" is answered by "adverse
# events", and "one-sided" no longer matches "side").
CONCEPTS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "adverse": (
        re.compile(
            r"\b(side[- ]?effects?|adverse (events?|effects?|reactions?)|"
            r"toxicit(y|ies)|tolerab\w*|safety|safe)\b",
            re.I,
        ),
        re.compile(
            r"\b(grade [1-5]|grade [1-4]-[2-5]|tolerat\w*|stomatitis|nausea|fatigue|"
            r"diarrho?ea|rash|neutropenia|thrombocytopenia|lymphopenia|nephrotoxicity)\b",
            re.I,
        ),
    ),
    "dose": (
        re.compile(r"\b(dose|doses|dosing|dosage|schedule|regimen)\b", re.I),
        re.compile(
            r"\b\d+(\.\d+)?\s*(mg|µg|mcg|GBq|mCi|Gy)\b|\bmg/m2\b|\bevery \d+ (days|weeks)\b|"
            r"\b(once|twice|three times) (daily|a day|weekly|monthly)\b",
            re.I,
        ),
    ),
    "response": (
        re.compile(r"\b(shrink\w*|shrank|respon\w*|regress\w*)\b", re.I),
        re.compile(r"\b(response rates?|shrinkage|regression)\b", re.I),
    ),
    "death": (
        re.compile(r"\b(die|died|dying|death|deaths|cause of death|fatal)\b", re.I),
        re.compile(r"\b(mortality|causes? of death)\b", re.I),
    ),
}


def concept_terms(question: str) -> tuple[dict[str, list[re.Pattern[str]]], str]:
    """The concepts (`CONCEPTS`) a question asks for, each a pseudo-term ("~adverse") with the
    patterns of a sentence that holds it, and the question's words that named them."""
    found: dict[str, list[re.Pattern[str]]] = {}
    named: list[str] = []
    for name, (asks, answer) in CONCEPTS.items():
        words = [m.group(0) for m in asks.finditer(question)]
        if words:
            found[f"~{name}"] = [asks, answer]
            named += words
    return found, " ".join(named)


@functools.lru_cache(maxsize=8192)
def _units(text: str) -> tuple[Unit, ...]:
    """`answer_units` of a chunk text, kept: the same passages come back question after question."""
    return tuple(answer_units(text))


@dataclass(frozen=True)
class ComposerWeights:
    """How a candidate sentence is scored; chosen on the dev half of the gold set."""

    semantic: float = 0.25  # cosine of the sentence and the question
    lexical: float = 0.5  # idf-weighted share of the question's terms in the sentence
    figure: float = 0.3  # a figure question and a sentence carrying a figure
    comparison: float = 0.1  # ... and the figure with its comparison
    comparative: bool = False  # a comparative question ("worse than") counts as a figure one
    listing: float = 0.12  # a list question and a list sentence
    rank: float = 0.05  # preference for higher-ranked passages (/ rank)
    passage: float = 1.5  # the passage's own cosine to the question
    focus: float = 2.0  # the question's terms that few candidate sentences hold
    facet: float = 1.5  # ... of those, the words naming what the question asks for
    findings: float = 0.5  # a sentence from a findings section (Key findings, Results, ...)
    named: float = 1.0  # a sentence of a source the question names (author or trial)
    concepts: bool = True  # "side effects" is held by "adverse events" (`CONCEPTS`)
    min_ratio: float = 0.5  # later sentences score at least this share of the best
    max_words: int = 90  # total words of the answer (the first sentence always counts)
    max_sentence_words: int = 80  # longer sentences are not chosen
    from_passages: int = 5  # passages whose sentences are candidates
    per_passage: int = 2  # sentences taken from one passage at most
    redundancy: float = 0.9  # a sentence this similar to a chosen one is left out


@dataclass(frozen=True)
class Candidate:
    """A scored sentence of a passage."""

    score: float
    rank: int
    order: int
    text: str
    vector: np.ndarray | None
    shares_terms: bool = True  # holds at least one of the question's terms


def question_form(question: str) -> dict[str, bool]:
    """What the question asks for: a figure, a list, a comparison."""
    return {
        "figure": bool(FIGURE_QUESTION.search(question)),
        "list": bool(LIST_QUESTION.search(question)),
        "comparison": bool(COMPARATIVE_QUESTION.search(question)),
    }


def _clause_facet(words: list[str], max_words: int) -> list[str]:
    wh = [i for i, word in enumerate(words[:6]) if word in ("what", "which", "how", "who")]
    if not wh or wh[0] + 1 >= len(words):
        return []  # a yes/no question asks about all of itself
    words = words[wh[0] :]  # "And in the long run, how many ..."
    i = 2 if words[0] == "how" or words[1] == "about" else 1  # "how long", "what about"
    while i < len(words) and (words[i] in AUXILIARIES or words[i] in ("the", "a", "an")):
        i += 1
    facet: list[str] = []
    for word in words[i:]:
        if word in FACET_BREAKS or word in AUXILIARIES or len(facet) == max_words:
            break
        facet.append(word)
    return facet


def question_facet(question: str, max_words: int = 6) -> str:
    """The words naming what a wh-question asks for: "What overall survival at 5 years was
    achieved ..." → "overall survival at 5 years"; "How long was progression-free survival with
    ..." → "progression-free survival"; "What about toxicity in that trial?" → "toxicity". Each
    clause of "..., and how ...?" adds its own. Empty for a yes/no question."""
    out: list[str] = []
    for clause in CLAUSE_SPLIT.split(question):
        out += _clause_facet(TOKEN_RE.findall(clause.lower()), max_words)
    return " ".join(out)


FEATURES = ("lexical", "focus", "rank", "passage", "facet", "semantic", "figure", "comparison",
            "findings", "listing", "named")  # fmt: skip
"""A candidate sentence's score is the dot product of these features and the `ComposerWeights`
fields of the same names (`candidate_features`)."""


@dataclass(frozen=True)
class Features:
    """An answer unit of a top passage and its score's features (in `FEATURES` order)."""

    values: np.ndarray
    rank: int
    order: int
    text: str
    vector: np.ndarray | None
    shares_terms: bool


def candidate_features(
    passages: Sequence[Passage],
    question: str,
    query_terms: Sequence[str],
    idf: Callable[[str], float],
    tokenize: Callable[[str], list[str]],
    query_vector: np.ndarray | None = None,
    unit_vectors: UnitVectors | None = None,
    weights: ComposerWeights | None = None,
    named: Collection[str] = (),
) -> list[Features]:
    """Every answer unit of the top `weights.from_passages` passages (up to
    `max_sentence_words` words) with the features its score is made of: the idf-weighted share
    of the question's terms it holds (lexical), the same weighted by how few candidates hold
    each term (focus), 1 / its passage's rank, its passage's cosine, the share of the question's
    facet it holds, its own cosine to the question, a figure (and its comparison) for a figure
    question, a findings section, a list for a list question, a source in `named` (the sources
    the question names). The question's words for a concept (`CONCEPTS`) count as one term that a
    sentence holds when it uses any word of the concept."""
    w = weights or ComposerWeights()
    form = question_form(question)
    concepts, concept_words = concept_terms(question) if w.concepts else ({}, "")
    replaced = set(tokenize(concept_words))
    terms = set(query_terms)
    mean_idf = sum(idf(t) for t in terms) / len(terms) if terms else 1.0
    terms = (terms - replaced) | set(concepts)
    facet = set(tokenize(question_facet(question))) - replaced | set(concepts) if w.facet else set()

    def weight(t: str) -> float:  # a concept weighs as much as an average question term
        return mean_idf if t in concepts else idf(t)

    total = sum(weight(t) for t in terms) or 1.0
    figure_question = form["figure"] or (w.comparative and form["comparison"])
    rows: list[tuple[Passage, int, Unit, set[str], float | None, np.ndarray | None]] = []
    for p in passages[: w.from_passages]:
        units = _units(p.chunk.text)
        vectors = unit_vectors(p.chunk.id) if unit_vectors is not None else None
        if vectors is not None and len(vectors) != len(units):
            vectors = None  # an index built by an older chunker: words only
        sims = (
            np.asarray(vectors, dtype=np.float32) @ query_vector.astype(np.float32)
            if vectors is not None and query_vector is not None and len(units)
            else None
        )
        for order, unit in enumerate(units):
            if len(unit.text.split()) > w.max_sentence_words:
                continue
            tokens = set(tokenize(unit.text)) | {
                c for c, patterns in concepts.items() if any(p.search(unit.text) for p in patterns)
            }
            hits = (terms | facet) & tokens
            sim = float(sims[order]) if sims is not None else None
            rows.append(
                (p, order, unit, hits, sim, vectors[order] if vectors is not None else None)
            )
    # focus: the question's terms that few candidate sentences share tell them apart
    spread = {t: sum(1 for row in rows if t in row[3]) for t in terms | facet}
    n = len(rows) + 1

    def rarity(t: str) -> float:
        return weight(t) * math.log(n / (0.5 + spread[t]))

    focus_total = sum(rarity(t) for t in terms) or 1.0
    facet_total = sum(rarity(t) for t in facet) or 1.0
    out: list[Features] = []
    for p, order, unit, hits, sim, vec in rows:
        figure = bool(figure_question and FIGURE_RE.search(unit.text))
        values = np.array(
            [
                sum(weight(t) for t in hits & terms) / total,
                sum(rarity(t) for t in hits & terms) / focus_total,
                1.0 / p.rank,
                p.similarity,
                sum(rarity(t) for t in facet & hits) / facet_total if facet else 0.0,
                sim if sim is not None else 0.0,
                float(figure),
                float(figure and bool(COMPARISON_RE.search(unit.text))),
                float(bool(FINDINGS_SECTION.search(p.chunk.section))),
                float(form["list"] and unit.is_list),
                float(p.chunk.doc_id in named),
            ]
        )
        out.append(Features(values, p.rank, order, unit.text, vec, bool(hits & terms)))
    return out


def score_candidates(
    features: Sequence[Features], weights: ComposerWeights | None = None
) -> list[Candidate]:
    """The candidates (`candidate_features`) with their scores, the features times the
    weights, best first."""
    w = weights or ComposerWeights()
    coef = np.array([getattr(w, name) for name in FEATURES])
    out = [
        Candidate(float(f.values @ coef), f.rank, f.order, f.text, f.vector, f.shares_terms)
        for f in features
    ]
    out.sort(key=lambda c: (-c.score, c.rank, c.order))
    return out


def _redundant(c: Candidate, chosen: Sequence[Candidate], limit: float) -> bool:
    for other in chosen:
        if c.text == other.text:
            return True
        if c.vector is not None and other.vector is not None:
            if float(np.dot(c.vector, other.vector)) >= limit:
                return True
        else:
            a, b = set(c.text.lower().split()), set(other.text.lower().split())
            if len(a & b) / max(1, len(a | b)) >= limit:
                return True
    return False


def compose_answer(
    passages: Sequence[Passage],
    query_terms: Sequence[str],
    idf: Callable[[str], float],
    tokenize: Callable[[str], list[str]],
    n_sentences: int = 3,
    *,
    question: str = "",
    query_vector: np.ndarray | None = None,
    unit_vectors: UnitVectors | None = None,
    labels: Mapping[str, str] | None = None,
    weights: ComposerWeights | None = None,
    named: Collection[str] = (),
) -> str | None:
    """The answer: the sentences of the top passages that state what the question asks.

    A sentence is scored (see `ComposerWeights`) by its meaning (cosine to the question, from
    the sentence vectors kept in the index), the question's terms it covers and those few other
    candidates cover (focus), its passage's similarity and section, and the question's form (a
    figure question prefers a sentence with the figure and its comparison, a list question a
    list sentence).
    The best sentence comes first; at most `n_sentences` whole sentences and about
    `weights.max_words` words, each followed by `[n]`, the rank of its passage. Note ids inside
    the text are shown as citation labels. None when no sentence shares a term with the question
    (an answer made of meaning alone would too easily answer what the literature does not say).
    """
    w = weights or ComposerWeights()
    if not query_terms:
        return None
    features = candidate_features(
        passages, question, query_terms, idf, tokenize, query_vector, unit_vectors, w, named
    )
    ranked = score_candidates(features, w)
    if not any(c.shares_terms for c in ranked):
        return None  # no sentence holds a word of the question
    best = ranked[0].score
    chosen: list[Candidate] = []
    used: dict[int, int] = {}
    words = 0
    for c in ranked:
        n_words = len(c.text.split())
        if chosen and (c.score < w.min_ratio * best or words + n_words > w.max_words):
            continue
        if used.get(c.rank, 0) >= w.per_passage or _redundant(c, chosen, w.redundancy):
            continue
        chosen.append(c)
        used[c.rank] = used.get(c.rank, 0) + 1
        words += n_words
        if len(chosen) == n_sentences:
            break
    return " ".join(f"{render(c.text, labels) if labels else c.text} [{c.rank}]" for c in chosen)
