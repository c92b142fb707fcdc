from pathlib import Path

from assistant.chunk import (
    chunk_document,
    count_tokens,
    embedding_text,
    sentence_spans,
    split_sentences,
)
from assistant.corpus import parse_note


def test_sentences_respect_abbreviations_and_decimals():
    text = "Rinke A. et al. reported 14.3 months vs. 6 months. Survival was 84.7 months. Next one."
    sentences = [text[s:e] for s, e in split_sentences(text)]
    assert sentences == [
        "Rinke A. et al. reported 14.3 months vs. 6 months.",
        "Survival was 84.7 months.",
        "Next one.",
    ]


def test_list_items_are_separate_sentences():
    text = "- First finding here.\n- Second finding here.\n\nA paragraph\ncontinues here."
    got = [text[s:e] for s, e in sentence_spans(text)]
    assert got == [
        "- First finding here.",
        "- Second finding here.",
        "A paragraph\ncontinues here.",
    ]


def test_chunks_keep_doc_section_and_span(corpus_dir: Path):
    doc = parse_note(corpus_dir / "embolization-review.md")
    chunks = chunk_document(doc, max_tokens=60, overlap_tokens=10)
    source = doc.path.read_text(encoding="utf-8")
    assert [c.id for c in chunks] == [f"embolization-review#{i}" for i in range(len(chunks))]
    for c in chunks:
        assert source[c.start : c.end] == c.text
        assert c.doc_id == "embolization-review"
    sections = [c.section for c in chunks]
    assert "Key findings" in sections
    assert "Key findings > Complications" in sections
    assert not any("---" in c.text or c.text.startswith("#") for c in chunks)


def test_windows_are_bounded_and_overlap(tmp_path: Path):
    sentences = " ".join(f"Sentence number {i} says something about tumours." for i in range(40))
    note = tmp_path / "long.md"
    note.write_text(
        f"---\nid: long\ntitle: Long\nyear: 2000\nsource_type: other\n---\n\n## Body\n{sentences}\n",
        encoding="utf-8",
    )
    doc = parse_note(note)
    chunks = chunk_document(doc, max_tokens=50, overlap_tokens=12)
    assert len(chunks) > 5
    for c in chunks:
        assert count_tokens(c.text) <= 50
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end, "consecutive chunks overlap"
        assert b.start > a.start, "chunking always advances"
    assert chunks[-1].text.endswith("Sentence number 39 says something about tumours.")


def test_page_markers_set_chunk_page(tmp_path: Path):
    note = tmp_path / "paged.md"
    note.write_text(
        "---\nid: paged\ntitle: Paged\nyear: 2000\nsource_type: other\n---\n\n"
        "<!-- page: 1 -->\nFirst page text is here.\n\n<!-- page: 2 -->\n## Results\n"
        "Second page text is here.\n",
        encoding="utf-8",
    )
    chunks = chunk_document(parse_note(note), max_tokens=200, overlap_tokens=10)
    assert [(c.page, c.text) for c in chunks] == [
        (1, "First page text is here."),
        (2, "Second page text is here."),
    ]


def test_embedding_text_has_title_and_section(corpus_dir: Path):
    doc = parse_note(corpus_dir / "octreotide-trial.md")
    chunk = chunk_document(doc)[1]
    text = embedding_text(chunk, doc.title)
    assert text.startswith(f"{doc.title}. {chunk.section}.")


def test_windows_do_not_cross_pages(tmp_path: Path):
    note = tmp_path / "pages.md"
    note.write_text(
        "---\nid: pages\ntitle: Pages\nyear: 2000\nsource_type: other\n---\n\n"
        "<!-- page: 1 -->\nEnd of the first page.\n<!-- page: 2 -->\n"
        "Top of the second page continues.\nMore on page two.\n",
        encoding="utf-8",
    )
    chunks = chunk_document(parse_note(note), max_tokens=200, overlap_tokens=20)
    assert [(c.page, c.text.splitlines()[0]) for c in chunks] == [
        (1, "End of the first page."),
        (2, "Top of the second page continues."),
    ]
