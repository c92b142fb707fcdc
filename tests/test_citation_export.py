"""RIS and BibTeX export: what is written parses back with the same fields, nothing is invented."""

from __future__ import annotations

import bibtexparser
import pytest
import rispy
from pylatexenc.latex2text import LatexNodes2Text

from assistant.citation_export import (
    check_format,
    export,
    inverted_name,
    passage_source_ids,
    split_authors,
    to_bibtex,
    to_ris,
)
from assistant.currency import corpus_stamp, is_after_review, year_label
from assistant.errors import InputError

FULL = {
    "id": "rinke-2009-promid",
    "title": "Placebo-controlled study of octreotide LAR: 50% & ≥ 6 months, α-interferon",
    "authors": ["Rinke A", "Müller HH", "Ćwikła JB", "Arnold R", "et al."],
    "journal": "J Clin Oncol",
    "year": 2009,
    "volume": "27",
    "pages": "4656-4663",
    "pmid": "19704057",
    "doi": "10.1200/JCO_2009.22.8510",
    "url": "https://example.org/a_b?c=1&d=2",
    "source_type": "rct",
}
BARE = {"id": "bare-note", "title": "A note with nothing but a title", "year": 2018,
        "source_type": "guideline", "authors": [], "journal": None, "pmid": None}  # fmt: skip
GROUP = {"id": "group-2023", "title": "Consensus", "year": 2023, "source_type": "consensus",
         "authors": ["NANETS Consensus Group"], "journal": "Pancreas", "pages": "e12"}  # fmt: skip
BOOK = {"id": "book-2010", "title": "A textbook chapter", "year": 2010, "source_type": "textbook",
        "authors": ["Kloppel G"]}  # fmt: skip


def decode(value: str) -> str:
    return LatexNodes2Text().latex_to_text(value)


# ---------------------------------------------------------------------------- RIS
def test_ris_round_trip_keeps_every_field():
    (record,) = rispy.loads(to_ris([FULL]))
    assert record == {
        "type_of_reference": "JOUR",
        "authors": ["Rinke, A", "Müller, HH", "Ćwikła, JB", "Arnold, R"],
        "title": FULL["title"],
        "journal_name": "J Clin Oncol",
        "year": "2009",
        "volume": "27",
        "start_page": "4656",
        "end_page": "4663",
        "doi": FULL["doi"],
        "accession_number": "19704057",
        "name_of_database": "PubMed",
        "urls": [FULL["url"]],
        "id": "rinke-2009-promid",
    }


def test_ris_leaves_out_what_a_source_does_not_have():
    bare, group, book = rispy.loads(to_ris([BARE, GROUP, BOOK]))
    assert bare == {"type_of_reference": "GEN", "title": BARE["title"], "year": "2018",
                    "id": "bare-note"}  # fmt: skip
    assert group["type_of_reference"] == "JOUR"
    assert group["authors"] == ["NANETS Consensus Group"]  # not split into surname/initials
    assert group["start_page"] == "e12" and "end_page" not in group
    assert book["type_of_reference"] == "BOOK" and "journal_name" not in book
    text = to_ris([BARE])
    for tag in ("AU  -", "JO  -", "DO  -", "AN  -", "SP  -", "UR  -", "VL  -"):
        assert tag not in text


# ---------------------------------------------------------------------------- BibTeX
def test_bibtex_round_trip_keeps_every_field():
    library = bibtexparser.parse_string(to_bibtex([FULL]))
    assert not library.failed_blocks
    (entry,) = library.entries
    assert entry.entry_type == "article" and entry.key == "rinke-2009-promid"
    fields = {f.key: f.value for f in entry.fields}
    assert set(fields) == {"author", "title", "journal", "year", "volume", "pages", "doi",
                           "pmid", "url"}  # fmt: skip
    assert decode(fields["author"]).split(" and ") == [
        "Rinke, A", "Müller, HH", "Ćwikła, JB", "Arnold, R", "others"]  # fmt: skip
    assert decode(fields["title"]) == FULL["title"]
    assert fields["journal"] == "J Clin Oncol" and fields["year"] == "2009"
    assert fields["volume"] == "27" and fields["pages"] == "4656--4663"
    # verbatim fields are not LaTeX-escaped
    assert fields["doi"] == FULL["doi"] and fields["url"] == FULL["url"]
    assert fields["pmid"] == "19704057"


def test_bibtex_leaves_out_what_a_source_does_not_have():
    library = bibtexparser.parse_string(to_bibtex([BARE, GROUP, BOOK]))
    bare, group, book = library.entries
    assert bare.entry_type == "misc"
    assert {f.key for f in bare.fields} == {"title", "year"}
    assert group.entry_type == "article" and group["author"] == "{NANETS Consensus Group}"
    assert group["pages"] == "e12"
    assert book.entry_type == "book" and "journal" not in book.fields_dict


def test_authors_and_names():
    assert split_authors(["Rinke A et al."]) == (["Rinke A"], True)
    assert split_authors(["A B", "et al"]) == (["A B"], True)
    assert split_authors(None) == ([], False)
    assert inverted_name("Braat AJAT") == "Braat, AJAT"
    assert inverted_name("van der Zwan JM") == "van der Zwan, JM"
    assert inverted_name("NANETS Consensus Group") is None
    assert inverted_name("Oberg") is None


def test_formats_and_empty_input():
    assert check_format(" RIS ") == "ris" and check_format("bib") == "bibtex"
    with pytest.raises(InputError) as err:
        check_format("endnote")
    assert "ris, bibtex" in (err.value.hint or "")
    assert export([], "ris") == "" and export([], "bibtex") == ""
    assert export([FULL], "bibtex").startswith("@article{rinke-2009-promid,")


def test_passage_source_ids_keep_rank_order_once(fake_assistant):
    passages = fake_assistant.search("octreotide embolization PRRT", k=6)
    ids = passage_source_ids(passages)
    assert ids == list(dict.fromkeys(p.source["id"] for p in passages))
    records = fake_assistant.source_records(ids)
    assert [r["id"] for r in records] == ids and "volume" in records[0]
    with pytest.raises(InputError):
        fake_assistant.source_records(["nope"])


# ---------------------------------------------------------------------------- currency
def test_after_review_and_year_labels():
    assert is_after_review(2013) and not is_after_review(2012) and not is_after_review(None)
    assert year_label({"year": 2017}) == "2017 (after the 2012 review)"
    assert year_label({"year": 2017}, short=True) == "2017 (after 2012)"
    assert year_label({"year": 2009}) == "2009" and year_label({}) == "—"


def test_corpus_stamp_from_manifest_and_sources():
    stamp = corpus_stamp(
        {"corpus": {"fingerprint": "abc"}}, {"a": {"year": 2001}, "b": {"year": 2024}}
    )
    assert stamp == {"fingerprint": "abc", "newest_source_year": 2024, "n_sources": 2,
                     "review_year": 2012}  # fmt: skip
    assert corpus_stamp({}, {})["newest_source_year"] is None


def test_every_answer_carries_the_stamp_and_marks(fake_assistant):
    answer = fake_assistant.ask("lutetium dotatate kidney toxicity", k=4).to_dict()
    assert answer["corpus"] == fake_assistant.corpus_stamp()
    assert answer["corpus"]["n_sources"] == 4 and answer["corpus"]["newest_source_year"] == 2017
    for p in answer["passages"]:
        assert p["source"]["after_review"] is (p["source"]["year"] > 2012)
