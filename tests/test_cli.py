import json
import re
from pathlib import Path

import pytest
from helpers import FakeEmbedder
from typer.testing import CliRunner

from assistant.cli import app

runner = CliRunner()


@pytest.fixture
def fake_model(monkeypatch):
    """Make the CLI load the fake embedder instead of the real model."""
    fake = FakeEmbedder()
    monkeypatch.setattr("assistant.lifecycle.load_embedder", lambda *a, **k: fake)
    monkeypatch.setattr("assistant.lifecycle.describe_model", lambda name: (name, fake.fingerprint))
    monkeypatch.setenv("ASSISTANT_ABSTAIN_THRESHOLD", "0.2")
    return fake


def run(*args: str):
    return runner.invoke(app, list(args))


def paths(corpus_dir: Path, tmp_path: Path) -> list[str]:
    return ["--corpus", str(corpus_dir), "--index", str(tmp_path / "idx")]


def test_index_then_ask_json(fake_model, corpus_dir: Path, tmp_path: Path):
    result = run("index", *paths(corpus_dir, tmp_path))
    assert result.exit_code == 0, result.output
    assert "Indexed 4 sources" in result.stdout
    result = run("ask", "median time to progression with octreotide", "--json", "-k", "3",
                 *paths(corpus_dir, tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # exactly one JSON object
    assert data["question"] == "median time to progression with octreotide"
    assert data["abstained"] is False
    assert re.search(r"\[[123]\]", data["answer"])
    assert len(data["passages"]) == 3
    assert data["passages"][0]["source"]["pmid"] == "12345"


def test_ask_builds_index_on_first_use_and_prints_rich(fake_model, corpus_dir, tmp_path):
    result = run("ask", "Milan criteria transplantation", *paths(corpus_dir, tmp_path))
    assert result.exit_code == 0, result.output
    assert "Answer" in result.stdout and "Sources" in result.stdout
    assert (tmp_path / "idx" / "manifest.json").exists()


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_modes(fake_model, corpus_dir, tmp_path, mode):
    result = run("ask", "embolization contraindications", "--mode", mode, "--json",
                 *paths(corpus_dir, tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mode"] == mode


def test_user_errors_are_one_line_without_traceback(fake_model, corpus_dir, tmp_path):
    cases = [
        (["ask", "   ", *paths(corpus_dir, tmp_path)], "question is empty"),
        (["ask", "x", "--mode", "fuzzy", *paths(corpus_dir, tmp_path)], "unknown mode"),
        (["ask", "x", "--corpus", str(tmp_path / "missing"), "--index", str(tmp_path / "i")],
         "corpus folder not found"),
    ]  # fmt: skip
    for args, fragment in cases:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert fragment in result.stderr
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1


def test_mismatched_index_names_the_command(fake_model, corpus_dir, tmp_path, monkeypatch):
    assert run("index", *paths(corpus_dir, tmp_path)).exit_code == 0
    other = FakeEmbedder(name="another", dimension=16)
    monkeypatch.setattr("assistant.lifecycle.load_embedder", lambda *a, **k: other)
    monkeypatch.setattr("assistant.lifecycle.describe_model", lambda n: (n, other.fingerprint))
    result = run("ask", "octreotide", *paths(corpus_dir, tmp_path))
    assert result.exit_code == 1
    assert "assistant index --force" in result.stderr


def test_bad_corpus_file_lists_file_and_line(fake_model, corpus_dir, tmp_path):
    (corpus_dir / "broken.md").write_text("---\nid: broken\ntitle: B\nyear: soon\n"
                                          "source_type: rct\n---\n\ntext\n")  # fmt: skip
    result = run("index", *paths(corpus_dir, tmp_path))
    assert result.exit_code == 1
    assert f"{corpus_dir / 'broken.md'}:4: year must be a whole number" in result.stderr


def test_debug_shows_traceback(fake_model, corpus_dir, tmp_path):
    result = run("ask", "x", "--debug", "--corpus", str(tmp_path / "missing"),
                 "--index", str(tmp_path / "i"))  # fmt: skip
    assert result.exit_code == 1
    assert "Traceback" in result.stderr


def test_env_settings_are_read(fake_model, corpus_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSISTANT_CORPUS_DIR", str(corpus_dir))
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(tmp_path / "env-index"))
    monkeypatch.setenv("ASSISTANT_TOP_K", "2")
    result = run("ask", "lutetium kidney", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["passages"]) == 2
    assert (tmp_path / "env-index" / "manifest.json").exists()
    bad = runner.invoke(app, ["ask", "x"], env={"ASSISTANT_TOP_K": "0"})
    assert bad.exit_code == 1 and "top_k" in bad.stderr


def test_sources_and_settings_commands(fake_model, corpus_dir, tmp_path):
    result = run("sources", "--json", *paths(corpus_dir, tmp_path))
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 4
    result = run("settings")
    assert result.exit_code == 0 and "ASSISTANT_ABSTAIN_THRESHOLD" in result.stdout


def test_ask_since_until_filter_the_sources(fake_model, corpus_dir, tmp_path):
    q = "octreotide embolization transplantation lutetium"
    result = run("ask", q, "--json", "-k", "10", "--since", "2013", *paths(corpus_dir, tmp_path))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {p["source"]["id"] for p in data["passages"]} == {"prrt-study"}
    assert all(p["source"]["after_review"] for p in data["passages"])
    assert data["corpus"]["n_sources"] == 4 and data["corpus"]["newest_source_year"] == 2017
    result = run("ask", q, "--json", "-k", "10", "--since", "2008", "--until", "2012",
                 *paths(corpus_dir, tmp_path))  # fmt: skip
    years = {p["source"]["year"] for p in json.loads(result.stdout)["passages"]}
    assert years and all(2008 <= y <= 2012 for y in years)


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--since", "20x3"], "--since '20x3' is not a year"),
        (["--until", "13"], "--until '13' is not a year"),
        (["--since", "2015", "--until", "2010"], "--since 2015 is after --until 2010"),
        (["--cite", "endnote"], "unknown citation format 'endnote'"),
        (["--cite", "ris", "--json"], "--cite and --json cannot be combined"),
    ],
)
def test_ask_bad_year_and_cite_flags(fake_model, corpus_dir, tmp_path, flags, fragment):
    result = run("ask", "octreotide", *flags, *paths(corpus_dir, tmp_path))
    assert result.exit_code == 1, result.output
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "idx").exists()  # refused before anything is loaded


@pytest.mark.parametrize("fmt", ["ris", "bibtex"])
def test_ask_cite_prints_the_answer_sources(fake_model, corpus_dir, tmp_path, fmt):
    import bibtexparser
    import rispy

    args = ("ask", "median time to progression with octreotide", "-k", "3")
    result = run(*args, "--cite", fmt, *paths(corpus_dir, tmp_path))
    assert result.exit_code == 0, result.output
    assert "Answer" in result.stderr  # the answer goes to stderr, the references to stdout
    answer = json.loads(run(*args, "--json", *paths(corpus_dir, tmp_path)).stdout)
    ids = list(dict.fromkeys(p["source"]["id"] for p in answer["passages"]))
    if fmt == "ris":
        records = rispy.loads(result.stdout)
        assert [r["id"] for r in records] == ids
        trial = records[ids.index("octreotide-trial")]
        assert trial["doi"] == "10.9999/fixture.1" and trial["type_of_reference"] == "JOUR"
    else:
        entries = bibtexparser.parse_string(result.stdout).entries
        assert [e.key for e in entries] == ids
        assert entries[ids.index("octreotide-trial")].entry_type == "article"


def test_ask_cite_after_an_abstention_writes_nothing(fake_model, corpus_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSISTANT_ABSTAIN_THRESHOLD", "0.99")  # no passage is that close
    result = run("ask", "Which football club won the cup in 1994?", "--cite", "ris",
                 *paths(corpus_dir, tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "no sources to cite" in result.stderr


@pytest.mark.parametrize("command", ["add", "fetch-pubmed", "list", "show", "remove"])
def test_corpus_commands_refuse_the_index_option_they_would_ignore(command: str) -> None:
    result = run("corpus", command, "x", "--index", "somewhere")
    assert result.exit_code == 2 and "No such option: --index" in result.stderr


def test_ray_option_value_is_optional() -> None:
    from assistant.cli import complete_optional_values

    assert complete_optional_values(["index", "--ray"]) == ["index", "--ray", "local"]
    assert complete_optional_values(["index", "--ray", "--json"]) == [
        "index", "--ray", "local", "--json"
    ]  # fmt: skip
    assert complete_optional_values(["index", "--ray", "auto"]) == ["index", "--ray", "auto"]
    assert complete_optional_values(["index", "--json"]) == ["index", "--json"]


def test_index_suggests_compact_past_the_share_and_compact_merges(
    fake_model, corpus_dir: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("ASSISTANT_INCREMENTAL_MIN_CHUNKS", "0")
    monkeypatch.setenv("ASSISTANT_INCREMENTAL_COMPACT_SHARE", "0.05")
    assert run("index", *paths(corpus_dir, tmp_path)).exit_code == 0
    (corpus_dir / "embolization-review.md").unlink()
    result = run("index", *paths(corpus_dir, tmp_path))
    assert result.exit_code == 0, result.output
    assert "assistant index --compact" in result.stderr.replace("\n", " ")
    assert (tmp_path / "idx" / "current" / "delta").is_dir()
    result = run("index", "--compact", "--json", *paths(corpus_dir, tmp_path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["embedded_chunks"] == 0
    assert not (tmp_path / "idx" / "current" / "delta").exists()
