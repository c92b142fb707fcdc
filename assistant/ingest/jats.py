"""PMC / JATS full-text XML: front matter, abstract and body sections with their headings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import IngestError, Record, clean_space, first_year, parse_xml, sha256_hex, text_of

ARTICLE_TYPES = {
    "review-article": "review",
    "systematic-review": "review",
    "meta-analysis": "meta-analysis",
    "practice-guideline": "guideline",
    "guideline": "guideline",
    "consensus-statement": "consensus",
    "case-report": "case-series",
}
SUBJECT_TYPES = {
    "meta-analysis": "meta-analysis",
    "review": "review",
    "review article": "review",
    "systematic review": "review",
    "guideline": "guideline",
    "guidelines": "guideline",
    "consensus statement": "consensus",
    "randomized controlled trial": "rct",
    "clinical trial": "rct",
    "case report": "case-series",
}
# Block elements whose text is kept as paragraphs; figures, tables and formulas are left out.
SKIP = {"fig", "table-wrap", "disp-formula", "ref-list", "fn-group", "supplementary-material",
        "graphic", "media", "alternatives"}  # fmt: skip


def _local(tag: Any) -> str:
    return tag.split("}", 1)[-1] if isinstance(tag, str) else ""


def _child(elem: Any, name: str) -> Any:
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _find(elem: Any, *path: str) -> Any:
    for name in path:
        if elem is None:
            return None
        elem = _child(elem, name)
    return elem


def _all(elem: Any, name: str) -> list[Any]:
    return [e for e in elem.iter() if _local(e.tag) == name]


def _paragraph_text(p: Any) -> str:
    """A paragraph's text without nested figures/tables."""
    parts: list[str] = [p.text or ""]
    for child in p:
        if _local(child.tag) not in SKIP:
            parts.append(_paragraph_text(child))
        parts.append(child.tail or "")
    return clean_space("".join(parts))


def _section_lines(sec: Any, level: int, lines: list[str]) -> None:
    title = _child(sec, "title")
    if title is not None and text_of(title):
        lines += [f"{'#' * min(level, 6)} {text_of(title)}", ""]
    for child in sec:
        name = _local(child.tag)
        if name == "sec":
            _section_lines(child, level + 1, lines)
        elif name == "p":
            text = _paragraph_text(child)
            if text:
                lines += [text, ""]
        elif name == "list":
            for item in _all(child, "list-item"):
                text = text_of(item)
                if text:
                    lines.append(f"- {text}")
            lines.append("")
        elif name in ("boxed-text", "disp-quote"):
            for p in _all(child, "p"):
                text = _paragraph_text(p)
                if text:
                    lines += [text, ""]


def _source_type(article: Any, meta_elem: Any) -> str:
    atype = (article.get("article-type") or "").lower()
    if atype in ARTICLE_TYPES:
        return ARTICLE_TYPES[atype]
    for subject in _all(meta_elem, "subject"):
        stype = SUBJECT_TYPES.get(text_of(subject).lower())
        if stype:
            return stype
    return "other"


def _year(meta_elem: Any) -> int | None:
    dates = [d for d in meta_elem if _local(d.tag) == "pub-date"]
    order = {"ppub": 0, "epub-ppub": 0, "collection": 1, "epub": 2, "pmc-release": 3}

    def rank(d: Any) -> int:
        kind = d.get("pub-type") or d.get("date-type") or ""
        return order.get(kind, 4)

    for d in sorted(dates, key=rank):
        year = first_year(text_of(_child(d, "year")))
        if year:
            return year
    return None


def parse_article(article: Any, source: str) -> tuple[dict[str, Any], str]:
    """Front-matter fields and Markdown body of one JATS <article>."""
    front = _child(article, "front")
    meta_elem = _find(front, "article-meta")
    if meta_elem is None:
        raise IngestError(source, "a JATS article without front/article-meta",
                          "use the XML exactly as PMC delivers it")  # fmt: skip
    title = text_of(_find(meta_elem, "title-group", "article-title"))
    if not title:
        raise IngestError(source, "the article has no title (title-group/article-title)",
                          "use the XML exactly as PMC delivers it")  # fmt: skip
    ids = {
        (e.get("pub-id-type") or ""): text_of(e) for e in meta_elem if _local(e.tag) == "article-id"
    }
    authors = []
    for contrib in _all(meta_elem, "contrib"):
        if contrib.get("contrib-type", "author") != "author":
            continue
        name = _child(contrib, "name")
        if name is not None:
            surname = text_of(_child(name, "surname"))
            given = text_of(_child(name, "given-names"))
            initials = "".join(w[0] for w in given.replace("-", " ").split() if w)
            authors.append(f"{surname} {initials}".strip())
        elif text_of(_child(contrib, "collab")):
            authors.append(text_of(_child(contrib, "collab")))
    journal_meta = _find(front, "journal-meta")
    journal = None
    if journal_meta is not None:
        abbrev = [e for e in _all(journal_meta, "abbrev-journal-title")]
        journal = (
            text_of(abbrev[0])
            if abbrev
            else text_of(_find(journal_meta, "journal-title-group", "journal-title"))
            or text_of(_child(journal_meta, "journal-title"))
        )
    fpage, lpage = text_of(_child(meta_elem, "fpage")), text_of(_child(meta_elem, "lpage"))
    pmcid = ids.get("pmc") or ids.get("pmcid")
    if pmcid and not pmcid.upper().startswith("PMC"):
        pmcid = f"PMC{pmcid}"
    doi = ids.get("doi")
    meta: dict[str, Any] = {
        "title": title,
        "year": _year(meta_elem),
        "source_type": _source_type(article, meta_elem),
        "authors": authors,
        "journal": journal or None,
        "volume": text_of(_child(meta_elem, "volume")) or None,
        "issue": text_of(_child(meta_elem, "issue")) or None,
        "pages": (f"{fpage}-{lpage}" if lpage and lpage != fpage else fpage) or None,
        "pmid": ids.get("pmid") or None,
        "doi": doi if doi and doi.startswith("10.") else None,
        "url": f"https://pmc.ncbi.nlm.nih.gov/articles/{pmcid}/" if pmcid else None,
    }
    lines = [f"# {title}", ""]
    for abstract in [e for e in meta_elem if _local(e.tag) == "abstract"]:
        if abstract.get("abstract-type") not in (None, "", "structured", "summary"):
            continue
        # an abstract's own <title> ("Abstract") repeats the heading; it is dropped below
        lines += ["## Abstract", ""]
        _section_lines(abstract, 2, lines)
        break
    body = _child(article, "body")
    if body is not None:
        for child in body:
            name = _local(child.tag)
            if name == "sec":
                _section_lines(child, 2, lines)
            elif name == "p":
                text = _paragraph_text(child)
                if text:
                    lines += [text, ""]
    text = "\n".join(_drop_repeated_heading(lines))
    words = len(text.split()) - len(title.split())
    if words < 20:
        raise IngestError(
            source,
            "the article has neither abstract nor body text",
            "PMC gives full text only for open-access articles; add the PDF instead",
        )
    return meta, text + "\n"


def _drop_repeated_heading(lines: list[str]) -> list[str]:
    """'## Abstract' followed by '### Abstract' (the abstract's own title) keeps one."""
    out: list[str] = []
    for line in lines:
        if out and line.startswith("#") and len(out) >= 2:
            prev = out[-2]
            if prev.startswith("#") and prev.lstrip("# ").lower() == line.lstrip("# ").lower():
                continue
        out.append(line)
    # remove the blank line left after a dropped heading
    cleaned: list[str] = []
    for line in out:
        if line == "" and cleaned and cleaned[-1] == "":
            continue
        cleaned.append(line)
    return cleaned


def is_jats(root: Any) -> bool:
    """True for a JATS <article> or a PMC <pmc-articleset>."""
    return _local(root.tag) in ("article", "pmc-articleset")


def read_jats(data: bytes, source: str | Path, root: Any = None) -> list[Record]:
    """One Record per <article> in a JATS / PMC file."""
    root = parse_xml(data, source) if root is None else root
    articles = [root] if _local(root.tag) == "article" else _all(root, "article")
    if not articles:
        raise IngestError(source, "no <article> in this PMC XML",
                          "download the article's XML from PMC again")  # fmt: skip
    sha = sha256_hex(data)
    out = []
    for i, article in enumerate(articles):
        meta, body = parse_article(article, str(source))
        out.append(Record(meta=meta, body=body, fmt="jats", source_name=Path(str(source)).name,
                          sha256=sha if len(articles) == 1 else f"{sha}:{i}"))  # fmt: skip
    return out
