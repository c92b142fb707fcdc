"""The source metadata model (assistant/source.py): one definition the loader, `corpus add`,
`Document`, listings and citations follow."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import yaml

from assistant.citation import citation
from assistant.citation_export import to_bibtex, to_ris
from assistant.corpus import parse_note
from assistant.errors import CorpusError, InputError
from assistant.ingest import Overrides
from assistant.ingest.store import render_note
from assistant.source import (
    CITATION_FIELDS,
    FIELD_ORDER,
    SOURCE_TYPES,
    SourceMetadata,
    field_problem,
)
from assistant.types import Document

DOCS = Path(__file__).resolve().parent.parent / "docs" / "corpus-format.md"
FULL = {
    "id": "rinke-2009-promid",
    "title": "Octreotide LAR in metastatic midgut NETs",
    "year": 2009,
    "source_type": "rct",
    "authors": ["Rinke A", "Müller HH", "et al."],
    "journal": "J Clin Oncol",
    "volume": "27",
    "issue": "28",
    "pages": "4656-4663",
    "pmid": "19704057",
    "doi": "10.1200/JCO.2009.22.8510",
    "url": "https://example.org/promid",
    "topics": ["somatostatin-analogues"],
    "summary": "Octreotide LAR lengthened time to progression.",
    "verified": ["pmid"],
    "page_count": 8,
    "provenance": {"original": "promid.pdf", "format": "pdf", "sha256": "ab", "added": "2025"},
}


def test_every_field_is_described_documented_and_unknown_fields_are_refused() -> None:
    assert set(FULL) == set(FIELD_ORDER), "FULL sets every field of the model"
    docs = DOCS.read_text(encoding="utf-8")
    for name, info in SourceMetadata.model_fields.items():
        assert info.description, f"{name} has no description"
        assert re.search(rf"^{name}:", docs, re.M), f"{name} is not in docs/corpus-format.md"
    schema = SourceMetadata.model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["id", "title", "year", "source_type"]
    assert (
        problem_of({**FULL, "colour": "red"})
        == "unknown field 'colour'; allowed: "
        + ", ".join(FIELD_ORDER)
        + " (see docs/corpus-format.md)"
    )
    assert "did you mean 'authors'?" in problem_of({**FULL, "autors": ["x"]})


def problem_of(meta: dict) -> str:
    text = "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\nText.\n"
    with pytest.raises(CorpusError) as info:
        parse_note(Path("x.md"), text)
    (line,) = info.value.problems
    return line.split(": ", 1)[1]


def test_a_written_note_reads_back_with_every_field_in_the_model_order(tmp_path: Path) -> None:
    text = render_note(FULL, "# Heading\n\nBody text.")
    keys = re.findall(r"^([a-z_]+):", text.split("\n---\n")[0], re.M)
    assert keys == list(FIELD_ORDER)
    doc = parse_note(tmp_path / "n.md", text)
    assert doc.meta == SourceMetadata.model_validate(FULL)
    assert doc.year == 2009 and doc.authors == ("Rinke A", "Müller HH", "et al.")
    assert doc.extra == {"issue": "28", "page_count": 8, "provenance": FULL["provenance"]}
    meta = doc.metadata_dict()
    assert list(meta)[: len(CITATION_FIELDS)] == list(CITATION_FIELDS)
    assert doc.source_dict() == {name: FULL[name] for name in CITATION_FIELDS}
    assert list(meta)[len(CITATION_FIELDS) :] == [
        "volume", "pages", "topics", "summary", "verified", "path", "fingerprint", "extra"
    ]  # fmt: skip
    assert pickle.loads(pickle.dumps(doc)) == doc


def test_documents_built_from_fields_skip_the_note_rules() -> None:
    doc = Document(id="MED-10", title="T", year=0, source_type="other", body="b", path=Path("p"))
    assert doc.year == 0 and doc.authors == () and doc.pmid is None and doc.extra == {}
    assert doc.source_dict()["authors"] == []
    with pytest.raises(TypeError, match="colour"):
        Document(id="a", title="T", year=1, source_type="other", colour=1, body="", path=Path())
    with pytest.raises(AttributeError):
        _ = doc.colour


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("pmid", "1234567890", "pmid must be digits only (1 to 9 of them), got '1234567890'"),
        ("pmid", 123, None),
        ("doi", "doi.org/10.1", "doi must start with '10.', got 'doi.org/10.1'"),
        ("year", 1799, "year 1799 is out of range"),
        ("year", True, "year must be a whole number, got True"),
        ("source_type", "blog", f"source_type 'blog' is not one of {', '.join(SOURCE_TYPES)}"),
        ("id", "Rinke 2009", "id 'Rinke 2009' must be a slug of a-z, 0-9 and '-'"),
        ("topics", {"a": 1}, "topics must be a list, e.g. [a, b]"),
        ("provenance", {"a": [1]}, "provenance must be a mapping of single values"),
        ("summary", ["a"], "summary must be a single value, not a list or mapping"),
    ],
)
def test_one_rule_per_field(field: str, value: object, problem: str | None) -> None:
    found = field_problem(field, value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_command_line_overrides_follow_the_model_rules() -> None:
    for overrides, flag in (
        (Overrides(pmid="1234567890"), "--pmid"),
        (Overrides(doi="https://doi.org/10.1/x"), "--doi"),
        (Overrides(year=1700), "--year"),
        (Overrides(source_type="blog"), "--type"),
    ):
        with pytest.raises(InputError, match=flag):
            overrides.check()
    Overrides(pmid="19704057", doi="10.1/x", year=2009, source_type="rct").check()


def test_every_problem_of_a_note_at_its_line_in_file_order(tmp_path: Path) -> None:
    text = (
        "---\nid: x\n2020: a key that is a number\nyear: twenty\nsource_type: blog\n"
        "autors: [Smith J]\npmid: [1]\n---\n\nBody.\n"
    )
    with pytest.raises(CorpusError) as info:
        parse_note(tmp_path / "x.md", text)
    found = [(int(p.split(":")[1]), p.split(": ", 1)[1]) for p in info.value.problems]
    assert [line for line, _ in found] == [1, 3, 4, 5, 6, 7]
    assert found[0][1] == "missing required field 'title'"
    assert found[1][1].startswith("unknown field '2020'")
    assert found[4][1].startswith("unknown field 'autors'; did you mean 'authors'?")
    assert found[5][1] == "pmid must be a single value, not a list or mapping"


def test_citations_and_exports_carry_every_citation_field() -> None:
    doc = Document(meta=SourceMetadata.model_validate(FULL), body="b", path=Path("p"))
    source = doc.metadata_dict()
    text = citation(source)
    for name in ("title", "journal", "year", "volume", "pages", "pmid", "doi", "url"):
        assert str(FULL[name]) in text, name
    ris, bibtex = to_ris([source]), to_bibtex([source])
    for value in ("Rinke, A", "J Clin Oncol", "2009", "27", "4656", "19704057", FULL["doi"]):
        assert value in ris and value in bibtex, value
