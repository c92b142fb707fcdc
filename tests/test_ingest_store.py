"""The corpus store and `assistant corpus` commands: text, duplicates, bad batches, list/show/remove."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import snapshot
from typer.testing import CliRunner

from assistant.corpus import load_corpus
from assistant.errors import InputError
from assistant.ingest import CorpusStore, Overrides

DATA = Path(__file__).parent / "data" / "ingest"
runner = CliRunner()


def cli(*args: str):
    from assistant.cli import app

    return runner.invoke(app, list(args))


def test_markdown_note_and_plain_text(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    store = CorpusStore(corpus)
    report = store.add([DATA / "note_in_format.md", DATA / "plain_notes.txt"], Overrides(year=2017))
    assert report.ok, report.refused
    note = store.get("fixture-somatostatin-note")
    assert note.year == 2018  # a note's own metadata wins over --year
    assert note.pmid == "90000020" and note.topics == ("somatostatin-analogues",)
    assert note.extra["provenance"]["original"] == "note_in_format.md"
    assert "narwhal dose" in note.body
    text_id = next(r["id"] for r in report.added if r["format"] == "text")
    doc = store.get(text_id)
    assert doc.title == "Fixture notes from a tumour board on hepatic radioembolisation"
    assert doc.year == 2017 and doc.source_type == "other"
    assert doc.body.count("Fixture notes from a tumour board") == 1  # title line became the heading
    assert "platypus dosimetry protocol" in doc.body
    docs, warnings = load_corpus(corpus)
    assert len(docs) == 2 and not warnings  # notes only; originals are not copied


def test_duplicates_are_refused_and_nothing_changes(corpus_dir: Path) -> None:
    store = CorpusStore(corpus_dir)
    assert store.add([DATA / "pubmed_two.xml"]).ok
    before = snapshot(corpus_dir)
    again = store.add([DATA / "pubmed_two.xml", DATA / "pmc_article.xml"])
    assert len(again.refused) == 2 and all("already in the corpus as" in r for r in again.refused)
    assert all("assistant corpus remove" in r for r in again.refused)
    assert [r["format"] for r in again.added] == ["jats"]
    after = snapshot(corpus_dir)
    assert {k: after[k] for k in before} == before
    # same PMID, or same DOI, as a hand-written note in the corpus
    dup = corpus_dir.parent / "dup.txt"
    dup.write_text("Some text about the same paper, typed again by hand.\n")
    rep = store.add([dup], Overrides(year=2010, pmid="12345"))
    assert len(rep.refused) == 1 and "'octreotide-trial'" in rep.refused[0]
    rep = store.add([dup], Overrides(year=2010, doi="10.9999/FIXTURE.1"))
    assert len(rep.refused) == 1 and "'octreotide-trial'" in rep.refused[0]
    assert snapshot(corpus_dir) == after


def test_duplicates_within_one_batch(tmp_path: Path) -> None:
    copy = tmp_path / "copy.xml"
    copy.write_bytes((DATA / "pmc_article.xml").read_bytes())
    report = CorpusStore(tmp_path / "c").add([DATA / "pmc_article.xml", copy])
    assert len(report.added) == 1 and len(report.refused) == 1
    assert "copy.xml" in report.refused[0]


def test_cli_add_mixed_batch_exit_code_and_messages(corpus_dir: Path) -> None:
    before = snapshot(corpus_dir)
    result = cli("corpus", "add", str(DATA), "--year", "2019", "--corpus", str(corpus_dir))
    assert result.exit_code == 1
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    names = ["empty.txt", "entities.xml", "malformed.xml", "other_root.xml",
             "pubmed_no_abstract.xml", "unsupported.docx"]  # fmt: skip
    assert len(errors) == len(names)
    for name in names:
        assert any(name in e for e in errors), name
    assert "6 input(s) refused; 5 added" in result.stderr
    after = snapshot(corpus_dir)
    assert {k: after[k] for k in before} == before
    docs, _ = load_corpus(corpus_dir)
    assert len(docs) == 4 + 5


def test_cli_add_json_and_success_exit_code(tmp_path: Path) -> None:
    result = cli("corpus", "add", str(DATA / "pmc_article.xml"), "--json", "--corpus",
                 str(tmp_path / "c"))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["refused"] == [] and out["added"][0]["format"] == "jats"


def test_missing_path_and_sidecar_given_as_input(tmp_path: Path) -> None:
    side = tmp_path / "x.pdf.yaml"
    side.write_text("year: 2020\n")
    report = CorpusStore(tmp_path / "c").add([tmp_path / "nope.pdf", side])
    assert len(report.refused) == 2
    assert "no such file" in report.refused[0] and "sidecar" in report.refused[1]


def test_bad_sidecar_is_refused(tmp_path: Path) -> None:
    doc = tmp_path / "n.txt"
    doc.write_text("A title line\n\nSome body text about octreotide and the liver.\n")
    (tmp_path / "n.txt.yaml").write_text("year: 2020\ncolour: blue\n")
    (line,) = CorpusStore(tmp_path / "c").add([doc]).refused
    assert "n.txt.yaml" in line and "colour" in line


def test_flag_checks(tmp_path: Path) -> None:
    store = CorpusStore(tmp_path / "c")
    with pytest.raises(InputError, match="--type"):
        store.add([DATA / "plain_notes.txt"], Overrides(source_type="blog"))
    with pytest.raises(InputError, match="one document"):
        store.add([DATA / "plain_notes.txt", DATA / "note_in_format.md"], Overrides(title="T"))
    result = cli("corpus", "add", str(DATA / "plain_notes.txt"), "--pmid", "abc", "--corpus",
                 str(tmp_path / "c"))  # fmt: skip
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "--pmid 'abc'" in result.stderr


def test_list_show_remove(corpus_dir: Path) -> None:
    assert (
        cli("corpus", "add", str(DATA / "pmc_article.xml"), "--corpus", str(corpus_dir)).exit_code
        == 0
    )
    listed = cli("corpus", "list", "--json", "--corpus", str(corpus_dir))
    rows = json.loads(listed.stdout)
    added = [r for r in rows if r["added"]]
    assert len(rows) == 5 and len(added) == 1 and added[0]["chunks"] >= 3
    doc_id = added[0]["id"]
    table = cli("corpus", "list", "--corpus", str(corpus_dir))
    assert table.exit_code == 0 and "chunks" in table.stdout and "2022" in table.stdout
    shown = cli("corpus", "show", doc_id, "--corpus", str(corpus_dir))
    assert shown.exit_code == 0
    assert "provenance.sha256" in shown.stdout and "pmc_article.xml" in shown.stdout
    assert "quokka" in shown.stdout
    info = json.loads(cli("corpus", "show", doc_id, "--json", "--corpus", str(corpus_dir)).stdout)
    assert (
        info["extra"]["provenance"]["format"] == "jats"
        and "Surgery > Transplantation" in info["sections"]
    )
    hand = next(r["id"] for r in rows if not r["added"])
    refused = cli("corpus", "remove", hand, "--corpus", str(corpus_dir))
    assert refused.exit_code == 1 and "hand-written" in refused.stderr
    removed = cli("corpus", "remove", doc_id, "--corpus", str(corpus_dir))
    assert removed.exit_code == 0
    assert len(load_corpus(corpus_dir)[0]) == 4
    unknown = cli("corpus", "show", doc_id, "--corpus", str(corpus_dir))
    assert unknown.exit_code == 1 and "assistant corpus list" in unknown.stderr
