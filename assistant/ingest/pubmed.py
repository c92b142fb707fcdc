"""PubMed XML as returned by E-utilities efetch, and the efetch client itself."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import AssistantError, InputError
from ..source import PMID_RE
from .base import IngestError, Record, clean_space, first_year, parse_xml, sha256_hex, text_of

# Publication types, strongest evidence label first: the first one present wins.
PUBLICATION_TYPES: tuple[tuple[str, str], ...] = (
    ("meta-analysis", "meta-analysis"),
    ("practice guideline", "guideline"),
    ("guideline", "guideline"),
    ("consensus development conference", "consensus"),
    ("consensus development conference, nih", "consensus"),
    ("randomized controlled trial", "rct"),
    ("clinical trial, phase iii", "rct"),
    ("equivalence trial", "rct"),
    ("pragmatic clinical trial", "rct"),
    ("systematic review", "review"),
    ("review", "review"),
    ("observational study", "cohort"),
    ("clinical trial, phase ii", "cohort"),
    ("clinical trial, phase i", "cohort"),
    ("clinical trial", "cohort"),
    ("multicenter study", "cohort"),
    ("comparative study", "cohort"),
    ("case reports", "case-series"),
)


def source_type_for(publication_types: Sequence[str]) -> str:
    """Our `source_type` for a list of PubMed publication types ('other' when none fits)."""
    present = {clean_space(p).lower() for p in publication_types}
    for name, stype in PUBLICATION_TYPES:
        if name in present:
            return stype
    return "other"


def _year(article: Any, citation: Any) -> int | None:
    pub_date = article.find("Journal/JournalIssue/PubDate")
    if pub_date is not None:
        year = first_year(text_of(pub_date.find("Year"))) or first_year(
            text_of(pub_date.find("MedlineDate"))
        )
        if year:
            return year
    year = first_year(text_of(article.find("ArticleDate/Year")))
    if year:
        return year
    return first_year(text_of(citation.find("DateCompleted/Year")))


def _authors(article: Any) -> list[str]:
    out = []
    for author in article.findall("AuthorList/Author"):
        if author.get("ValidYN", "Y") != "Y":
            continue
        last = text_of(author.find("LastName"))
        if last:
            initials = text_of(author.find("Initials"))
            out.append(f"{last} {initials}".strip())
            continue
        collective = text_of(author.find("CollectiveName"))
        if collective:
            out.append(collective)
    return out


def _abstract(article: Any) -> list[tuple[str | None, str]]:
    """(label, text) of each abstract section, in order."""
    sections = []
    for part in article.findall("Abstract/AbstractText"):
        text = text_of(part)
        if text:
            label = part.get("Label")
            sections.append((label.strip().capitalize() if label else None, text))
    return sections


def parse_article(elem: Any, source: str) -> tuple[dict[str, Any], str]:
    """Front-matter fields and Markdown body of one <PubmedArticle>."""
    citation = elem.find("MedlineCitation")
    article = citation.find("Article") if citation is not None else None
    if citation is None or article is None:
        raise IngestError(source, "a PubmedArticle without MedlineCitation/Article",
                          "use the XML exactly as efetch returns it")  # fmt: skip
    pmid = text_of(citation.find("PMID"))
    title = text_of(article.find("ArticleTitle")) or text_of(article.find("VernacularTitle"))
    label = f"{source} (PMID {pmid})" if pmid else source
    if not title:
        raise IngestError(label, "the record has no title", "check the PMID")
    journal = article.find("Journal")
    issue = journal.find("JournalIssue") if journal is not None else None
    doi = None
    for loc in article.findall("ELocationID"):
        if loc.get("EIdType") == "doi" and text_of(loc).startswith("10."):
            doi = text_of(loc)
    for aid in elem.findall("PubmedData/ArticleIdList/ArticleId"):
        if aid.get("IdType") == "doi" and not doi and text_of(aid).startswith("10."):
            doi = text_of(aid)
    ptypes = [text_of(p) for p in article.findall("PublicationTypeList/PublicationType")]
    year = _year(article, citation)
    meta: dict[str, Any] = {
        "title": title.rstrip(),
        "year": year,
        "source_type": source_type_for(ptypes),
        "authors": _authors(article),
        "journal": text_of(journal.find("ISOAbbreviation")) or text_of(journal.find("Title"))
        if journal is not None
        else None,
        "volume": text_of(issue.find("Volume")) if issue is not None else None,
        "issue": text_of(issue.find("Issue")) if issue is not None else None,
        "pages": text_of(article.find("Pagination/MedlinePgn")) or None,
        "pmid": pmid or None,
        "doi": doi,
        "url": f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else None,
    }
    abstract = _abstract(article)
    if not abstract:
        raise IngestError(
            label,
            "the PubMed record has no abstract, so there is no text to search",
            "add the full text instead (PDF or PMC XML) with `assistant corpus add`",
        )
    lines = [f"# {meta['title']}", "", "## Abstract", ""]
    for section, text in abstract:
        if section:
            lines += [f"### {section}", ""]
        lines += [text, ""]
    keywords = [text_of(k) for k in citation.findall("KeywordList/Keyword") if text_of(k)]
    if keywords:
        lines += ["## Keywords", "", "; ".join(keywords) + ".", ""]
    return meta, "\n".join(lines)


def split_pubmed_xml(data: bytes, source: str | Path) -> list[Record | IngestError]:
    """A Record for every article of an efetch PubMed XML document; an article that cannot be
    used becomes an IngestError in the list, and the others are kept."""
    root = parse_xml(data, source)
    articles = [root] if root.tag == "PubmedArticle" else root.findall("PubmedArticle")
    if not articles:
        if root.findall("PubmedBookArticle"):
            raise IngestError(source, "PubMed book records are not supported",
                              "add the book chapter as a PDF instead")  # fmt: skip
        raise IngestError(source, "no PubmedArticle in this PubMed XML",
                          "fetch the record again with efetch (retmode=xml)")  # fmt: skip
    out: list[Record | IngestError] = []
    name = Path(str(source)).name
    for elem in articles:
        try:
            meta, body = parse_article(elem, str(source))
        except IngestError as exc:
            out.append(exc)
            continue
        out.append(Record(meta=meta, body=body, fmt="pubmed", source_name=name,
                          sha256=sha256_hex(_element_bytes(elem))))  # fmt: skip
    return out


def _element_bytes(elem: Any) -> bytes:
    import xml.etree.ElementTree as ET  # serialising only: parsing goes through parse_xml

    return ET.tostring(elem, encoding="utf-8")


# ---------------------------------------------------------------------------------- fetcher


class PubMedClient:
    """A small E-utilities efetch client that follows NCBI's usage rules.

    At most 3 requests per second (10 with an API key), `tool`/`email`/`api_key` sent with every
    request, retries with exponential back-off on network errors, 429 and 5xx (honouring
    Retry-After), and up to 200 PMIDs per request.
    """

    batch_size = 200

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        email: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        tool: str = "net-liver-assistant",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.api_key = api_key
        self.email = email
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.tool = tool
        self.clock = clock
        self.min_interval = 1.0 / (10 if api_key else 3)
        self._last = 0.0
        self._lock = threading.Lock()

    def _wait_turn(self) -> None:
        with self._lock:
            gap = self.min_interval - (self.clock() - self._last)
            if gap > 0:
                self.sleep(gap)
            self._last = self.clock()

    def _params(self, pmids: Sequence[str]) -> dict[str, str]:
        params = {"db": "pubmed", "id": ",".join(pmids), "retmode": "xml", "tool": self.tool}
        if self.email:
            params["email"] = self.email
        if self.api_key:
            params["api_key"] = self.api_key
        return params

    def efetch(self, pmids: Sequence[str]) -> bytes:
        """The efetch XML for up to `batch_size` PMIDs."""
        import httpx

        url = self.base_url + "efetch.fcgi"
        last_problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff * (2 ** (attempt - 1))
                self.sleep(delay)
            self._wait_turn()
            try:
                response = httpx.get(url, params=self._params(pmids), timeout=self.timeout)
            except httpx.TransportError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 200:
                return response.content
            last_problem = f"HTTP {response.status_code}"
            if response.status_code == 429 or response.status_code >= 500:
                retry_after = response.headers.get("Retry-After", "")
                if retry_after.isdigit() and attempt < self.retries:
                    self.sleep(min(float(retry_after), 60.0))
                continue
            raise AssistantError(
                f"NCBI E-utilities refused the request ({last_problem}) at {url}",
                "check the PMIDs and the ASSISTANT_NCBI_API_KEY / ASSISTANT_PUBMED_BASE_URL settings",
            )
        if last_problem.startswith("HTTP"):
            raise AssistantError(
                f"NCBI E-utilities at {url} kept failing ({last_problem}) after "
                f"{self.retries + 1} attempts",
                "try again later",
            )
        raise AssistantError(
            f"cannot reach NCBI E-utilities at {url} ({last_problem})",
            "you seem to be offline: check the network, or download the PubMed XML elsewhere and "
            "add it with `assistant corpus add FILE.xml`",
        )

    def fetch(self, pmids: Sequence[str]) -> tuple[list[Record], list[IngestError]]:
        """Records for the PMIDs, and a refusal for each PMID that could not be used."""
        clean: list[str] = []
        refused: list[IngestError] = []
        for pmid in pmids:
            p = str(pmid).strip()
            if not PMID_RE.match(p):
                raise InputError(f"'{pmid}' is not a PMID", "a PMID is 1 to 9 digits")
            if p not in clean:
                clean.append(p)
        records: list[Record] = []
        for start in range(0, len(clean), self.batch_size):
            batch = clean[start : start + self.batch_size]
            data = self.efetch(batch)
            try:
                found = split_pubmed_xml(data, "efetch response")
            except IngestError as exc:
                if "no PubmedArticle" in exc.problem:
                    found = []
                else:
                    raise
            seen: set[str] = set()
            for item in found:
                if isinstance(item, IngestError):
                    refused.append(item)
                    m = re.search(r"PMID (\d+)", item.source)
                    if m:
                        seen.add(m.group(1))
                    continue
                pmid = str(item.meta.get("pmid") or "")
                seen.add(pmid)
                item.source_name = f"PubMed efetch PMID {pmid}"
                records.append(item)
            for pmid in batch:
                if pmid not in seen:
                    refused.append(IngestError(f"PMID {pmid}", "not found in PubMed",
                                               "check the number"))  # fmt: skip
        return records, refused


def client_from_settings(settings: Any) -> PubMedClient:
    """A client configured by the `pubmed_*` / `ncbi_*` settings."""
    return PubMedClient(
        settings.pubmed_base_url,
        api_key=settings.ncbi_api_key,
        email=settings.ncbi_email,
        timeout=settings.pubmed_timeout,
        retries=settings.pubmed_retries,
        backoff=settings.pubmed_backoff,
    )
