"""Every bundled note is valid, and the coverage table in corpus/README.md is true and complete."""

import re
from pathlib import Path

import pytest

from assistant.corpus import load_corpus
from assistant.coverage import (
    AFTER_COLUMN,
    TOPICS,
    after_review_coverage,
    coverage,
    parse_coverage_table,
)
from assistant.currency import REVIEW_YEAR
from assistant.source import PMID_RE, SOURCE_TYPES

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
REQUIRED_SECTIONS = ("Key findings", "Limitations", "Implications for liver metastases")
DOCS, WARNINGS = load_corpus(CORPUS)
HAND_WRITTEN = [d for d in DOCS if d.path.parent == CORPUS]


def sections(body: str) -> dict[str, str]:
    parts = re.split(r"^##\s+(.+?)\s*$", body, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_corpus_loads_without_warnings():
    assert WARNINGS == []
    assert len({d.id for d in DOCS}) == len(DOCS)


def test_size_targets():
    words = sum(len(d.body.split()) for d in HAND_WRITTEN)
    assert len(HAND_WRITTEN) >= 70
    assert words >= 35_000


@pytest.mark.parametrize("doc", HAND_WRITTEN, ids=lambda d: d.id)
def test_note_is_well_formed(doc):
    assert doc.path.name == f"{doc.id}.md"
    assert doc.source_type in SOURCE_TYPES
    if doc.pmid:
        assert PMID_RE.match(doc.pmid)
    if doc.doi:
        assert doc.doi.startswith("10.")
    assert set(doc.verified) <= {"pmid", "doi"}
    for ident in doc.verified:
        assert getattr(doc, ident), f"{doc.id}: verified {ident} but the field is empty"
    found = sections(doc.body)
    for name in REQUIRED_SECTIONS:
        assert found.get(name, "").strip(), f"{doc.id}: section '{name}' missing or empty"
    assert doc.topics and set(doc.topics) <= set(TOPICS), f"{doc.id}: topics {doc.topics}"


def test_the_review_and_the_management_map_are_present():
    by_id = {d.id: d for d in DOCS}
    review = by_id["rossi-2012-review"]
    assert review.doi == "10.1007/s11605-012-1951-1" and review.year == 2012
    assert review.journal and "Gastrointest Surg" in review.journal
    links = set(re.findall(r"\b([a-z0-9]+(?:-[a-z0-9]+)+)\b", by_id["management-map"].body))
    cited = links & set(by_id)
    assert len(cited) >= 15, "the management map points to the notes that support it"


def test_management_map_links_resolve():
    body = next(d for d in DOCS if d.id == "management-map").body
    for ref_group in re.findall(r"\(see ([^)]+)\)", body):
        for ref in re.split(r",\s*|;\s*", ref_group):
            ref = ref.strip().rstrip(".")
            if re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)+", ref):
                assert ref in {d.id for d in DOCS}, f"management map cites missing note {ref}"


def test_coverage_table_is_current_and_every_topic_has_two_notes():
    table = parse_coverage_table((CORPUS / "README.md").read_text(encoding="utf-8"))
    assert table == coverage(HAND_WRITTEN), "run: python -m assistant.coverage corpus"
    for topic in TOPICS:
        assert len(table[topic]) >= 2, f"topic {topic} has fewer than two notes"


def test_coverage_table_shows_the_evidence_after_the_review():
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    after = parse_coverage_table(readme, AFTER_COLUMN)
    assert after == after_review_coverage(HAND_WRITTEN), "run: python -m assistant.coverage corpus"
    years = {d.id: d.year for d in HAND_WRITTEN}
    for topic, ids in parse_coverage_table(readme).items():
        newer = [i for i in ids if years[i] > REVIEW_YEAR]
        assert after[topic] == newer, f"topic {topic}: the after-{REVIEW_YEAR} column is wrong"
