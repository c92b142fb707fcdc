from pathlib import Path

import pytest

from assistant.corpus import load_corpus, parse_note, read_body, with_body
from assistant.errors import AssistantError, CorpusError

GOOD = """---
id: good-note
title: A good note
year: 2010
source_type: cohort
authors: [Smith J]
pmid: "123"
doi: 10.1000/xyz
---

# Heading

## Key findings
Something was found.
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_fixture_corpus_loads(corpus_dir: Path):
    docs, warnings = load_corpus(corpus_dir)
    assert {d.id for d in docs} == {
        "octreotide-trial", "liver-transplant", "embolization-review", "prrt-study"
    }  # fmt: skip
    assert warnings == []
    doc = next(d for d in docs if d.id == "octreotide-trial")
    assert doc.pmid == "12345" and doc.doi == "10.9999/fixture.1" and doc.year == 2009
    text = doc.path.read_text(encoding="utf-8")
    assert text[doc.body_offset :] == doc.body


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (GOOD.replace("year: 2010", "year: twenty"), 4, "year must be a whole number"),
        (GOOD.replace("source_type: cohort", "source_type: blog"), 5, "source_type 'blog'"),
        (GOOD.replace('pmid: "123"', "pmid: PMID123"), 7, "pmid must be digits"),
        (GOOD.replace("doi: 10.1000/xyz", "doi: doi.org/xyz"), 8, "doi must start with '10.'"),
        (GOOD.replace("title: A good note\n", ""), 1, "missing required field 'title'"),
        (GOOD.replace("authors: [Smith J]", "authors: [Smith J"), 7, "sequence on line 6"),
        (GOOD.replace("id: good-note", "id: Good Note"), 2, "must be a slug"),
        (GOOD.replace("year: 2010", "year: 2010\ncolour: red"), 5, "unknown field 'colour'"),
        (GOOD.split("---\n\n")[0], 1, "not closed"),
        ("# Just markdown\n", 1, "no YAML front matter"),
        ("", 1, "empty file"),
        (GOOD.split("# Heading")[0], 10, "no text"),
    ],
)
def test_bad_note_names_file_and_line(tmp_path: Path, text: str, line: int, fragment: str):
    path = write(tmp_path, "bad.md", text)
    with pytest.raises(CorpusError) as info:
        parse_note(path)
    message = "\n".join(info.value.problems)
    assert f"{path}:{line}:" in message
    assert fragment in message


@pytest.mark.parametrize("bodies", [True, False])
def test_duplicate_ids_and_every_bad_file_reported(tmp_path: Path, bodies: bool):
    write(tmp_path, "a.md", GOOD)
    write(tmp_path, "b.md", GOOD)
    write(
        tmp_path,
        "c.md",
        GOOD.replace("id: good-note", "id: other").replace("year: 2010", "year: x"),
    )
    write(tmp_path, "d.md", GOOD.split("# Heading")[0].replace("good-note", "no-text"))
    with pytest.raises(CorpusError) as info:
        load_corpus(tmp_path, bodies=bodies)
    problems = info.value.problems
    assert any("d.md:10: the note has front matter but no text" in p for p in problems)
    assert any("duplicate id 'good-note'" in p and "b.md:1" in p for p in problems)
    assert any("c.md:4" in p for p in problems)


def test_non_notes_are_reported_not_dropped_silently(tmp_path: Path):
    write(tmp_path, "a.md", GOOD)
    write(tmp_path, "README.md", "# about the corpus")
    (tmp_path / "gold").mkdir()
    write(tmp_path / "gold", "questions.jsonl", "{}")
    write(tmp_path, "paper.pdf", "%PDF")
    docs, warnings = load_corpus(tmp_path)
    assert [d.id for d in docs] == ["good-note"]
    assert len(warnings) == 1 and "paper.pdf" in warnings[0]


def test_missing_or_empty_corpus(tmp_path: Path):
    with pytest.raises(AssistantError, match="corpus folder not found"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(AssistantError, match="no notes found"):
        load_corpus(tmp_path)


def test_invalid_utf8_names_line(tmp_path: Path):
    path = tmp_path / "x.md"
    path.write_bytes(GOOD.encode() + b"\n\xff\xfe bad bytes\n")
    with pytest.raises(CorpusError, match=r"x\.md:16: not valid UTF-8"):
        parse_note(path)


def test_a_corpus_loaded_without_bodies_reads_each_again(corpus_dir: Path):
    """`bodies=False` keeps everything but the bodies; `read_body` gives each back as
    `load_corpus` would have."""
    full, _ = load_corpus(corpus_dir)
    bare, warnings = load_corpus(corpus_dir, bodies=False)
    assert warnings == []
    assert [d.body for d in bare] == [""] * len(full)
    for a, b in zip(full, bare, strict=True):
        assert (a.meta, a.path, a.body_offset, a.fingerprint) == (b.meta, b.path, b.body_offset,
                                                                  b.fingerprint)  # fmt: skip
        assert read_body(b) == a.body and a.body.strip()
        assert with_body(b) == a


def test_a_note_changed_since_it_was_loaded_is_not_read_again(corpus_dir: Path):
    docs, _ = load_corpus(corpus_dir, bodies=False)
    doc = docs[0]
    doc.path.write_text(doc.path.read_text(encoding="utf-8") + "\nOne more line.\n", "utf-8")
    with pytest.raises(AssistantError) as info:
        read_body(doc)
    assert str(doc.path) in info.value.message and "changed" in info.value.message
    assert "assistant index" in (info.value.hint or "")
    doc.path.unlink()
    with pytest.raises(AssistantError, match="cannot be read again"):
        read_body(doc)
