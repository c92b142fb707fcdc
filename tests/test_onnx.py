"""The ONNX embedding backends: same vectors as torch, part of the index identity, cached export,
and no torch on the query path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURE_CORPUS, FakeEmbedder

from assistant import Assistant, Settings
from assistant.chunk_vectors import index_backend_version
from assistant.embed import load_embedder
from assistant.errors import AssistantError, IndexStateError
from assistant.index import check_backend, index_backend, read_manifest

FORBIDDEN = ("torch", "sentence_transformers", "transformers")
SENTENCES = [
    "Octreotide LAR prolonged time to progression in midgut neuroendocrine tumours.",
    "Liver transplantation is considered for selected patients with unresectable metastases.",
    "Peptide receptor radionuclide therapy with lutetium-177 dotatate is well tolerated.",
    "What is the survival after hepatic resection?",
    "the weather is sunny",
    "Ki-67",
]


class FakeOnnxEmbedder(FakeEmbedder):
    backend = "onnx-int8"


# ------------------------------------------------------------------ backend identity (fast)
def test_manifest_records_backend_and_mismatch_is_refused(settings: Settings):
    Assistant(settings, embedder=FakeOnnxEmbedder()).load()
    manifest = read_manifest(settings.index_dir)
    assert manifest is not None and manifest["model"]["backend"] == "onnx-int8"

    torch_fake = FakeEmbedder()  # same model fingerprint, torch backend
    with pytest.raises(IndexStateError) as info:
        Assistant(settings, embedder=torch_fake).load(rebuild=False)
    assert "'onnx-int8' embedding backend" in str(info.value) and "'torch'" in str(info.value)
    assert f"assistant index --force --index {settings.index_dir}" in info.value.hint
    assert torch_fake.embedded == 0  # refused before anything was embedded


def test_backend_mismatch_rebuilds_when_rebuilding_is_on(settings: Settings):
    Assistant(settings, embedder=FakeOnnxEmbedder()).load()
    torch_fake = FakeEmbedder()
    assistant = Assistant(settings, embedder=torch_fake)
    assistant.load()  # auto_rebuild is on by default
    assert torch_fake.embedded > 0  # every chunk embedded again: no vectors of the other backend
    assert read_manifest(settings.index_dir)["model"]["backend"] == "torch"
    assert assistant.status()["backend"] == "torch"
    assert assistant.ask("octreotide progression").passages


def test_reload_refuses_an_index_of_another_backend(settings: Settings):
    live = Assistant(settings, embedder=FakeEmbedder())
    live.load()
    Assistant(settings, embedder=FakeOnnxEmbedder()).build(force=True)
    with pytest.raises(IndexStateError):
        live.reload()


def test_another_version_of_the_recipe_is_refused_or_rebuilt(settings: Settings):
    Assistant(settings, embedder=FakeOnnxEmbedder()).load()
    assert read_manifest(settings.index_dir)["model"]["backend_version"] == 0

    class NewRecipe(FakeOnnxEmbedder):
        backend_version = 2

    newer = NewRecipe()
    with pytest.raises(IndexStateError, match="version 0 of the 'onnx-int8' recipe") as info:
        Assistant(settings, embedder=newer).load(rebuild=False)
    assert "makes version 2" in str(info.value) and newer.embedded == 0
    Assistant(settings, embedder=newer).load()  # rebuilding is on: every chunk embedded again
    assert newer.embedded > 0
    assert read_manifest(settings.index_dir)["model"]["backend_version"] == 2
    manifest = {"model": {"backend": "onnx-int8"}}  # written before the field: the first recipe
    assert index_backend_version(manifest) == 1


def test_indexes_from_before_backends_count_as_torch(tmp_path: Path):
    manifest = {"model": {"name": "m", "fingerprint": "f", "dimension": 3}}
    assert index_backend(manifest) == "torch"
    check_backend(manifest, "torch", tmp_path)
    with pytest.raises(IndexStateError, match="'torch' embedding backend"):
        check_backend(manifest, "onnx", tmp_path)


def test_backend_setting_is_validated(monkeypatch):
    assert Settings().embedding_backend in ("torch", "onnx", "onnx-int8")
    monkeypatch.setenv("ASSISTANT_EMBEDDING_BACKEND", "onnx")
    assert Settings().embedding_backend == "onnx"
    monkeypatch.setenv("ASSISTANT_EMBEDDING_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="embedding_backend"):
        Settings()
    with pytest.raises(AssistantError, match="unknown embedding backend 'tensorflow'"):
        load_embedder("all-MiniLM-L6-v2", backend="tensorflow")


def test_onnx_backend_needs_a_local_model_folder(tmp_path: Path):
    with pytest.raises(AssistantError) as info:
        load_embedder("no-such-org/no-such-model", backend="onnx-int8", cache_dir=tmp_path)
    assert "ASSISTANT_EMBEDDING_BACKEND=torch" in info.value.hint


def test_unwritable_cache_names_the_setting(tmp_path: Path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(AssistantError) as info:
        load_embedder("all-MiniLM-L6-v2", backend="onnx-int8", cache_dir=blocker)
    assert str(blocker) in str(info.value) and "ASSISTANT_ONNX_CACHE_DIR" in info.value.hint


def test_cli_import_chain_imports_no_torch():
    """Every module the CLI and the API import at start-up is free of torch and friends."""
    code = (
        "import sys\n"
        "import assistant, assistant.cli, assistant.server, assistant.evaluate, "
        "assistant.report, assistant.beir, assistant.embed_onnx\n"
        "import assistant.cli.chat, assistant.cli.serve, assistant.cli.evaluate\n"
        f"print([m for m in {FORBIDDEN!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ the real model (slow)
@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export (float and int8) of the offline MiniLM per test session."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    load_embedder("all-MiniLM-L6-v2", backend="onnx-int8", cache_dir=cache)
    return cache


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_matches_torch_on_fixed_sentences(backend, onnx_cache, real_embedder):
    onnx = load_embedder("all-MiniLM-L6-v2", backend=backend, cache_dir=onnx_cache)
    assert onnx.backend == backend and onnx.dimension == real_embedder.dimension == 384
    assert onnx.fingerprint == real_embedder.fingerprint  # same model; the backend is separate
    ref = real_embedder.embed_documents(SENTENCES)
    docs = onnx.embed_documents(SENTENCES)
    assert docs.dtype == np.float32 and np.allclose(np.linalg.norm(docs, axis=1), 1, atol=1e-4)
    cosines = (docs * ref).sum(axis=1)
    assert cosines.min() >= (0.999 if backend == "onnx" else 0.99), cosines
    # questions alone or batched get the documents' vectors (int8: activation ranges are taken
    # per batch, so a text's vector moves a little with its batch neighbours)
    queries = np.vstack([onnx.embed_queries(SENTENCES[:3]), onnx.embed_query(SENTENCES[0])])
    same = (queries * np.vstack([docs[:3], docs[:1]])).sum(axis=1)
    assert same.min() >= (0.9999 if backend == "onnx" else 0.99), same
    # the unknown-term rule sees the same vocabulary as with torch
    assert onnx.vocabulary == real_embedder.vocabulary and "liver" in onnx.vocabulary


@pytest.mark.slow
def test_damaged_or_stale_cache_is_rebuilt_with_a_message(onnx_cache, tmp_path, real_embedder):
    from assistant.embed_onnx import META

    cache = tmp_path / "cache"
    shutil.copytree(onnx_cache, cache)
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    model = folder / "model-int8.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64  # same size, other bytes
    model.write_bytes(bytes(data))
    notes: list[str] = []
    from assistant.embed_onnx import OnnxEmbedder

    onnx = OnnxEmbedder("all-MiniLM-L6-v2", cache_dir=cache, notice=notes.append)
    assert any("damaged" in n and str(model) in n for n in notes), notes
    ref = real_embedder.embed_documents(SENTENCES[:2])
    assert ((onnx.embed_documents(SENTENCES[:2]) * ref).sum(axis=1) >= 0.99).all()

    # a truncated float model and a record from an older recipe are both redone
    meta = json.loads((folder / META).read_text())
    meta["version"] = -1
    (folder / META).write_text(json.dumps(meta))
    notes.clear()
    OnnxEmbedder("all-MiniLM-L6-v2", quantized=False, cache_dir=cache, notice=notes.append)
    assert any("stale" in n for n in notes), notes
    (folder / "model.onnx").write_bytes(b"not a model")
    notes.clear()
    onnx = OnnxEmbedder("all-MiniLM-L6-v2", quantized=False, cache_dir=cache, notice=notes.append)
    assert any("damaged" in n for n in notes), notes
    assert onnx.dimension == 384
    notes.clear()
    OnnxEmbedder("all-MiniLM-L6-v2", cache_dir=cache, notice=notes.append)
    assert notes == [f"quantising the ONNX model to int8 in {folder}"]  # from the new float one
    # a healthy cache loads silently
    notes.clear()
    OnnxEmbedder("all-MiniLM-L6-v2", cache_dir=cache, notice=notes.append)
    assert notes == []


@pytest.mark.slow
def test_ask_and_eval_with_onnx_never_import_torch(onnx_cache, tmp_path):
    shutil.copytree(FIXTURE_CORPUS, tmp_path / "corpus")
    gold = Path(__file__).parent / "data" / "gold" / "ok.jsonl"
    env = {
        **os.environ,
        "ASSISTANT_EMBEDDING_BACKEND": "onnx-int8",
        "ASSISTANT_ONNX_CACHE_DIR": str(onnx_cache),
        "ASSISTANT_CORPUS_DIR": str(tmp_path / "corpus"),
        "ASSISTANT_INDEX_DIR": str(tmp_path / "index"),
    }
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print('LOADED', [m for m in {FORBIDDEN!r} if m in sys.modules],"
        " file=sys.stderr))\n"
        "from assistant.cli import main\n"
        "sys.argv = ['assistant'] + sys.argv[1:]\n"
        "main()\n"
    )
    commands = [
        ["ask", "--json", "Which patients can receive a liver transplant?"],  # builds the index
        ["ask", "--json", "Is lutetium dotatate toxic to the kidneys?"],
        ["eval", "--json", "--gold", str(gold), "--mode", "dense"],
    ]
    for args in commands:
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                             env=env, timeout=300)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "LOADED []" in out.stderr, (args, out.stderr)
        json.loads(out.stdout)
    manifest = read_manifest(tmp_path / "index")
    assert manifest is not None and manifest["model"]["backend"] == "onnx-int8"
