"""A follow-up's own words re-rank the passages of the source the conversation is about."""

from pathlib import Path

from helpers import FakeEmbedder

from assistant.assistant import Assistant
from assistant.settings import Settings

HEAD = """---
id: {id}
title: "{title}"
year: 2014
source_type: cohort
---

"""
DEBULKING = HEAD.format(id="debulking-series", title="Debulking threshold series") + "\n\n".join(
    [
        "## Design\nDebulking of carcinoid liver metastases with a lowered threshold of 70 percent "
        "in fifty-two patients at one centre.",
        "## Outcomes\nAfter debulking with the 70 percent threshold, liver progression-free "
        "survival reached 72 months and disease-specific survival 90 percent at five years.",
        "## Threshold\nThe 70 percent debulking threshold widened eligibility for carcinoid "
        "liver debulking compared with the older 90 percent rule.",
        "## Deaths\nFour patients died during follow-up; every death was caused by liver "
        "failure from progressive disease.",
    ]
)
OTHER = HEAD.format(id="other-series", title="Another debulking series") + (
    "## Findings\nDebulking carcinoid liver metastases above a 70 percent threshold improved "
    "survival; patients died of cardiac causes unrelated to the liver, and causes of death were "
    "recorded from registries.\n"
)
HISTORY = [
    {
        "role": "user",
        "content": "What did the lowered 70 percent carcinoid debulking threshold give?",
    },
    {"role": "assistant", "content": "Liver progression-free survival of 72 months."},
]


def _assistant(tmp_path: Path, focus: int) -> Assistant:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    (corpus / "debulking-series.md").write_text(DEBULKING)
    (corpus / "other-series.md").write_text(OTHER)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", chunk_max_tokens=40,
                        chunk_overlap_tokens=0, abstain_threshold=0.0, max_per_source=0,
                        follow_up_focus=focus)  # fmt: skip
    assistant = Assistant(settings, embedder=FakeEmbedder())
    assistant.load()
    return assistant


def test_the_follow_up_finds_its_aspect_within_the_discussed_source(tmp_path: Path) -> None:
    question = "And what did those patients die of?"
    focused = _assistant(tmp_path, focus=1).ask(question, k=3, history=HISTORY)
    assert focused.query != question  # rewritten with the earlier turn's terms
    assert focused.passages[0].chunk.doc_id == "debulking-series"
    ids = [p.chunk.id for p in focused.passages]
    deaths = next(i for i in ids if "died" in focused.passages[ids.index(i)].chunk.text)
    plain = _assistant(tmp_path, focus=0).ask(question, k=3, history=HISTORY)
    plain_ids = [p.chunk.id for p in plain.passages]
    assert deaths in ids and ids.index(deaths) < (
        plain_ids.index(deaths) if deaths in plain_ids else len(plain_ids)
    )


def test_only_a_follow_up_pays_a_second_search(tmp_path: Path) -> None:
    assistant = _assistant(tmp_path, focus=1)
    asked: list[str] = []
    encode = assistant.query_encoder.embed_query

    def recording(text: str):  # type: ignore[no-untyped-def]
        asked.append(text)
        return encode(text)

    assistant.query_encoder.embed_query = recording  # type: ignore[method-assign]
    assistant.ask("What causes death after carcinoid liver debulking?", history=HISTORY)
    assert len(asked) == 1
    assistant.ask("And what did those patients die of?", history=HISTORY)
    assert asked[-1] == "And what did those patients die of?" and len(asked) == 3
