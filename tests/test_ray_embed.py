"""Embedding on a local Ray (one Ray session for the module): the vectors equal a local build's,
`assistant index --ray` builds with it, and nothing imports Ray without --ray."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import FIXTURE_CORPUS
from typer.testing import CliRunner

from assistant import Assistant, Settings
from assistant.chunk import chunk_documents, embedding_text
from assistant.corpus import load_corpus

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ray_session() -> Iterator[object]:
    import ray  # the scale extra; `make test` installs it

    kwargs = {"num_cpus": 2, "include_dashboard": False, "log_to_driver": False}
    try:
        ray.init(**kwargs)
    except Exception:  # noqa: BLE001 - on a busy machine Ray's first start can time out once
        ray.shutdown()
        ray.init(**kwargs)
    yield ray
    ray.shutdown()


def _fixture_texts() -> list[str]:
    docs, _ = load_corpus(FIXTURE_CORPUS)
    by_id = {d.id: d for d in docs}
    chunks = chunk_documents(docs, 180, 40)
    return [embedding_text(c, by_id[c.doc_id].title) for c in chunks]


@pytest.mark.parametrize("backend", ["onnx-int8", "torch"])
def test_ray_vectors_equal_the_local_ones(ray_session: object, backend: str) -> None:
    """The default backend (int8: activations quantised per batch) and torch."""
    from assistant.embed import load_embedder
    from assistant.ray_embed import RayEmbedder

    texts = _fixture_texts() * 3  # several model batches over two actors
    settings = Settings(batch_size=8, ray_batch_size=16, ray_actors=2, embedding_backend=backend)
    local = load_embedder(settings.embedding_model, batch_size=8, backend=backend)
    expected = local.embed_documents(texts)
    got = RayEmbedder(local, settings).embed_documents(texts)
    assert got.shape == expected.shape
    assert float(np.max(np.abs(got - expected))) <= 1e-4


def test_index_with_ray_flag_into_milvus(ray_session: object, tmp_path: Path) -> None:
    """`assistant index --ray` embeds on Ray and streams the rows into the selected store."""
    from assistant.cli import app, complete_optional_values

    shutil.copytree(FIXTURE_CORPUS, tmp_path / "corpus")
    args = ["index", "--ray", "--json", "--corpus", str(tmp_path / "corpus"),
            "--index", str(tmp_path / "index")]  # fmt: skip
    assert complete_optional_values(args)[:3] == ["index", "--ray", "local"]
    result = CliRunner().invoke(app, complete_optional_values(args),
                                env={"ASSISTANT_STORE": "milvus"})  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["embedded_chunks"] == report["chunks"] > 0
    assert report["store"]["kind"] == "milvus"
    assert report["store"]["inserted_rows"] == report["chunks"]
    s = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", store="milvus")
    built = Assistant(s)
    try:
        ranked = built.search("octreotide survival", k=3)
        assert ranked and ranked[0].chunk.doc_id == "octreotide-trial"
    finally:
        built.store.close()


def test_nothing_imports_ray_without_the_flag(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE_CORPUS, tmp_path / "corpus")
    script = (
        "import sys\n"
        "from assistant.cli import main\n"
        f"sys.argv = ['assistant', 'index', '--json', '--corpus', {str(tmp_path / 'corpus')!r},"
        f" '--index', {str(tmp_path / 'index')!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('RAY', sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "RAY []"
