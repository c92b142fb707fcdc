"""Turn a follow-up question into a self-contained search query using the conversation so far.

A clinician's follow-up ("and in pancreatic tumours?", "what about its toxicity?") is merged with
the salient terms of earlier turns: named treatments, trials, sites and acronyms first, generic
words last. What is carried over is capped, so the query cannot grow turn after turn. A site
named in the follow-up replaces the site of the earlier question rather than adding to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from .lexical import STOPWORDS, TOKEN_RE

FOLLOW_UP_START = re.compile(
    r"^\s*(and|also|but|or|so|what about|how about|what of|same|then|in|for|with|versus|vs\.?|"
    r"compared|any|is it|are they|does it|do they|was it|were they|did it|did they|has it|"
    r"have they|had it|can it|could it|should it|will it)\b",
    re.I,
)
ANAPHORA = re.compile(
    r"\b(it|its|it's|this|that|these|those|they|them|their|the same|such|the latter|"
    r"the former|the (?:drug|trial|study|studies|treatment|procedure|therapy|operation|surgery|"
    r"series|analysis|cohort|patients|version|guideline|guidelines|approach|technique|scan|"
    r"paper|review|regimen|combination|intervention|update|results?|authors?))\b",
    re.I,
)
ELLIPTICAL = re.compile(r"^\s*(?:and|what about|how about|what of|or|but)\b", re.I)
MAX_CONTEXT_TERMS = 12
SHORT_QUESTION_TERMS = 4
ANCHORLESS_TERMS = 5  # a question this short with no named topic leans on the conversation


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Tumour sites: a follow-up naming one replaces the site of the earlier question.
SITES = _words(
    "pancreas pancreatic pnet pnets pannet pannets midgut intestine intestinal small-intestinal "
    "si-net si-nets ileal ileum jejunal jejunum lung lungs bronchial bronchopulmonary pulmonary "
    "gastric stomach rectal rectum colorectal colon colonic appendix appendiceal duodenal "
    "duodenum hindgut foregut gut"
)
# Aspects of a question: a follow-up naming one of a group replaces the earlier one of that
# group ("and haematological toxicity?" after a question on kidney toxicity keeps the treatment
# and drops the kidney).
ASPECT_GROUPS = (
    _words(
        "kidney kidneys renal nephrotoxicity nephrotoxic haematological hematological "
        "haematologic hematologic blood marrow myelotoxicity myelosuppression myelodysplastic "
        "myelodysplasia leukaemia leukemia cardiac heart cardiotoxicity hepatotoxicity "
        "lung lungs pulmonary skin"
    ),
    _words(
        "survival pfs os progression-free recurrence recurrences relapse response responses "
        "toxicity toxicities safety complications complication mortality morbidity symptoms "
        "syndrome quality cost costs"
    ),
)
# Named treatments, tests and topics: the words that make a question self-contained.
TOPICS = _words(
    "prrt lutetium 177lu lu dotatate dotatoc dotanoc 90y yttrium everolimus sunitinib "
    "octreotide lanreotide somatostatin ssa ssas analogue analogues analog analogs interferon "
    "capecitabine temozolomide captem streptozocin streptozotocin fluorouracil doxorubicin "
    "cisplatin etoposide platinum chemotherapy tace tae embolization embolisation "
    "chemoembolization chemoembolisation radioembolization radioembolisation sirt microspheres "
    "beads rfa ablation radiofrequency microwave resection hepatectomy surgery surgical "
    "debulking cytoreduction cytoreductive transplantation transplant transplanted telotristat "
    "cabozantinib bevacizumab pet ct mri scintigraphy octreoscan gallium ga 68ga imaging "
    "chromogranin ki ki-67 grading mitoses classification incidence prevalence "
    "epidemiology carcinoid syndrome crisis heart quality life questionnaire guideline "
    "guidelines consensus esmo enets nanets nccn ukinets who seer biopsy histology"
)
# Words every question in this corpus shares: kept only when there is room.
GENERIC = _words(
    "neuroendocrine tumour tumours tumor tumors net nets nen nens neoplasm neoplasms liver "
    "hepatic metastases metastasis metastatic patients patient disease treatment treatments "
    "therapy therapies option options management evidence show shows showed report reported "
    "reports results result outcome outcomes effective achieve expect give work according "
    "recommend recommends recommendation well better best role use used pfs os orr ii iii iv "
    "phase median versus"
)


def content_words(text: str) -> list[str]:
    """Words that carry meaning, in order, without repeats (case kept as written)."""
    seen: set[str] = set()
    out = []
    for match in TOKEN_RE.finditer(text):
        word = match.group(0)
        low = word.lower()
        if low in STOPWORDS or low in seen:
            continue
        seen.add(low)
        out.append(word)
    return out


def is_named(word: str) -> bool:
    """A word that names something specific: a listed topic, an acronym, a code, a proper name."""
    low = word.lower()
    if low in TOPICS or low in SITES:
        return True
    if low in GENERIC:
        return False
    has_digit = any(c.isdigit() for c in word)
    has_alpha = any(c.isalpha() for c in word)
    return (has_digit and has_alpha) or (word.isupper() and len(word) >= 2) or word[1:] != low[1:]


def _proper_names(text: str) -> set[str]:
    """Words capitalised away from the start of a sentence (author, trial or place names)."""
    out = set()
    for match in TOKEN_RE.finditer(text):
        word = match.group(0)
        before = text[: match.start()].rstrip()
        if word[:1].isupper() and before and before[-1] not in ".?!:;\"'(":
            out.add(word)
    return out


def salient_terms(text: str) -> list[tuple[str, float]]:
    """Content words of `text` with a salience weight: named > ordinary > generic."""
    proper = _proper_names(text)
    out = []
    for word in content_words(text):
        low = word.lower()
        if low in GENERIC:
            weight = 0.0
        elif is_named(word) or word in proper:
            weight = 2.0
        elif low.isdigit():
            weight = 0.5
        else:
            weight = 1.0
        out.append((word, weight))
    return out


def is_follow_up(question: str, known: Callable[[str], bool] | None = None) -> bool:
    """A question that leans on earlier turns: elliptical, anaphoric, short, or with no topic.

    `known` tells whether a word occurs in the corpus; when given, a question with no named
    topic counts as a follow-up only if most of its words are the corpus's own (so an
    unrelated question after a clinical one is searched as it is, and can be abstained on).
    """
    words = content_words(question)
    if FOLLOW_UP_START.match(question) or ANAPHORA.search(question):
        return True
    if len(words) <= SHORT_QUESTION_TERMS - 2:
        return True
    proper = _proper_names(question)
    named = [w for w in words if is_named(w) or w in proper]
    if named or len(words) > ANCHORLESS_TERMS:
        return False
    return known is None or 2 * sum(1 for w in words if known(w)) > len(words)


def _select(candidates: list[tuple[str, float]], limit: int) -> list[str]:
    """The `limit` heaviest candidates, kept in their original order."""
    if limit <= 0:
        return []
    order = sorted(range(len(candidates)), key=lambda i: (-candidates[i][1], i))[:limit]
    return [candidates[i][0] for i in sorted(order)]


def _merge(question: str, context: str, max_terms: int) -> str:
    """`question` followed by at most `max_terms` salient words of `context`."""
    asked_words = content_words(question)
    asked = {w.lower() for w in asked_words}
    names_site = any(w.lower() in SITES for w in asked_words)
    elliptical = bool(ELLIPTICAL.match(question)) and len(asked_words) <= 3
    names_topic = any(w.lower() in TOPICS for w in asked_words)
    replaced = [g for g in ASPECT_GROUPS if any(w.lower() in g for w in asked_words)]
    candidates: list[tuple[str, float]] = []
    for word, weight in salient_terms(context):
        low = word.lower()
        if low in asked:
            continue
        if names_site and low in SITES:
            continue  # "and in pancreatic tumours?" replaces the earlier site
        if elliptical and names_topic and low in TOPICS:
            continue  # "what about everolimus?" replaces the earlier treatment
        if any(low in group for group in replaced):
            continue  # "and haematological toxicity?" replaces the earlier organ
        candidates.append((word, weight))
    extra = _select(candidates, max_terms)
    return f"{question.strip()} {' '.join(extra)}".strip() if extra else question.strip()


def rewrite_query(
    question: str,
    history: Sequence[Mapping[str, str]] | None = None,
    max_turns: int = 6,
    max_terms: int = MAX_CONTEXT_TERMS,
    known: Callable[[str], bool] | None = None,
) -> str:
    """The query to search for `question` given earlier turns (oldest first).

    Each earlier user turn is itself resolved against the turns before it, so a chain of
    follow-ups keeps its topic; what is carried over is capped at `max_terms` words, so the
    query cannot grow turn after turn. Assistant turns are not used: they quote passages and
    would drown the clinician's own words (measured on the gold multi-turn cases, adding even
    their named terms lowered recall). A question that does not lean on the conversation is
    searched as it is.
    """
    users = [str(t.get("content", "")) for t in (history or []) if t.get("role") == "user"]
    users = [u for u in users if u.strip()][-max_turns:] if max_turns else []
    context = ""
    for turn in users:
        follows = bool(context) and is_follow_up(turn, known)
        context = _merge(turn, context, max_terms) if follows else turn
    if not context or not is_follow_up(question, known):
        return question.strip()
    return _merge(question, context, max_terms)
