"""Follow-up rewriting: which questions lean on the conversation, and what is carried over."""

from __future__ import annotations

from assistant.conversation import (
    MAX_CONTEXT_TERMS,
    content_words,
    is_follow_up,
    rewrite_query,
    salient_terms,
)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def bot(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


PRRT = [
    user("What is the renal toxicity of PRRT in midgut tumours?"),
    bot("Kidney damage is rare."),
]


def test_no_history_returns_question_stripped():
    assert rewrite_query("  What is PRRT?  ") == "What is PRRT?"
    assert rewrite_query("and its toxicity?", []) == "and its toxicity?"


def test_elliptical_follow_up_gets_earlier_topic():
    q = rewrite_query("what about its toxicity?", PRRT)
    assert q.startswith("what about its toxicity?")
    assert "PRRT" in q and "renal" in q


def test_named_site_replaces_earlier_site():
    q = rewrite_query("and in pancreatic tumours?", PRRT)
    assert "PRRT" in q and "pancreatic" in q
    assert "midgut" not in q


def test_named_treatment_replaces_earlier_treatment_in_short_ellipsis():
    history = [user("What is the evidence for sunitinib in pancreatic NETs?")]
    q = rewrite_query("what about everolimus?", history)
    assert "everolimus" in q and "sunitinib" not in q and "pancreatic" in q


def test_self_contained_question_is_not_rewritten():
    q = "What survival follows liver transplantation for metastatic neuroendocrine tumours?"
    assert rewrite_query(q, PRRT) == q


def test_anchorless_short_question_is_a_follow_up():
    history = [user("How effective is sunitinib for progressive pancreatic tumours?")]
    assert is_follow_up("What are the main grade 3-4 side effects I should watch for?")
    assert "sunitinib" in rewrite_query("What are the main side effects?", history)


def test_definite_reference_is_a_follow_up():
    assert is_follow_up("Which subgroup got the most benefit from the operation?")
    assert is_follow_up("How reliable was it in the validation study?")
    assert not is_follow_up("Does octreotide LAR prolong time to progression in midgut NETs?")


def test_assistant_turns_are_not_used():
    history = [user("What did NETTER-1 show?"), bot("Lutetium improved PFS versus octreotide LAR.")]
    q = rewrite_query("and its toxicity?", history)
    assert "NETTER" in q and "Lutetium" not in q and "LAR" not in q


def test_named_terms_win_when_the_cap_bites():
    history = [user("Which patients with liver metastases from neuroendocrine tumours had the "
                    "best outcomes after Y-90 radioembolization in the Kennedy series?")]  # fmt: skip
    q = rewrite_query("and the toxicity?", history, max_terms=3)
    extra = q.removeprefix("and the toxicity?").split()
    assert len(extra) == 3
    assert {"radioembolization", "Kennedy"} <= set(extra)
    assert "neuroendocrine" not in extra and "liver" not in extra


def test_chain_of_follow_ups_keeps_topic_and_stays_bounded():
    history = [user("What is the renal toxicity of lutetium PRRT?")]
    lengths = []
    for i in range(30):
        q = rewrite_query("and what about that?", history, max_turns=50)
        lengths.append(len(q.split()))
        history += [bot("…"), user(f"and what about it in year {2000 + i}?")]
    assert "lutetium" in q and "PRRT" in q
    assert max(lengths) <= 4 + MAX_CONTEXT_TERMS  # the question has 4 words


def test_max_turns_limits_what_is_remembered():
    history = [user("What is the renal toxicity of PRRT?"), user("What about sunitinib?")]
    assert "PRRT" not in rewrite_query("and its cost?", history, max_turns=1)
    assert rewrite_query("and its cost?", history, max_turns=0) == "and its cost?"


def test_blank_and_malformed_turns_are_ignored():
    history = [user("   "), {"role": "system", "content": "x"}, {"content": "no role"}]
    assert rewrite_query("and its toxicity?", history) == "and its toxicity?"


def test_content_words_and_salience():
    assert content_words("What is the the PRRT of PRRT?") == ["PRRT"]
    weights = dict(salient_terms("What did the PROMID trial show for octreotide in liver NETs?"))
    assert weights["PROMID"] > weights["trial"] > weights["liver"]
    assert weights["octreotide"] == 2.0


def test_unrelated_question_after_a_clinical_one_is_not_merged():
    history = [{"role": "user", "content": "What is the kidney toxicity of lutetium PRRT?"}]
    corpus_words = {"grade", "side", "effects", "toxicity", "main"}

    def known(word: str) -> bool:
        return word.lower() in corpus_words

    off_topic = "Which football club won the cup in 1994?"
    assert rewrite_query(off_topic, history, known=known) == off_topic
    follow = "What are the main grade 3-4 side effects I should watch for?"
    assert rewrite_query(follow, history, known=known) != follow
