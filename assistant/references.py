"""Readable cross-references: a note id inside note text is shown as "Le Treut 2013".

Notes point to each other by id (`le-treut-2013-eltr-transplantation`, or bare in "see
rossi-2012-review"). A reader sees a short citation label instead, and the source behind it is
listed with the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .source import SourceRecord

ID_RE = re.compile(r"`?\b([a-z0-9]+(?:-[a-z0-9]+)+)\b`?")
# "in the note `ho-2007-...`" reads "in Ho 2007": the reader sees sources, not notes
NOTE_ID_RE = re.compile(r"\b(?:the )?note " + ID_RE.pattern)


def short_label(meta: SourceRecord) -> str:
    """'Surname YEAR' from the first author, 'Title' (shortened) without authors."""
    authors = meta.get("authors") or []
    year = meta.get("year")
    if authors:
        first = str(authors[0])
        # "Le Treut YP" -> "Le Treut"; "de Herder WW" -> "de Herder"
        parts = first.split()
        surname = " ".join(p for p in parts if not (p.isupper() and len(p) <= 4)) or first
        surname = surname.rstrip(",")
        if surname.lower() in ("et al", "et al."):
            surname = first
        return f"{surname} {year}" if year else surname
    match = re.match(r"^([a-z]+)-(\d{4})(?:-|$)", str(meta.get("id") or ""))
    if match:  # ids start with the first author's surname and the year
        return f"{match.group(1).capitalize()} {match.group(2)}"
    title = str(meta.get("title") or meta.get("id") or "source")
    words = title.split(":")[0].split()
    head = " ".join(words[:6]) + ("…" if len(words) > 6 else "")
    return head


def source_labels(sources: Mapping[str, SourceRecord]) -> dict[str, str]:
    """id -> label for every source; labels shared by several sources get a, b, c suffixes."""
    base = {doc_id: short_label(meta) for doc_id, meta in sources.items()}
    groups: dict[str, list[str]] = {}
    for doc_id in sorted(base):
        groups.setdefault(base[doc_id], []).append(doc_id)
    out: dict[str, str] = {}
    for label, ids in groups.items():
        if len(ids) == 1:
            out[ids[0]] = label
            continue
        for i, doc_id in enumerate(ids):
            out[doc_id] = f"{label}{chr(ord('a') + i)}"
    return out


def cited_ids(text: str, known: Mapping[str, str] | Iterable[str]) -> list[str]:
    """The known source ids mentioned in `text`, in order of first mention."""
    keys = known if isinstance(known, Mapping) else set(known)
    out: list[str] = []
    for match in ID_RE.finditer(text):
        doc_id = match.group(1)
        if doc_id in keys and doc_id not in out:
            out.append(doc_id)
    return out


def render(text: str, labels: Mapping[str, str]) -> str:
    """`text` with every known source id (bare or in backticks, "the note" before it left out)
    replaced by its label."""

    def swap(match: re.Match[str]) -> str:
        label = labels.get(match.group(1))
        return label if label is not None else match.group(0)

    return ID_RE.sub(swap, NOTE_ID_RE.sub(swap, text))


GENERIC_NAMES = frozenset(
    [
        "net",
        "nets",
        "nen",
        "nens",
        "pnet",
        "pnets",
        "prrt",
        "tace",
        "tae",
        "rfa",
        "sirt",
        "pet",
        "ct",
        "mri",
        "who",
        "esmo",
        "enets",
        "nanets",
        "nccn",
        "rct",
        "os",
        "pfs",
        "orr",
        "hr",
        "ci",
        "gep",
        "nec",
        "tnm",
        "dotatoc",
        "dotatate",
        "ga68",
        "lu177",
        "177lu",
    ]
)


def source_names(meta: SourceRecord) -> frozenset[str]:
    """Lower-case words a question may use to name this source: the first author's surname and
    trial names (words of the id written in capitals in the title or summary, e.g. PROMID)."""
    names: set[str] = set()
    doc_id = str(meta.get("id") or "")
    authors = meta.get("authors") or []
    if authors:
        surname = short_label({"authors": authors}).lower()
        names.update(w for w in surname.split() if len(w) > 2)
    else:
        match = re.match(r"^([a-z]+)-\d{4}", doc_id)
        if match:
            names.add(match.group(1))
    text = f"{meta.get('title') or ''} {meta.get('summary') or ''}"
    capitals = {w.lower() for w in re.findall(r"\b[A-Z][A-Z0-9]+(?:-[A-Z0-9]+)*\b", text)}
    parts = doc_id.split("-")
    for i in range(len(parts)):
        for j in (1, 2):  # single words and hyphenated pairs ("netter-1", "radiant-3")
            word = "-".join(parts[i : i + j])
            if word in capitals and word not in GENERIC_NAMES and not word.isdigit():
                names.add(word)
    return frozenset(names)
