import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import FakeEmbedder

from assistant import Assistant, Settings
from assistant.errors import AssistantError, IndexStateError
from assistant.index import FORMAT_VERSION, load_index, read_manifest, snapshot_dir
from assistant.manifest import Manifest
from assistant.sentences import answer_units
from assistant.snapshots import read_live


def test_build_writes_self_describing_manifest(fake_assistant: Assistant, settings: Settings):
    manifest = read_manifest(settings.index_dir)
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model"] == {
        "name": "fake-embedder",
        "dimension": 64,
        "fingerprint": fake_assistant.embedder.fingerprint,
        "backend": "torch",  # what an embedder that names no backend counts as
        "backend_version": 0,
    }
    assert manifest["chunker"] == settings.chunker_config()
    assert manifest["counts"]["documents"] == 4
    assert manifest["counts"]["chunks"] == len(fake_assistant.index.chunks) > 4
    assert set(manifest["corpus"]["documents"]) == {
        "octreotide-trial", "liver-transplant", "embolization-review", "prrt-study"
    }  # fmt: skip
    assert "faiss-cpu" in manifest["libraries"] and "created_at" in manifest
    for name in ("dense.faiss", "chunks.db", "sources.json", "bm25", "row_docs.npy"):
        assert (settings.index_dir / name).exists()


def test_saved_index_round_trips(fake_assistant: Assistant, settings: Settings):
    loaded = load_index(settings.index_dir)
    assert [c.id for c in loaded.chunks] == [c.id for c in fake_assistant.index.chunks]
    assert np.allclose(loaded.vectors, fake_assistant.index.vectors)


def test_other_model_is_refused_with_rebuild_command(fake_assistant: Assistant, settings: Settings):
    other = Assistant(settings, embedder=FakeEmbedder(dimension=32, name="other-model"))
    with pytest.raises(IndexStateError) as info:
        other.load()
    assert "other-model" in str(info.value)
    assert f"assistant index --force --index {settings.index_dir}" in info.value.hint


def test_other_format_version_is_refused(fake_assistant: Assistant, settings: Settings):
    path = settings.index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 999
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexStateError, match="format version 999"):
        Assistant(settings, embedder=FakeEmbedder()).load()


def test_corpus_change_is_detected_and_rebuilt_incrementally(
    fake_assistant: Assistant, settings: Settings, corpus_dir: Path
):
    note = corpus_dir / "prrt-study.md"
    note.write_text(note.read_text().replace("65%", "66%"), encoding="utf-8")
    (corpus_dir / "embolization-review.md").unlink()
    embedder = FakeEmbedder()
    again = Assistant(settings, embedder=embedder)
    again.load()
    report = again.last_build
    assert report is not None
    assert report.changed == ["prrt-study"] and report.removed == ["embolization-review"]
    assert report.added == []
    prrt = [c for c in again.index.chunks if c.doc_id == "prrt-study"]
    prrt_units = sum(len(answer_units(c.text)) for c in prrt)
    # the changed note's chunks and their answer sentences, nothing else
    assert embedder.embedded == len(prrt) + prrt_units
    assert report.embedded_chunks == len(prrt)
    unchanged = next(c for c in again.index.chunks if c.doc_id != "prrt-study")
    before = fake_assistant.index.unit_vectors_of(unchanged.id)
    assert before is not None and np.array_equal(again.index.unit_vectors_of(unchanged.id), before)
    assert "66%" in " ".join(c.text for c in again.index.chunks)


def test_no_rebuild_uses_stale_index_with_warning(
    fake_assistant: Assistant, settings: Settings, corpus_dir: Path
):
    note = corpus_dir / "prrt-study.md"
    note.write_text(note.read_text().replace("65%", "66%"), encoding="utf-8")
    stale = Assistant(settings, embedder=FakeEmbedder())
    stale.load(rebuild=False)
    assert stale.last_build is None
    assert any("corpus changed" in w for w in stale.warnings)


def test_incremental_equals_full_rebuild(
    fake_assistant: Assistant, settings: Settings, corpus_dir: Path, tmp_path: Path
):
    note = corpus_dir / "liver-transplant.md"
    note.write_text(note.read_text() + "\nAn added closing sentence about Milan.\n")
    incremental = Assistant(settings, embedder=FakeEmbedder())
    incremental.build()
    full_settings = settings.model_copy(update={"index_dir": tmp_path / "full"})
    full = Assistant(full_settings, embedder=FakeEmbedder())
    full.build(force=True)
    a, b = incremental.index, full.index
    assert [c.to_dict() for c in a.chunks] == [c.to_dict() for c in b.chunks]
    assert np.allclose(a.vectors, b.vectors, atol=1e-6)
    assert a.doc_freq == b.doc_freq
    q = "Milan criteria transplantation"
    assert [p.chunk.id for p in incremental.search(q)] == [p.chunk.id for p in full.search(q)]


def test_interrupted_build_leaves_previous_index(
    fake_assistant: Assistant, settings: Settings, corpus_dir: Path, monkeypatch
):
    before = (settings.index_dir / "manifest.json").read_text()
    note = corpus_dir / "prrt-study.md"
    note.write_text(note.read_text().replace("65%", "67%"), encoding="utf-8")

    class Boom(RuntimeError):
        pass

    def explode(*args, **kwargs):
        raise Boom("interrupted while writing")

    import faiss

    monkeypatch.setattr(faiss, "write_index", explode)
    with pytest.raises(Boom):
        Assistant(settings, embedder=FakeEmbedder()).build()
    assert (settings.index_dir / "manifest.json").read_text() == before
    leftovers = [p for p in settings.index_dir.parent.iterdir() if p.name.startswith(".index")]
    assert leftovers == []
    assert load_index(settings.index_dir).manifest["counts"]["documents"] == 4


def test_damaged_index_names_the_fix(fake_assistant: Assistant, settings: Settings):
    (settings.index_dir / "chunks.db").write_bytes(b"not a database")
    with pytest.raises(IndexStateError, match="damaged") as info:
        load_index(settings.index_dir)
    assert "assistant index --force" in info.value.hint


def test_missing_index_without_auto_rebuild(settings: Settings):
    s = settings.model_copy(update={"auto_rebuild": False})
    with pytest.raises(AssistantError, match="no index") as info:
        Assistant(s, embedder=FakeEmbedder()).load()
    assert "assistant index" in info.value.hint


def test_readme_in_index_folder_survives_rebuild(fake_assistant: Assistant, settings: Settings):
    (settings.index_dir / "README.md").write_text("keep me")
    fake_assistant.build(force=True)
    assert (settings.index_dir / "README.md").read_text() == "keep me"
    shutil.rmtree(settings.index_dir)
    fake_assistant.build()
    assert (settings.index_dir / "manifest.json").exists()


def test_manifest_corpus_fingerprints_match_the_files(fake_assistant: Assistant, settings):
    from assistant.corpus import combined_fingerprint, corpus_fingerprints

    manifest = read_manifest(settings.index_dir)
    files = corpus_fingerprints(settings.corpus_dir)
    assert manifest["corpus"]["files"] == files
    assert manifest["corpus"]["fingerprint"] == combined_fingerprint(files)


def test_a_damaged_manifest_names_its_field(fake_assistant: Assistant, settings: Settings):
    path = settings.index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    assert Manifest.model_validate(manifest).dump() == manifest  # read back exactly as written
    manifest["counts"]["chunks"] = "many"
    del manifest["model"]["dimension"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexStateError, match=r"is damaged: model\.dimension") as info:
        read_manifest(settings.index_dir)
    assert f"assistant index --force --index {settings.index_dir}" in info.value.hint


def _count_manifest_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every read of a manifest.json from now on (the file, whoever reads it)."""
    reads: list[Path] = []
    read_text = Path.read_text

    def counting(self: Path, *args, **kwargs):
        if self.name == "manifest.json":
            reads.append(self)
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    return reads


def test_load_index_with_the_live_manifest_reads_it_no_more(
    fake_assistant: Assistant, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    reads = _count_manifest_reads(monkeypatch)
    live = read_live(settings.index_dir)
    assert live is not None and live.folder == snapshot_dir(settings.index_dir)
    assert len(reads) == 1
    loaded = load_index(settings.index_dir, live)
    assert len(reads) == 1  # the given manifest is used, not read again
    assert loaded.manifest == live.manifest and loaded.snapshot == live.folder.name
    load_index(settings.index_dir)
    assert len(reads) == 2  # without it, load_index reads it itself


def test_loading_an_assistant_reads_the_manifest_once(
    fake_assistant: Assistant, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    reads = _count_manifest_reads(monkeypatch)
    fresh = Assistant(settings, embedder=FakeEmbedder())
    fresh.load()
    assert len(reads) == 1
    assert fresh.index.manifest == read_manifest(settings.index_dir)


def test_a_live_manifest_of_a_removed_snapshot_loads_the_new_one(
    fake_assistant: Assistant, settings: Settings
):
    old = read_live(settings.index_dir)
    assert old is not None
    fake_assistant.build(force=True)
    fake_assistant.build(force=True)  # the snapshot `old` names is deleted by now
    assert not old.folder.exists()
    loaded = load_index(settings.index_dir, old)
    assert loaded.snapshot == snapshot_dir(settings.index_dir).name != old.folder.name


def test_an_unreadable_manifest_names_the_index_folder(fake_assistant: Assistant, settings):
    path = snapshot_dir(settings.index_dir) / "manifest.json"
    path.write_text("{not json")
    with pytest.raises(IndexStateError, match="is unreadable") as info:
        Assistant(settings, embedder=FakeEmbedder()).load()
    assert str(path) in str(info.value)
    assert info.value.hint == f"rebuild it: assistant index --force --index {settings.index_dir}"


def test_an_index_cut_by_another_answer_unit_recipe_is_stale(
    fake_assistant: Assistant, settings: Settings
):
    """The index keeps a vector per answer unit: a new recipe (UNITS_VERSION) rebuilds it."""
    from assistant.index import stale_reason
    from assistant.sentences import UNITS_VERSION

    manifest = read_manifest(settings.index_dir)
    assert manifest["chunker"]["answer_units"] == UNITS_VERSION
    fingerprint = manifest["corpus"]["fingerprint"]
    stemmer = settings.bm25_stemmer
    assert stale_reason(manifest, fingerprint, settings.chunker_config(), stemmer) is None
    older = {**manifest, "chunker": {**manifest["chunker"], "answer_units": UNITS_VERSION - 1}}
    reason = stale_reason(older, fingerprint, settings.chunker_config(), stemmer)
    assert reason is not None and "answer-sentence recipe" in reason
