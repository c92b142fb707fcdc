import pytest

from assistant import Assistant
from assistant.answer import ABSTAIN_MESSAGE
from assistant.errors import InputError
from assistant.sentences import clean


def test_answer_cites_passages(fake_assistant: Assistant):
    ans = fake_assistant.ask("What was the median time to tumour progression with octreotide?")
    assert not ans.abstained and ans.answer
    assert "14.3 months" in ans.answer
    markers = [int(m) for m in __import__("re").findall(r"\[(\d+)\]", ans.answer)]
    assert markers and all(1 <= m <= len(ans.passages) for m in markers)
    cited = ans.passages[markers[0] - 1]
    assert cited.source["id"] == "octreotide-trial"


def test_abstains_when_nothing_is_similar(fake_assistant: Assistant):
    ans = fake_assistant.ask("Which football club won the league in 1998?")
    assert ans.abstained and ans.answer is None
    assert ans.message == ABSTAIN_MESSAGE


def test_json_shape(fake_assistant: Assistant):
    data = fake_assistant.ask("Kidney toxicity of lutetium PRRT", k=2).to_dict()
    assert set(data) >= {"question", "answer", "abstained", "passages", "timings_ms", "query"}
    assert len(data["passages"]) == 2
    p = data["passages"][0]
    assert set(p) >= {"rank", "score", "chunk_id", "text", "section", "source"}
    assert set(p["source"]) == {
        "id", "title", "authors", "journal", "year", "pmid", "doi", "url", "source_type",
        "after_review", "label",
    }  # fmt: skip
    assert set(data) >= {"corpus", "references"}
    assert p["source"]["id"] == "prrt-study" and p["chunk_id"].startswith("prrt-study#")
    assert data["timings_ms"]["total"] >= data["timings_ms"]["embed"] >= 0


def test_question_limits(fake_assistant: Assistant):
    with pytest.raises(InputError, match="empty"):
        fake_assistant.ask(" \n\t")
    with pytest.raises(InputError, match="limit"):
        fake_assistant.ask("liver " * 1000)


def test_clean_strips_markdown():
    assert clean("- **Median** survival was\n 84.7 `months`.") == "Median survival was 84.7 months."


def test_sources_and_context(fake_assistant: Assistant):
    rows = fake_assistant.sources()
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert all(r["chunks"] >= 1 for r in rows)
    full = fake_assistant.source("liver-transplant")
    assert "Milan criteria" in full["text"]
    with pytest.raises(InputError, match="unknown source"):
        fake_assistant.source("nope")
    chunk_id = fake_assistant.search("Milan criteria")[0].chunk.id
    ctx = fake_assistant.context(chunk_id)
    assert ctx["text"] and ctx["source"]["id"] == chunk_id.split("#")[0]


def test_off_topic_question_in_a_conversation_still_abstains(fake_assistant: Assistant):
    history = [{"role": "user", "content": "What was the time to progression with octreotide?"}]
    ans = fake_assistant.ask("Which football club won the league in 1998?", history=history)
    assert ans.query == "Which football club won the league in 1998?"
    assert ans.abstained
    follow = fake_assistant.ask("and with placebo?", history=history)
    assert "octreotide" in follow.query.lower() and not follow.abstained


def test_unknown_terms_are_specific_words_the_corpus_never_uses():
    from assistant.answer import unknown_terms

    corpus = {"octreotid", "jejunum", "liver"}

    def in_corpus(word: str) -> bool:
        return any(term.startswith(word[:5]) for term in corpus)

    common = {"what", "dose", "should", "used", "patients", "with", "liver"}
    q = "What holmium dose should be used with tacrolimus for patients with jejunal liver spread?"
    assert unknown_terms(q, in_corpus, common) == ["holmium", "tacrolimus", "spread"]
    assert unknown_terms(q, in_corpus, None) == []  # no vocabulary: the rule is off
    # plain inflections of common words are common too
    assert unknown_terms("Is it kinder and gentler?", in_corpus, {"kind", "gentle"}) == []


def test_question_naming_an_unknown_drug_abstains_and_says_why(
    fake_assistant: Assistant, fake_embedder
):
    fake_embedder.vocabulary = frozenset({"what", "dose", "with", "patients", "midgut", "tumours"})
    ans = fake_assistant.ask("What dose of posaconazole with octreotide in midgut tumours?")
    assert ans.abstained and ans.answer is None
    assert "'posaconazole'" in ans.message
    known = fake_assistant.ask("What dose of octreotide in midgut tumours?")
    assert not known.abstained
    off = fake_assistant.settings.model_copy(update={"abstain_on_unknown_terms": False})
    fake_assistant.settings = off
    assert not fake_assistant.ask("What dose of posaconazole with octreotide?").abstained
