"""Abbreviations read from the corpus, and short questions spelled out for the encoder."""

from helpers import FakeEmbedder

from assistant.acronyms import abbreviations_in, find_definitions, long_form, spell_out
from assistant.assistant import Assistant
from assistant.settings import Settings

TEXTS = [
    "Patients received peptide receptor radionuclide therapy (PRRT) after progression.",
    "Transarterial chemoembolization (TACE) was repeated; TACE caused pain.",
    "After transarterial chemoembolization (TACE) most patients had fever.",
    "Time to tumour progression (TTP) was longer.",
    "Imaging used cross-sectional imaging (CT) and the study (OK) ended.",  # CT: no match
]


def test_long_forms_are_read_from_the_words_before_the_parenthesis() -> None:
    assert long_form(
        ["patients", "received", "peptide", "receptor", "radionuclide", "therapy"], "PRRT"
    ) == ("peptide receptor radionuclide therapy")
    assert long_form(["the", "study"], "OK") is None  # letters not found in order
    assert long_form(["cross-sectional", "imaging"], "CT") is None  # 'T' starts no word's match
    assert long_form(["a", "b", "c"], "Ab") is None  # fewer than two capitals


def test_definitions_take_the_most_frequent_long_form() -> None:
    found = find_definitions(TEXTS)
    assert found["PRRT"] == "peptide receptor radionuclide therapy"
    assert found["TACE"] == "transarterial chemoembolization"
    assert "OK" not in found


def test_short_questions_get_the_long_form_and_long_ones_stay() -> None:
    found = find_definitions(TEXTS)
    assert abbreviations_in("What is TACE?", max_words=8) == ["TACE"]
    assert spell_out("What is TACE?", found) == ("What is TACE (transarterial chemoembolization)?")
    said = "Is transarterial chemoembolization (TACE) safe?"
    assert spell_out(said, found) == said  # the long form is already there
    long_q = "What did the randomised trial find about TACE for small bowel liver metastases?"
    assert abbreviations_in(long_q, max_words=8) == []  # too long: nothing is spelled out
    assert spell_out("TACEX or tace?", found) == "TACEX or tace?"  # whole, exact words only


def test_the_assistant_spells_out_for_the_encoder_only(tmp_path, corpus_dir) -> None:  # type: ignore[no-untyped-def]  # noqa: E501
    corpus = corpus_dir
    note = next(corpus.glob("*.md"))
    note.write_text(note.read_text() + "\nHepatic artery embolization (HAE) was used.\n")
    seen: list[str] = []

    class Recording(FakeEmbedder):
        def embed_query(self, text: str):  # type: ignore[no-untyped-def]
            seen.append(text)
            return super().embed_query(text)

    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    assistant = Assistant(settings, embedder=Recording())
    assistant.build()
    assistant.search("What is HAE?")
    assert seen[-1] == "What is HAE (hepatic artery embolization)?"
    off = Assistant(settings.model_copy(update={"spell_out_abbreviations": "off"}),
                    embedder=Recording())  # fmt: skip
    off.search("What is HAE?")
    assert seen[-1] == "What is HAE?"
