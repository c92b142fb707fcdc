from pathlib import Path

import pytest
from pydantic import ValidationError

from assistant.settings import Settings, describe_settings, load_settings


def test_every_field_is_described():
    for name, info in Settings.model_fields.items():
        assert info.description, f"setting {name} has no description"
    assert len(describe_settings()) == len(Settings.model_fields)


def test_descriptions_are_one_line_everywhere():
    # the docstrings under the fields wrap over lines; the descriptions read as one line,
    # in the field info and in the JSON schema alike
    schema = Settings.model_json_schema()["properties"]
    for name, info in Settings.model_fields.items():
        assert info.description == " ".join(info.description.split()), name
        assert schema[name]["description"] == info.description, name
    assert Settings.model_fields["fusion"].description.startswith(
        "How hybrid mode fuses the dense and BM25 lists: rrf (reciprocal rank fusion), score "
        "(weighted sum"
    )


def test_precedence_defaults_env_flags(monkeypatch, tmp_path: Path):
    assert Settings().top_k == 5
    monkeypatch.setenv("ASSISTANT_TOP_K", "7")
    monkeypatch.setenv("ASSISTANT_CORPUS_DIR", str(tmp_path))
    assert Settings().top_k == 7
    assert Settings().corpus_dir == tmp_path
    assert load_settings(top_k=9).top_k == 9
    assert load_settings(top_k=None).top_k == 7  # an unset flag does not override


def test_invalid_values_are_refused(monkeypatch):
    with pytest.raises(ValidationError):
        Settings(mode="fuzzy")
    with pytest.raises(ValidationError):
        Settings(chunk_max_tokens=50, chunk_overlap_tokens=60)
    monkeypatch.setenv("ASSISTANT_TOP_K", "many")
    with pytest.raises(ValidationError):
        Settings()


def test_list_and_optional_fields_from_env(monkeypatch):
    monkeypatch.setenv("ASSISTANT_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("ASSISTANT_BM25_STEMMER", "none")
    s = Settings()
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert s.bm25_stemmer is None


def test_store_settings(monkeypatch, tmp_path: Path):
    from assistant.settings import mask_secret

    s = Settings(index_dir=tmp_path)
    assert s.store == "local" and s.milvus_target() == str(tmp_path / "milvus.db")
    monkeypatch.setenv("ASSISTANT_STORE", "milvus")
    monkeypatch.setenv("ASSISTANT_MILVUS_URI", "http://milvus:19530")
    monkeypatch.setenv("ASSISTANT_RAY_ACTORS", "8")
    s = Settings()
    assert (s.store, s.milvus_target(), s.ray_actors) == ("milvus", "http://milvus:19530", 8)
    assert mask_secret("milvus_token", "root:Milvus") == "***"
    with pytest.raises(ValidationError):
        Settings(store="elastic")
    with pytest.raises(ValidationError):
        Settings(milvus_collection="bad name; drop")
