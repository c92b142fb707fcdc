"""The answer composer on hand-made passages: figures, lists, fragments, cross-references."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.answer import (
    FEATURES,
    ComposerWeights,
    answer_sentences,
    answer_sentences_text,
    candidate_features,
    compose_answer,
    concept_terms,
    question_facet,
    score_candidates,
    should_abstain,
)
from assistant.conversation import rewrite_query
from assistant.evaluate import answer_metrics
from assistant.gold import gold_split
from assistant.lexical import tokenize
from assistant.references import cited_ids, render, short_label, source_labels, source_names
from assistant.rerank import diversify
from assistant.sentences import answer_units, is_fragment, list_sentence
from assistant.types import Chunk, Passage

TRIAL = (
    "## Key findings\n"
    "This multinational phase III trial compared sunitinib with placebo in progressive "
    "pancreatic NETs and was stopped early.\n"
    "Median progression-free survival was 11.4 months with sunitinib versus 5.5 months with "
    "placebo (hazard ratio 0.42).\n"
    "The trial was sponsored by the manufacturer of sunitinib.\n"
)
LIST = (
    "## Key findings\n"
    "The proposed criteria for liver transplantation are:\n"
    "- **Histology:** low-grade, well-differentiated tumour (carcinoid);\n"
    "- portal venous drainage of the primary;\n"
    "- metastatic involvement of 50% or less of the liver;\n"
    "- age 55 years or younger.\n"
    "Complications:\n\n"
    "See le-treut-2013-eltr-transplantation for registry results.\n"
)


def passage(text: str, rank: int = 1, doc: str = "doc", section: str = "Key findings") -> Passage:
    chunk = Chunk(f"{doc}#{rank}", doc, rank, text, section, 0, len(text))
    return Passage(rank=rank, score=1.0 / rank, chunk=chunk, source={"id": doc}, similarity=0.6)


def compose(passages: list[Passage], question: str, **kw) -> str | None:
    terms = tokenize(question, "english")
    return compose_answer(
        passages, terms, lambda t: 1.0, lambda t: tokenize(t, "english"), question=question, **kw
    )


def test_a_sentence_score_is_its_features_times_the_weights_of_the_same_names():
    """bench/fit_composer.py fits the weights of `FEATURES`: each names a ComposerWeights field."""
    question = "How long was progression-free survival with sunitinib?"
    args = ([passage(TRIAL)], question, tokenize(question, "english"), lambda t: 1.0,
            lambda t: tokenize(t, "english"))  # fmt: skip
    weights = ComposerWeights(figure=0.7, lexical=0.2)
    features = candidate_features(*args, weights=weights)
    coef = np.array([getattr(weights, name) for name in FEATURES])
    scored = {c.text: c.score for c in score_candidates(features, weights)}
    assert len(features) == len(scored) == 3
    for f in features:
        assert len(f.values) == len(FEATURES)
        assert scored[f.text] == pytest.approx(float(f.values @ coef))
    figure = next(f for f in features if "11.4 months" in f.text)
    assert figure.values[FEATURES.index("figure")] == 1.0  # a figure question, a figure


def test_a_figure_question_is_answered_by_the_sentence_with_the_figure_first():
    text = compose([passage(TRIAL)], "How long was progression-free survival with sunitinib?")
    assert text is not None
    first = answer_sentences(text)[0]
    assert "11.4 months" in first and "5.5 months" in first and first.endswith("[1]")


@pytest.mark.parametrize(
    ("question", "facet"),
    [
        ("What overall survival at 5 years was achieved after two-stage surgery?",
         "overall survival at years"),
        ("How long was progression-free survival with sunitinib?", "progression free survival"),
        ("What about toxicity in that trial?", "toxicity"),
        ("And in the long run, how many stayed disease-free?", "stayed disease free"),
        ("What was the 30-day mortality after chemoembolization?", "30 day mortality"),
        ("What does the guideline recommend, and how strong is the evidence behind it?",
         "guideline recommend evidence"),
        ("Is everolimus an option for lung NETs?", ""),
    ],
)  # fmt: skip
def test_the_facet_is_what_a_wh_question_asks_for(question: str, facet: str):
    assert question_facet(question) == facet


def test_a_follow_up_is_answered_on_its_own_aspect():
    text = (
        "## Key findings\n"
        "In this randomised trial of midgut liver metastases, 2-year progression-free survival "
        "was 38% with chemoembolization and 44% with bland embolization.\n"
        "Grade 3 toxicity occurred in 19% of patients.\n"
    )
    question = "What about toxicity in that trial?"
    query = rewrite_query(question, [{"role": "user", "content": "Is chemoembolization "
                          "better than bland embolization for midgut liver metastases?"}])  # fmt: skip
    terms = tokenize(query, "english")

    def first(weights: ComposerWeights) -> str:
        answer = compose_answer([passage(text)], terms, lambda t: 1.0,
                                lambda t: tokenize(t, "english"), question=question,
                                weights=weights)  # fmt: skip
        return answer_sentences(answer)[0]

    assert "toxicity" in first(ComposerWeights())
    assert "progression-free" in first(ComposerWeights(facet=0.0))  # the words of the context win


def test_a_list_lead_in_becomes_one_readable_sentence():
    units = answer_units(LIST)
    lists = [u for u in units if u.is_list]
    assert len(lists) == 1
    sentence = lists[0].text
    assert sentence.startswith("The proposed criteria for liver transplantation are low-grade")
    assert "age 55 years or younger." in sentence and ":" not in sentence
    assert "Complications:" not in " ".join(u.text for u in units)  # a lead-in with no list


def test_the_items_of_a_nested_list_are_named_once_in_its_sentence():
    nested = (
        "## Limitations\n"
        "- The scenario ratings were not on a stored page, so no positions are given, for "
        "example on:\n"
        "  - PRRT in pancreatic or lung primary neuroendocrine tumours;\n"
        "  - PRRT in high-grade disease;\n"
        "  - renal or marrow limits.\n"
        "- The randomised evidence at the time was a single trial in midgut tumours.\n"
    )
    units = answer_units(nested)
    assert [u.is_list for u in units] == [True, False]
    assert "PRRT in high-grade disease and renal or marrow limits." in units[0].text
    assert units[1].text.startswith("The randomised evidence")


def test_a_list_of_whole_sentences_is_read_item_by_item():
    statements = (
        "- **No difference by tumour type:**\n"
        "  - Mean overall survival was similar for carcinoid tumours (1,255 days) and islet cell "
        "tumours (1,311 days) (p = 0.66).\n"
        "  - Progression-free survival was also similar: 602 days for carcinoid and 501 days for "
        "islet cell tumours (p = 0.72). The mean was about 1.5 years.\n"
    )
    texts = [u.text for u in answer_units(statements)]
    assert not any(u.is_list for u in answer_units(statements))
    assert texts[0] == (
        "Mean overall survival was similar for carcinoid tumours (1,255 days) and islet cell "
        "tumours (1,311 days) (p = 0.66)."
    )
    assert texts[1].startswith("Progression-free survival was also similar: 602 days")


def test_list_items_lose_their_parentheses_not_what_follows_them():
    phrases = (
        "Two phase III trials reported:\n"
        "- RADIANT-3 showed that everolimus (10 mg daily) prolongs progression-free survival.\n"
        "- A placebo-controlled trial showed the same for sunitinib.\n"
    )
    (unit,) = answer_units(phrases)
    assert unit.text == (
        "Two phase III trials reported: RADIANT-3 showed that everolimus prolongs "
        "progression-free survival and a placebo-controlled trial showed the same for sunitinib."
    )


def test_a_quotation_over_a_sentence_end_stays_one_unit():
    quoted = (
        'The guideline says (quoted): "Teams at referral centres should guide the management of '
        'all NETs. Level of evidence 5, Grade of recommendation D." Grade D rests on expert '
        "opinion rather than trials.\n"
    )
    (unit,) = answer_units(quoted)
    assert unit.text.startswith("The guideline says") and "Grade of recommendation D" in unit.text


def test_a_question_naming_a_trial_is_answered_from_that_trial():
    other = (
        "## Key findings\n"
        "In another trial, median progression-free survival was 22.7 months with "
        "temozolomide.\n"
    )
    moffitt = (
        "## Key findings\n"
        "Partial responses were seen in 12 of the 17 patients treated first-line with the "
        "combination.\n"
    )
    question = "What did capecitabine plus temozolomide achieve in the Moffitt experience?"
    passages = [passage(other, doc="e2211"), passage(moffitt, rank=2, doc="moffitt")]
    unnamed = compose(passages, question)
    named = compose(passages, question, named={"moffitt"})
    assert unnamed is not None and answer_sentences(unnamed)[0].startswith("In another trial")
    assert named is not None and answer_sentences(named)[0].startswith("Partial responses")


def test_side_effects_are_answered_by_adverse_events_not_by_a_one_sided_test():
    safety = (
        "## Key findings\n"
        "The one-sided log-rank P value was 0.026, so the trial missed its end point despite "
        "the effect of everolimus on progression.\n"
        "Most adverse events of everolimus were grade 1 or 2, stomatitis and rash above all.\n"
    )
    text = compose([passage(safety)], "What are the side effects of everolimus?")
    assert text is not None and answer_sentences(text)[0].startswith("Most adverse events")
    assert concept_terms("What dose of lanreotide?")[0].keys() == {"~dose"}
    assert concept_terms("How long was survival?") == ({}, "")


def test_a_bold_label_reads_as_a_label_and_pointers_to_other_notes_are_no_answer():
    text = (
        "- **Grade.** Grade the tumour by Ki-67 index and mitotic count in every patient.\n"
        "- **PRRT works here.** PRRT prolonged progression-free survival in midgut NETs.\n"
        "- Ablation alongside resection is covered in a separate corpus note.\n"
    )
    assert [u.text for u in answer_units(text)] == [
        "Grade: grade the tumour by Ki-67 index and mitotic count in every patient.",
        "PRRT works here: PRRT prolonged progression-free survival in midgut NETs.",
    ]


def test_a_named_source_among_the_passages_is_answered_below_the_threshold():
    p = passage(TRIAL, doc="raymond-2011-sunitinib")
    p.similarity = 0.2
    assert should_abstain([p], 0.42)
    assert not should_abstain([p], 0.42, named={"raymond-2011-sunitinib"})
    assert should_abstain([p], 0.42, named={"another-source"})
    assert should_abstain([], 0.42, named={"raymond-2011-sunitinib"})


def test_list_sentence_refuses_long_lists_and_keeps_a_colon_after_a_heading():
    assert list_sentence("Steps:", ["x " * 40]) is None
    assert list_sentence("Grade 3-4 toxicities:", ["fatigue, 23%", "nausea, 8%"]) == (
        "Grade 3-4 toxicities: fatigue, 23%; and nausea, 8%."
    )
    assert list_sentence("The criteria included:", ["a resected primary", "low grade"]) == (
        "The criteria included a resected primary and low grade."
    )
    assert list_sentence("Eleven studies were included:", ["662 had pNETs", "164 SBNETs"]) == (
        "Eleven studies were included: 662 had pNETs and 164 SBNETs."  # passive: no object
    )


def test_no_fragment_reaches_the_answer():
    text = compose(
        [passage(LIST), passage(TRIAL, rank=2, doc="trial")],
        "Which criteria select patients for liver transplantation?",
    )
    assert text is not None
    assert not any(is_fragment(s) for s in answer_sentences(text))
    assert "criteria" in answer_sentences(text)[0]


@pytest.mark.parametrize(
    ("sentence", "fragment"),
    [
        ("Complications and mortality: [1]", True),
        ("Too short here. [2]", True),
        ("and this continues a sentence from before it. [1]", True),
        ("Median survival was 33 months in this series of patients. [1]", False),
        ("PRRT in pancreatic or lung primary neuroendocrine tumours; [1]", True),  # a list item
        ("Hepatic failure when the tumour burden is very high, [2]", True),
    ],
)
def test_is_fragment(sentence: str, fragment: bool):
    assert is_fragment(sentence) is fragment


def test_cross_reference_ids_are_rendered_as_labels():
    labels = {"le-treut-2013-eltr-transplantation": "Le Treut 2013"}
    see = "Registry results are in le-treut-2013-eltr-transplantation for this whole series.\n"
    text = compose([passage(see)], "Where are the registry results?", labels=labels)
    assert text is not None and "Le Treut 2013" in text and "le-treut" not in text
    assert render("see `le-treut-2013-eltr-transplantation`.", labels) == "see Le Treut 2013."
    assert render("In the note le-treut-2013-eltr-transplantation, 5-year", labels) == (
        "In Le Treut 2013, 5-year"
    )
    assert cited_ids(LIST, labels) == ["le-treut-2013-eltr-transplantation"]


def test_labels_are_short_and_unique():
    sources = {
        "gurusamy-2009-a": {"id": "gurusamy-2009-a", "authors": ["Gurusamy KS"], "year": 2009},
        "gurusamy-2009-b": {"id": "gurusamy-2009-b", "authors": ["Gurusamy KS"], "year": 2009},
        "le-treut-2013-x": {"id": "le-treut-2013-x", "authors": ["Le Treut YP"], "year": 2013},
        "mazzaferro-2016-y": {"id": "mazzaferro-2016-y", "title": "Long title", "year": 2016},
    }
    labels = source_labels(sources)
    assert labels["gurusamy-2009-a"] == "Gurusamy 2009a" and labels["gurusamy-2009-b"].endswith("b")
    assert labels["le-treut-2013-x"] == "Le Treut 2013"
    assert labels["mazzaferro-2016-y"] == "Mazzaferro 2016"
    assert short_label({"title": "Management map: options"}) == "Management map"


def test_source_names_are_the_author_and_the_trial():
    meta = {"id": "rinke-2009-promid", "authors": ["Rinke A"], "title": "x",
            "summary": "PROMID showed ..."}  # fmt: skip
    assert source_names(meta) == {"rinke", "promid"}


def test_semantic_scores_prefer_the_sentence_closest_in_meaning():
    units = answer_units(TRIAL)
    vectors = np.eye(len(units), 4, dtype=np.float32)
    question_vector = vectors[2]  # closest to the third sentence (the sponsor)
    text = compose(
        [passage(TRIAL)],
        "Who sponsored the sunitinib trial?",
        query_vector=question_vector,
        unit_vectors=lambda chunk_id: vectors,
    )
    assert text is not None and answer_sentences(text)[0].startswith("The trial was sponsored")


def test_no_answer_when_no_sentence_holds_a_word_of_the_question():
    assert compose([passage(TRIAL)], "Quantum chromodynamics?") is None


def test_answer_respects_the_word_budget():
    long = "## Key findings\n" + "".join(
        f"Sunitinib result number {i} was reported with many additional words to pad it out "
        f"well beyond the limit of the answer length here today.\n"
        for i in range(6)
    )
    text = compose([passage(long)], "What were the sunitinib results?")
    assert text is not None and len(answer_sentences_text(text).split()) <= 90 + 25


def test_diversify_moves_a_sources_extra_passages_down_unless_named():
    ranked = [(0, 1.0), (1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)]
    docs = {0: "a", 1: "a", 2: "a", 3: "b", 4: "c"}
    assert [r for r, _ in diversify(ranked, docs.__getitem__, 2)] == [0, 1, 3, 4, 2]
    assert [r for r, _ in diversify(ranked, docs.__getitem__, 2, exempt={"a"})] == [0, 1, 2, 3, 4]
    assert [r for r, _ in diversify(ranked, docs.__getitem__, 0)] == [0, 1, 2, 3, 4]
    assert [r for r, _ in diversify(ranked, docs.__getitem__, 1, keep_above=0.85)] == [
        0, 1, 3, 4, 2
    ]  # fmt: skip
    assert diversify([], docs.__getitem__, 2) == []


def test_a_follow_up_naming_another_organ_drops_the_earlier_one():
    history = [{"role": "user", "content": "What is the kidney toxicity of PRRT?"}]
    query = rewrite_query("And haematological toxicity?", history)
    assert "PRRT" in query and "kidney" not in query.lower()


def test_answer_metrics_and_the_fixed_split():
    records = [
        {"answerable": True, "answers": ["x"], "answer": "A whole sentence of six words. [1]",
         "answer_matches": True, "answer_words": 6, "answer_sentences": 1,
         "answer_fragments": [], "distinct_sources": 3},
        {"answerable": True, "answers": ["y"], "answer": None, "answer_matches": False,
         "answer_words": 0, "answer_sentences": 0, "answer_fragments": [],
         "distinct_sources": 1},
    ]  # fmt: skip
    m = answer_metrics(records, records)
    assert m["answer_match"] == 0.5 and m["answer_fragment_rate"] == 0.0
    assert m["distinct_sources@5"] == 2.0 and m["answer_words_p50"] == 6.0
    assert gold_split("a-01") == gold_split("a-01") in ("dev", "test")
    assert {gold_split(f"q-{i}") for i in range(20)} == {"dev", "test"}


def test_end_to_end_on_the_fixture_corpus(fake_assistant):
    """The answer a reader sees: whole sentences, a list as one sentence, labels not ids,
    and the same text from the library, the chat session and the JSON."""
    from assistant.chat_session import ChatSession

    question = "What are the selection criteria for a liver transplant?"
    answer = fake_assistant.ask(question)
    assert answer.answer is not None and not answer.abstained
    sentences = answer_sentences(answer.answer)
    assert sentences and not any(is_fragment(s) for s in sentences)
    assert any("criteria for a transplant are a resected primary" in s for s in sentences)
    data = answer.to_dict()
    texts = " ".join(p["text"] for p in data["passages"])
    assert "see Eta 2017" in texts and "prrt-study" not in texts
    assert [(r["id"], r["label"]) for r in data["references"]] == [("prrt-study", "Eta 2017")]
    session = ChatSession(fake_assistant)
    assert session.ask(question).answer == answer.answer
    shown = session.show("Eta 2017")  # `/show LABEL` opens a source the passages cite
    assert shown["source"]["id"] == "prrt-study" and shown["rank"] == "Eta 2017"
    assert "PRRT" in shown["citation"] or "peptide receptor" in shown["citation"].lower()


def test_the_passages_of_a_named_source_come_first(fake_assistant):
    question = "What was found with octreotide in midgut tumours?"
    plain = fake_assistant.search(question)
    assert plain[0].chunk.doc_id == "octreotide-trial"
    named = fake_assistant.search(question.replace("found", "found by Eta"))
    assert named[0].chunk.doc_id == "prrt-study"  # Eta 2017, named by its first author
    index = fake_assistant.index
    rows = [r for r in range(len(index.chunks)) if index.doc_of_row(r) == "prrt-study"]
    assert index.rows_of(["prrt-study", "no-such-source"]).tolist() == rows


def test_a_name_that_is_an_everyday_word_counts_only_with_its_capital(fake_assistant):
    index = fake_assistant.index
    assert index.named_sources("what was found by eta?") == {"prrt-study"}
    assert index.named_sources("What was found by Eta?", common={"eta"}) == {"prrt-study"}
    assert index.named_sources("What was found by eta?", common={"eta"}) == set()
    assert index.named_sources("Eta found what?", common={"eta"}) == set()  # the first word
