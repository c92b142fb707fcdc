"""PubMed efetch XML and PMC/JATS full-text XML readers, and their refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.corpus import load_corpus
from assistant.ingest import CorpusStore, IngestError, Overrides, read_file
from assistant.ingest.base import parse_xml
from assistant.ingest.pubmed import source_type_for

DATA = Path(__file__).parent / "data" / "ingest"


def test_pubmed_fields_structured_abstract_and_types() -> None:
    first, second = read_file(DATA / "pubmed_two.xml")
    m = first.meta
    assert m["pmid"] == "90000001" and m["doi"] == "10.9999/fixture.2020.001"
    assert m["year"] == 2020  # the PubDate, not the electronic ArticleDate
    assert m["journal"] == "Fixture J Hepat Oncol"
    assert (m["volume"], m["issue"], m["pages"]) == ("12", "4", "101-110")
    assert m["authors"] == ["Quartermain AB", "Østergaard B", "Fixture NET Study Group"]
    assert m["source_type"] == "rct"
    assert m["url"] == "https://pubmed.ncbi.nlm.nih.gov/90000001/"
    for heading in (
        "## Abstract",
        "### Background",
        "### Methods",
        "### Results",
        "### Conclusions",
    ):
        assert heading in first.body
    assert "zebrafish-marker response rate was 44%" in first.body
    assert second.meta["year"] == 2015  # from MedlineDate '2015 Sep-Oct'
    assert second.meta["source_type"] == "meta-analysis"  # beats Review / Systematic Review
    assert (
        second.meta["doi"] is None
        and second.meta["journal"] == "Fixture reviews in endocrine surgery"
    )
    assert first.sha256 != second.sha256


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        (["Journal Article"], "other"),
        (["Journal Article", "Review"], "review"),
        (["Review", "Systematic Review"], "review"),
        (["Practice Guideline"], "guideline"),
        (["Consensus Development Conference"], "consensus"),
        (["Clinical Trial, Phase III", "Multicenter Study"], "rct"),
        (["Clinical Trial, Phase II"], "cohort"),
        (["Observational Study"], "cohort"),
        (["Case Reports"], "case-series"),
    ],
)
def test_publication_types_map_to_source_types(types: list[str], expected: str) -> None:
    assert source_type_for(types) == expected


def test_jats_keeps_sections_headings_and_metadata() -> None:
    (record,) = read_file(DATA / "pmc_article.xml")
    m = record.meta
    assert m["title"].startswith("Surgical and locoregional management") and "fixture" in m["title"]
    assert m["authors"] == ["Lindqvist ML", "Okonkwo CE"]  # the editor is not an author
    assert (m["year"], m["volume"], m["issue"], m["pages"]) == (2022, "43", "2", "211-229")
    assert (m["pmid"], m["doi"]) == ("90000010", "10.9999/fixture.2022.010")
    assert m["journal"] == "Fixture Endocr Rev" and m["source_type"] == "review"
    assert m["url"].endswith("/PMC9000010/")
    body = record.body
    assert body.count("## Abstract") == 1 and "### Purpose" in body
    assert "## Surgery" in body and "### Debulking threshold" in body
    assert "quokka threshold rule" in body
    assert "- Ki-67 below 10%." in body
    assert "figure caption" not in body and "Reference text" not in body
    assert "[1]" in body  # inline citation kept


def test_jats_sections_become_chunk_sections(tmp_path: Path) -> None:
    report = CorpusStore(tmp_path / "c").add([DATA / "pmc_article.xml"])
    assert report.ok, report.refused
    from assistant.chunk import chunk_document

    (doc,), _ = load_corpus(tmp_path / "c")
    sections = {c.section for c in chunk_document(doc, 40, 5)}
    assert "Surgery > Debulking threshold" in sections
    assert "Abstract > Purpose" in sections


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("malformed.xml", ["malformed XML", "line", "download it again"]),
        ("entities.xml", ["declares entities"]),
        ("other_root.xml", ["unknown kind", "<rss>"]),
        ("empty.txt", ["empty file"]),
        ("unsupported.docx", ["unsupported file type '.docx'", "supported:"]),
    ],
)
def test_bad_inputs_give_one_clear_line(name: str, words: list[str]) -> None:
    with pytest.raises(IngestError) as exc:
        read_file(DATA / name)
    line = exc.value.line()
    assert "\n" not in line and line.startswith(str(DATA / name))
    for word in words:
        assert word in line


def test_pubmed_record_without_abstract_is_refused(tmp_path: Path) -> None:
    report = CorpusStore(tmp_path / "c").add([DATA / "pubmed_no_abstract.xml"])
    (line,) = report.refused
    assert "PMID 90000003" in line and "no abstract" in line and "full text" in line


def test_flags_do_not_override_curated_xml_metadata(tmp_path: Path) -> None:
    report = CorpusStore(tmp_path / "c").add([DATA / "pubmed_two.xml"], Overrides(year=1999,
                                                                                 source_type="other"))  # fmt: skip
    assert report.ok
    assert sorted(r["year"] for r in report.added) == [2015, 2020]
    assert {r["source_type"] for r in report.added} == {"rct", "meta-analysis"}


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',  # external entity (XXE)
        '<!DOCTYPE a [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>',  # parameter entity
        '<!DOCTYPE a [<!ENTITY b "bbbbbbbbbb"><!ENTITY c "&b;&b;&b;&b;&b;">]>',  # expansion
    ],
)
def test_xml_with_entity_declarations_is_refused(doctype: str) -> None:
    data = f'<?xml version="1.0"?>\n{doctype}\n<PubmedArticleSet>&xxe;</PubmedArticleSet>'
    with pytest.raises(IngestError, match="declares entities"):
        parse_xml(data.encode(), "evil.xml")


def test_a_doctype_without_entities_is_accepted() -> None:
    data = b'<?xml version="1.0"?>\n<!DOCTYPE a PUBLIC "-//NLM//DTD x//EN" "x.dtd">\n<a>ok</a>'
    assert parse_xml(data, "plain.xml").text == "ok"
