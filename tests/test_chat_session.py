"""The chat shell's library: conversation state, /filter parsing, paging and Markdown export."""

from __future__ import annotations

import re

import pytest

from assistant.chat_session import (
    ChatSession,
    command_hint,
    format_answer,
    format_context,
    parse_command,
    parse_filter,
)
from assistant.citation import citation
from assistant.errors import InputError
from assistant.types import Filters


@pytest.fixture
def session(fake_assistant) -> ChatSession:
    return ChatSession(fake_assistant, k=2)


# ---------------------------------------------------------------- /filter parsing
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("year>=2009 type=rct,guideline", Filters(2009, None, ("rct", "guideline"))),
        ("year >= 2009", Filters(2009, None, ())),
        ("year>2009 year<2015", Filters(2010, 2014, ())),
        ("year<=2015", Filters(None, 2015, ())),
        ("year=2012", Filters(2012, 2012, ())),
        ("year=2009-2015", Filters(2009, 2015, ())),
        ("year=2009..2015", Filters(2009, 2015, ())),
        ("TYPE = RCT, review", Filters(None, None, ("rct", "review"))),
        ("off", Filters()),
        ("", Filters()),
    ],
)
def test_parse_filter(text, expected):
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("year>=09", "four-digit year"),
        ("type=trial", "unknown source type 'trial'"),
        ("type>rct", "type="),
        ("author=Rinke", "cannot read the filter"),
        ("year>=2015 year<=2009", "empty"),
        ("year>=2009-2015", "four-digit year"),
    ],
)
def test_parse_filter_errors_name_the_input_and_fix(text, needle):
    with pytest.raises(InputError) as err:
        parse_filter(text)
    assert needle in str(err.value)
    assert err.value.hint


def test_describe_filters():
    assert Filters().describe() == "none"
    assert Filters(2009, None, ("rct",)).describe() == "year ≥ 2009, type rct"
    assert Filters(2010, 2010).describe() == "year 2010"


def test_commands_parse_and_hint():
    assert parse_command("/SHOW  3 ") == ("/show", "3")
    assert parse_command("/more") == ("/more", "")
    assert "did you mean /show" in command_hint("/shwo")
    assert command_hint("/zzzz") == "unknown command /zzzz: type /help for the list"


# ---------------------------------------------------------------- conversation
def test_follow_up_is_searched_with_the_conversation(session):
    first = session.ask("What is the kidney toxicity of lutetium PRRT?")
    assert first.query == first.question
    second = session.ask("and what about its survival benefit?")
    assert second.query != second.question
    assert "lutetium" in second.query.lower()
    assert session.history[0] == {"role": "user", "content": first.question}
    assert session.history[1]["role"] == "assistant" and session.history[1]["content"]
    rows = session.history_rows()
    assert [r[0] for r in rows] == [1, 2] and rows[1][2] == second.query


def test_new_forgets_the_conversation_but_keeps_settings(session):
    session.ask("What is the kidney toxicity of lutetium PRRT?")
    session.set_filter("year>=2000")
    session.set_mode("bm25")
    session.new()
    assert session.turns == [] and session.history == []
    again = session.ask("and what about its survival benefit?")
    assert again.query == again.question
    assert session.mode == "bm25" and session.filters.year_min == 2000


def test_filters_restrict_retrieval(session):
    session.set_filter("type=rct")
    ans = session.ask("octreotide embolization transplantation lutetium")
    assert ans.passages and {p.source["source_type"] for p in ans.passages} == {"rct"}
    session.set_filter("year>=2100")
    empty = session.ask("octreotide embolization transplantation lutetium")
    assert empty.abstained and not empty.passages
    assert "/filter off" in session.rephrase_hint(empty)


def test_mode_is_validated_and_used(session):
    with pytest.raises(InputError, match="unknown mode"):
        session.set_mode("fuzzy")
    session.set_mode("BM25")
    assert session.ask("octreotide").mode == "bm25"


def test_more_pages_through_results_without_repeats(session):
    ans = session.ask("lutetium PRRT kidney toxicity octreotide")
    assert [p.rank for p in ans.passages] == [1, 2]
    page2 = session.more()
    assert [p.rank for p in page2] == [3, 4]
    seen = [p.chunk.id for p in session.last.passages]
    assert len(seen) == len(set(seen)) == 4
    while session.more():
        pass
    assert session.more() == []
    total = len(session.last.passages)
    assert total == len(session.assistant.index.chunks)
    # /show reaches passages on later pages too
    assert session.passage(total).rank == total


def test_more_and_show_need_a_question(session):
    with pytest.raises(InputError, match="no question yet"):
        session.more()
    with pytest.raises(InputError, match="no answer yet"):
        session.show(1)
    with pytest.raises(InputError, match="no sources yet"):
        session.sources()


def test_show_gives_passage_in_place_with_full_citation(session):
    session.ask("lutetium PRRT kidney toxicity")
    ctx = session.show("1")
    p = session.last.passages[0]
    assert ctx["rank"] == 1 and ctx["chunk_id"] == p.chunk.id
    assert ctx["section"] and ctx["text"].strip()
    assert ctx["citation"].startswith(", ".join(p.source["authors"]))
    text = format_context(ctx)
    assert ">>> " in text and ctx["citation"] in text
    for bad, msg in (("9", "no passage 9"), ("x", "needs a passage number")):
        with pytest.raises(InputError, match=msg):
            session.show(bad)


def test_sources_are_listed_once_with_their_passages(session):
    session.ask("lutetium PRRT kidney toxicity octreotide")
    session.more()
    rows = session.sources()
    ranks = sorted(r for ranks, _ in rows for r in ranks)
    assert ranks == [1, 2, 3, 4]
    assert len({src["id"] for _, src in rows}) == len(rows)
    assert all("path" in src for _, src in rows)  # full metadata, not just the citation fields


def test_export_renumbers_references_across_questions(session, tmp_path):
    a1 = session.ask("What is the kidney toxicity of lutetium PRRT?")
    a2 = session.ask("Which liver transplant outcomes were reported?")
    path = session.export(tmp_path / "note")
    assert path.suffix == ".md"
    text = path.read_text(encoding="utf-8")
    assert "## 1. " + a1.question in text and "## 2. " + a2.question in text
    assert "not a substitute for clinical judgement" in text
    refs = re.findall(r"^(\d+)\. (.+)$", text.split("## References", 1)[1], re.M)
    ids = {p.source["id"] for a in (a1, a2) for p in a.passages}
    assert [int(n) for n, _ in refs] == list(range(1, len(ids) + 1))
    body = text.split("## References", 1)[0]
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", body)}
    assert cited <= set(range(1, len(refs) + 1))
    # the first question's passage 1 is the first reference, with its full citation
    # (a source after the 2012 review is marked so after its citation)
    assert refs[0][1].startswith(citation(session.full_source(a1.passages[0])))


def test_export_of_an_abstention_and_bad_paths(session, tmp_path):
    session.set_filter("year>=2100")
    session.ask("lutetium")
    text = session.export(tmp_path / "x.md").read_text(encoding="utf-8")
    assert "**No answer.**" in text and "filters: year ≥ 2100" in text
    assert "## References" not in text
    with pytest.raises(InputError, match="does not exist"):
        session.export(tmp_path / "missing" / "x.md")
    with pytest.raises(InputError, match="needs a file name"):
        session.export("  ")
    with pytest.raises(InputError, match="is a folder"):
        (tmp_path / "d.md").mkdir()
        session.export(tmp_path / "d.md")


def test_format_answer_is_plain_text(session):
    ans = session.ask("lutetium PRRT kidney toxicity")
    text = format_answer(ans)
    assert text.startswith("Answer: ") and "Sources:" in text and "\x1b[" not in text
    assert "[1] " in text
    session.set_filter("year>=2100")
    none = session.ask("lutetium")
    out = format_answer(none, session.rephrase_hint(none))
    assert out.startswith("searched: lutetium PRRT")  # one word leans on the conversation
    assert "\nNo answer: " in out and "/filter off" in out


# ---------------------------------------------------------------- currency and /cite
def test_plain_text_marks_sources_after_the_review(session):
    answer = session.ask("lutetium dotatate kidney toxicity")
    assert any(p.source["id"] == "prrt-study" for p in answer.passages)
    text = format_answer(answer)
    assert "2017 (after 2012)" in text
    for p in answer.passages:
        if p.source["year"] <= 2012:
            assert f"{p.source['year']} (after" not in text
    p = next(p for p in answer.passages if p.source["id"] == "prrt-study")
    assert "Published: 2017 (after the 2012 review)" in format_context(session.show(p.rank))
    assert "_(after the 2012 review)_" in session.export_markdown()
    assert "corpus snapshot " in session.export_markdown()


def test_cite_shows_or_writes_the_answer_sources(session, tmp_path):
    import bibtexparser
    import rispy

    answer = session.ask("median time to progression with octreotide")
    ids = list(dict.fromkeys(p.source["id"] for p in answer.passages))
    session.more()  # later pages are not part of the answer's sources
    text, written = session.cite("ris")
    assert written is None and [r["id"] for r in rispy.loads(text)] == ids
    text, written = session.cite(f"bibtex {tmp_path / 'refs'}")
    assert written == tmp_path / "refs.bib" and written.read_text(encoding="utf-8") == text
    assert [e.key for e in bibtexparser.parse_string(text).entries] == ids
    before = written.read_text(encoding="utf-8")
    with pytest.raises(InputError, match="already exists"):
        session.cite(f"ris {written}")
    assert written.read_text(encoding="utf-8") == before  # never overwritten
    with pytest.raises(InputError, match="is a folder"):
        session.cite(f"ris {tmp_path}")
    with pytest.raises(InputError, match="does not exist"):
        session.cite(f"ris {tmp_path / 'missing' / 'refs.ris'}")
    with pytest.raises(InputError, match="unknown citation format"):
        session.cite("endnote")
    with pytest.raises(InputError, match="needs a format"):
        session.cite("")


def test_cite_needs_an_answer(session):
    with pytest.raises(InputError, match="no answer to cite yet"):
        session.cite("ris")
    session.assistant.settings.abstain_threshold = 0.99  # nothing is that close: abstain
    session.ask("Which football club won the cup in 1994?")
    with pytest.raises(InputError, match="no sources to cite"):
        session.cite("bibtex")
