"""The HTTP API through FastAPI's TestClient: every route, every bad input, the security knobs."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import client_for
from typer.testing import CliRunner

from assistant import Assistant, Settings
from assistant.server import MAX_K, RateLimiter, create_app, get_assistant

QUESTION = "What is the kidney toxicity of PRRT with lutetium-177 dotatate?"
WEB = Path(__file__).resolve().parent.parent / "assistant" / "web"


@pytest.fixture
def client(fake_assistant: Assistant) -> TestClient:
    return client_for(fake_assistant, rate_limit_per_minute=0)


def assert_error(response, status: int, field: str | None, code: str | None = None) -> dict:
    """A JSON error body with the expected status and the field it names."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error", "message", "field", "hint"}
    assert body["field"] == field, body
    assert body["message"]
    if code:
        assert body["error"] == code
    return body


# ---------------------------------------------------------------------------- health
def test_healthz_and_readyz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready" and body["sources"] == 4 and body["chunks"] > 4
    assert body["model"] == "fake-embedder"
    assert "index_dir" not in body and "corpus_dir" not in body  # no server paths


def test_not_ready_until_loaded_then_ready(settings: Settings, fake_embedder) -> None:
    assistant = Assistant(settings, embedder=fake_embedder)  # not loaded yet
    app = create_app(assistant)
    bare = TestClient(app)  # no lifespan: nothing loads it
    assert_error(bare.get("/readyz"), 503, None, "not_ready")
    r = bare.post("/v1/ask", json={"question": QUESTION})
    assert_error(r, 503, None, "not_ready")
    assert r.headers["retry-after"] == "5"
    assert bare.get("/healthz").status_code == 200
    with TestClient(app) as live:  # start-up loads the assistant in a background thread
        deadline = time.monotonic() + 30
        while live.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.get("/readyz").status_code == 200
        assert live.post("/v1/ask", json={"question": QUESTION}).status_code == 200


def test_load_failure_is_reported_by_readyz(tmp_path: Path, fake_embedder) -> None:
    (tmp_path / "empty").mkdir()
    s = Settings(corpus_dir=tmp_path / "empty", index_dir=tmp_path / "index")
    app = create_app(Assistant(s, embedder=fake_embedder))
    with TestClient(app) as c:
        app.state.loader.join(10)
        body = assert_error(c.get("/readyz"), 503, None, "not_ready")
        assert "no notes found" in body["message"]


def test_create_app_from_settings_builds_an_unloaded_assistant(settings: Settings) -> None:
    app = create_app(settings)
    assert isinstance(app.state.assistant, Assistant)
    assert app.state.assistant.settings is settings
    assert not app.state.assistant.is_loaded  # loading waits for start-up, never at import


def test_routes_get_the_assistant_from_a_dependency(
    fake_assistant: Assistant, settings: Settings, fake_embedder
) -> None:
    app = create_app(Assistant(settings, embedder=fake_embedder))  # never loaded
    bare = TestClient(app)
    assert_error(bare.post("/v1/ask", json={"question": QUESTION}), 503, None, "not_ready")
    app.dependency_overrides[get_assistant] = lambda: fake_assistant
    r = bare.post("/v1/ask", json={"question": QUESTION})
    assert r.status_code == 200 and r.json()["passages"]
    assert bare.get("/readyz").json()["sources"] == fake_assistant.status()["sources"]


# ---------------------------------------------------------------------------- /v1/ask
def test_ask_returns_the_cli_json_object(client: TestClient, fake_assistant: Assistant) -> None:
    r = client.post("/v1/ask", json={"question": QUESTION})
    assert r.status_code == 200
    body = r.json()
    expected = fake_assistant.ask(QUESTION).to_dict()
    timings = body.pop("timings_ms")
    assert set(timings) == set(expected.pop("timings_ms"))
    assert body == expected
    assert body["abstained"] is False and re.search(r"\[\d\]", body["answer"])
    source = body["passages"][0]["source"]
    assert set(source) == {"id", "title", "authors", "journal", "year", "pmid", "doi", "url",
                           "source_type", "after_review", "label"}  # fmt: skip
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_ask_follow_up_uses_history(client: TestClient, fake_assistant: Assistant) -> None:
    history = [
        {"role": "user", "content": "What does lutetium-177 dotatate PRRT achieve?"},
        {"role": "assistant", "content": "Progression-free survival ... [1]"},
    ]
    r = client.post("/v1/ask", json={"question": "And its kidney toxicity?", "history": history})
    assert r.status_code == 200
    body = r.json()
    assert body["question"] == "And its kidney toxicity?"
    assert body["query"] != body["question"] and "dotatate" in body["query"]
    assert body["query"] == fake_assistant.ask("And its kidney toxicity?", history=history).query


def test_ask_k_mode_and_filters(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": QUESTION, "k": 2, "mode": "bm25"})
    assert r.status_code == 200
    assert r.json()["mode"] == "bm25" and len(r.json()["passages"]) == 2
    only = {"year_min": 2017, "year_max": 2017, "source_types": ["rct"]}
    r = client.post("/v1/ask", json={"question": QUESTION, "filters": only})
    assert r.status_code == 200
    passages = r.json()["passages"]
    assert passages and {p["source"]["id"] for p in passages} == {"prrt-study"}
    r = client.post("/v1/ask", json={"question": QUESTION, "filters": {"year_min": 2100}})
    assert r.status_code == 200 and r.json()["passages"] == [] and r.json()["abstained"]


def test_ask_abstains_clearly(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": "Which football club won the cup in 1994?"})
    assert r.status_code == 200
    body = r.json()
    assert body["abstained"] is True and body["answer"] is None
    assert "does not appear to address" in body["message"]


# ---------------------------------------------------------------------------- /v1/search
def test_search_returns_passages_only(client: TestClient, fake_assistant: Assistant) -> None:
    r = client.post("/v1/search", json={"query": "embolization", "k": 3})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"query", "mode", "offset", "passages", "timings_ms"}
    assert "answer" not in body and len(body["passages"]) == 3
    expected = [p.to_dict() for p in fake_assistant.search("embolization", k=3)]
    assert body["passages"] == expected
    page2 = client.post("/v1/search", json={"query": "embolization", "k": 3, "offset": 3}).json()
    assert [p["rank"] for p in page2["passages"]] == [4, 5, 6][: len(page2["passages"])]


# ---------------------------------------------------------------------------- /v1/sources
def test_sources_paginated(client: TestClient) -> None:
    first = client.get("/v1/sources", params={"limit": 3}).json()
    assert first["total"] == 4 and first["limit"] == 3 and len(first["items"]) == 3
    rest = client.get("/v1/sources", params={"offset": 3, "limit": 3}).json()
    ids = [s["id"] for s in first["items"] + rest["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert all("path" not in s and s["chunks"] > 0 for s in first["items"])
    assert client.get("/v1/sources", params={"offset": 10}).json()["items"] == []


def test_source_detail_and_unknown_id(client: TestClient) -> None:
    r = client.get("/v1/sources/prrt-study")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "prrt-study" and body["year"] == 2017 and body["pmid"] == "67890"
    assert "Kidney toxicity was rare" in body["text"] and "path" not in body
    body = assert_error(client.get("/v1/sources/no-such-source"), 404, "id", "not_found")
    assert "no-such-source" in body["message"]
    assert_error(client.get("/v1/sources/%3Cscript%3E"), 404, "id")


# ---------------------------------------------------------------------------- currency, citations
def test_ask_marks_sources_after_the_review_and_stamps_the_corpus(
    client: TestClient, fake_assistant: Assistant
) -> None:
    body = client.post("/v1/ask", json={"question": QUESTION, "k": 4}).json()
    marks = {p["source"]["id"]: p["source"]["after_review"] for p in body["passages"]}
    assert marks["prrt-study"] is True  # 2017
    assert all(marks[i] is False for i in marks if i != "prrt-study")  # 2007-2012
    manifest = fake_assistant.index.manifest
    assert body["corpus"] == {
        "fingerprint": manifest["corpus"]["fingerprint"],
        "newest_source_year": 2017,
        "n_sources": 4,
        "review_year": 2012,
    }
    assert client.get("/readyz").json()["corpus"] == body["corpus"]
    assert client.get("/v1/sources/prrt-study").json()["after_review"] is True
    items = client.get("/v1/sources").json()["items"]
    assert {s["id"]: s["after_review"] for s in items}["octreotide-trial"] is False


def test_source_as_ris_and_bibtex(client: TestClient) -> None:
    import bibtexparser
    import rispy

    r = client.get("/v1/sources/octreotide-trial", params={"format": "ris"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-research-info-systems")
    assert 'filename="octreotide-trial.ris"' in r.headers["content-disposition"]
    (record,) = rispy.loads(r.text)
    assert record["type_of_reference"] == "JOUR" and record["doi"] == "10.9999/fixture.1"
    assert record["authors"] == ["Alpha, A", "Beta, B"] and record["accession_number"] == "12345"
    r = client.get("/v1/sources/octreotide-trial", params={"format": "bibtex"})
    assert r.headers["content-type"].startswith("application/x-bibtex")
    (entry,) = bibtexparser.parse_string(r.text).entries
    assert entry.entry_type == "article" and entry.key == "octreotide-trial"
    assert entry["journal"] == "Fixture J" and entry["pmid"] == "12345"
    assert_error(client.get("/v1/sources/octreotide-trial", params={"format": "xml"}), 422,
                 "format")  # fmt: skip
    assert_error(client.get("/v1/sources/nope", params={"format": "ris"}), 404, "id")


def test_cite_exports_the_sources_of_an_answer(client: TestClient) -> None:
    import bibtexparser

    answer = client.post("/v1/ask", json={"question": QUESTION, "k": 4}).json()
    ids = [p["source"]["id"] for p in answer["passages"]]
    r = client.post("/v1/cite", json={"ids": ids, "format": "bibtex"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-bibtex")
    keys = [e.key for e in bibtexparser.parse_string(r.text).entries]
    assert keys == list(dict.fromkeys(ids))  # each source once, in rank order
    assert_error(client.post("/v1/cite", json={"ids": [ids[0], "nope"], "format": "ris"}), 404,
                 "ids.1", "not_found")  # fmt: skip
    assert_error(client.post("/v1/cite", json={"ids": ids, "format": "endnote"}), 422, "format")
    assert_error(client.post("/v1/cite", json={"ids": [], "format": "ris"}), 422, "ids")


# ---------------------------------------------------------------------------- bad input
BAD_BODIES = [
    ({"question": ""}, "question"),
    ({"question": "   \n\t "}, "question"),
    ({"question": "x" * 2001}, "question"),
    ({}, "question"),
    ({"question": QUESTION, "mode": "semantic"}, "mode"),
    ({"question": QUESTION, "k": 0}, "k"),
    ({"question": QUESTION, "k": MAX_K + 1}, "k"),
    ({"question": QUESTION, "k": "five"}, "k"),
    ({"question": 42}, "question"),
    ({"question": QUESTION, "top_k": 3}, "top_k"),
    ({"question": QUESTION, "history": [{"role": "system", "content": "x"}]}, "history.0.role"),
    ({"question": QUESTION, "history": "not a list"}, "history"),
    ({"question": QUESTION, "filters": {"source_types": ["blog"]}}, "filters.source_types.0"),
    ({"question": QUESTION, "filters": {"year_min": 2020, "year_max": 2010}}, "filters"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES, ids=[f for _, f in BAD_BODIES])
def test_ask_bad_input_names_the_field(client: TestClient, body: dict, field: str) -> None:
    r = client.post("/v1/ask", json=body)
    error = assert_error(r, 422, field, "invalid_input")
    assert error["errors"][0]["field"] == field
    assert field.split(".")[0] in error["message"]


def test_question_limit_follows_the_setting(fake_assistant: Assistant) -> None:
    c = client_for(fake_assistant, rate_limit_per_minute=0, max_question_chars=50)
    body = assert_error(c.post("/v1/ask", json={"question": "x" * 51}), 422, "question")
    assert "limit is 50" in body["message"] and "ASSISTANT_MAX_QUESTION_CHARS" in body["hint"]
    assert c.post("/v1/ask", json={"question": "octreotide " * 4}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": " "}, "query"),
        ({"query": "prrt", "offset": -1}, "offset"),
        ({"query": "prrt", "mode": "x"}, "mode"),
    ],  # fmt: skip
)
def test_search_bad_input(client: TestClient, body: dict, field: str) -> None:
    assert_error(client.post("/v1/search", json=body), 422, field)


@pytest.mark.parametrize(
    "raw", [b"{not json", b'{"question": "a"', b"", b"\xff\xfe", b'{"question": "a",}']
)
def test_malformed_json_is_400(client: TestClient, raw: bytes) -> None:
    r = client.post("/v1/ask", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert_error(r, r.status_code, "body" if r.status_code == 400 else r.json()["field"])
    if raw != b"":
        assert r.status_code == 400 and r.json()["error"] == "malformed_json"


def test_non_object_bodies_are_422(client: TestClient) -> None:
    for body in ([QUESTION], QUESTION, None, 3):
        assert_error(client.post("/v1/ask", json=body), 422, "body")


def test_sources_bad_query_parameters(client: TestClient) -> None:
    assert_error(client.get("/v1/sources", params={"limit": 0}), 422, "limit")
    assert_error(client.get("/v1/sources", params={"offset": "x"}), 422, "offset")
    assert_error(client.get("/v1/sources", params={"page": 2}), 422, "page")


def test_body_over_the_limit_is_413(fake_assistant: Assistant) -> None:
    c = client_for(fake_assistant, rate_limit_per_minute=0, max_body_bytes=2048)
    big = {"question": QUESTION, "history": [{"role": "user", "content": "y" * 3000}]}
    assert_error(c.post("/v1/ask", json=big), 413, "body", "body_too_large")

    def chunks():  # no Content-Length: the size is counted as the body streams in
        yield b'{"question": "'
        for _ in range(10):
            yield b"z" * 500
        yield b'"}'

    r = c.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert_error(r, 413, "body", "body_too_large")
    r = c.post("/v1/ask", content=b"{}", headers={"Content-Length": "abc"})
    assert r.status_code == 400


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing"), 404, None, "not_found")
    assert_error(client.get("/v1/ask"), 405, None, "method_not_allowed")


def test_no_5xx_for_odd_but_valid_input(client: TestClient) -> None:
    odd = ["<script>alert(1)</script>", "?" * 200, "é" * 300, "\u0000 octreotide", "[1] [2]"]
    for question in odd:
        for route, key in (("/v1/ask", "question"), ("/v1/search", "query")):
            r = client.post(route, json={key: question})
            assert r.status_code < 500, (question, r.text)


def test_unexpected_failures_are_json_500_without_details(
    fake_assistant: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("secret patient detail")

    monkeypatch.setattr(fake_assistant, "ask", boom)
    r = client_for(fake_assistant, rate_limit_per_minute=0).post("/v1/ask", json={"question": "q?"})
    assert_error(r, 500, None, "internal_error")
    assert "secret" not in r.text


def test_assistant_errors_that_are_not_input_errors_are_503(
    fake_assistant: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.errors import IndexStateError

    def stale(*args, **kwargs):
        raise IndexStateError("index changed on disk", "run: assistant index")

    monkeypatch.setattr(fake_assistant, "search", stale)
    r = client_for(fake_assistant, rate_limit_per_minute=0).post("/v1/search", json={"query": "q"})
    assert_error(r, 503, None, "unavailable")
    assert r.json()["hint"] == "run: assistant index"


# ---------------------------------------------------------------------------- security
def test_api_key_required_on_every_v1_route_when_set(fake_assistant: Assistant) -> None:
    c = client_for(fake_assistant, rate_limit_per_minute=0, api_key="s3cret")
    calls = [("post", "/v1/ask", {"json": {"question": QUESTION}}),
             ("post", "/v1/search", {"json": {"query": "prrt"}}),
             ("get", "/v1/sources", {}), ("get", "/v1/sources/prrt-study", {})]  # fmt: skip
    for method, path, kw in calls:
        r = getattr(c, method)(path, **kw)
        assert_error(r, 401, "X-API-Key", "unauthorized")
        r = getattr(c, method)(path, headers={"X-API-Key": "wrong"}, **kw)
        assert_error(r, 401, "X-API-Key")
        assert getattr(c, method)(path, headers={"X-API-Key": "s3cret"}, **kw).status_code == 200
    # checked before the body is read: a malformed body without a key is still 401
    r = c.post("/v1/ask", content=b"{bad", headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    for open_path in ("/healthz", "/readyz", "/widget.js", "/", "/openapi.json"):
        assert c.get(open_path).status_code == 200, open_path
    schemes = c.get("/openapi.json").json()["components"]["securitySchemes"]
    assert any(s.get("name") == "X-API-Key" for s in schemes.values())


def test_no_api_key_by_default(client: TestClient) -> None:
    assert client.get("/v1/sources").status_code == 200
    assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})


def test_rate_limit_per_client(fake_assistant: Assistant) -> None:
    c = client_for(fake_assistant, rate_limit_per_minute=3)
    assert [c.get("/v1/sources").status_code for _ in range(3)] == [200, 200, 200]
    r = c.get("/v1/sources")
    assert_error(r, 429, None, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert c.get("/healthz").status_code == 200  # only /v1 is limited


def test_rate_limiter_refills_and_forgets_idle_clients() -> None:
    limiter = RateLimiter(60, max_clients=2)  # one token a second
    assert limiter.check("a", now=0.0) == 0
    for _ in range(59):
        limiter.check("a", now=0.0)
    assert limiter.check("a", now=0.0) == pytest.approx(1.0)
    assert limiter.check("a", now=1.5) == 0  # refilled
    assert limiter.check("b", now=100.0) == 0
    limiter.check("c", now=100.0)  # over max_clients: the idle, full bucket of "a" is dropped
    assert len(limiter._buckets) <= 2 and "a" not in limiter._buckets


def test_cors_denies_by_default(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": QUESTION},
                    headers={"Origin": "https://elsewhere.example"})  # fmt: skip
    assert "access-control-allow-origin" not in r.headers
    pre = client.options("/v1/ask", headers={"Origin": "https://elsewhere.example",
                                             "Access-Control-Request-Method": "POST"})  # fmt: skip
    assert "access-control-allow-origin" not in pre.headers


def test_cors_allow_list(fake_assistant: Assistant) -> None:
    c = client_for(fake_assistant, rate_limit_per_minute=0, cors_origins=["https://intranet.example"],
                   api_key="k")  # fmt: skip
    pre = c.options("/v1/ask", headers={"Origin": "https://intranet.example",
                                        "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "content-type,x-api-key"})  # fmt: skip
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://intranet.example"
    assert "x-api-key" in pre.headers["access-control-allow-headers"].lower()
    r = c.post("/v1/ask", json={"question": QUESTION},
               headers={"Origin": "https://intranet.example", "X-API-Key": "k"})  # fmt: skip
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://intranet.example"
    denied = c.post(
        "/v1/ask", json={"question": QUESTION}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in denied.headers
    unauth = c.post(
        "/v1/ask", json={"question": QUESTION}, headers={"Origin": "https://intranet.example"}
    )
    assert unauth.status_code == 401  # the error still carries CORS headers the page can read
    assert unauth.headers["access-control-allow-origin"] == "https://intranet.example"


def test_questions_stay_out_of_the_logs_unless_enabled(
    fake_assistant: Assistant, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Patient Jane Roe 1961 octreotide dose?"
    caplog.set_level(logging.DEBUG)
    c = client_for(fake_assistant, rate_limit_per_minute=0)
    assert c.post("/v1/ask", json={"question": secret}).status_code == 200
    assert c.post("/v1/search", json={"query": secret}).status_code == 200
    assert c.post("/v1/ask", json={"question": secret, "k": 99}).status_code == 422
    assert "Jane Roe" not in caplog.text
    c = client_for(fake_assistant, log_questions=True)
    assert c.post("/v1/ask", json={"question": secret}).status_code == 200
    assert "Jane Roe" in caplog.text


# ---------------------------------------------------------------------------- widget, demo, docs
def test_widget_js_is_served_self_contained(client: TestClient) -> None:
    r = client.get("/widget.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/javascript")
    assert r.content == (WEB / "widget.js").read_bytes()
    js = r.text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):  # fmt: skip
        assert sink not in js, f"widget.js must not use {sink}"
    code = re.sub(r"/\*.*?\*/", "", js, flags=re.S)  # the header comment shows the embed tag
    assert not re.search(r"""(src|href)\s*=\s*["']https?://""", code)  # no CDN, no remote assets
    assert "import " not in js and "require(" not in js


def test_demo_page_embeds_the_widget(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert re.search(r'<script src="/widget.js" data-endpoint="[^"]*" defer></script>', r.text)
    assert "script-src 'self'" in r.headers["content-security-policy"]


def test_openapi_documents_routes_errors_and_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert {"/v1/ask", "/v1/search", "/v1/sources", "/v1/sources/{source_id}", "/healthz",
            "/readyz"} <= set(paths)  # fmt: skip
    ask = paths["/v1/ask"]["post"]
    examples = ask["requestBody"]["content"]["application/json"]["examples"]
    assert {"question", "follow-up"} <= set(examples)
    assert {"200", "400", "401", "413", "422", "429"} <= set(ask["responses"])
    assert "404" in paths["/v1/sources/{source_id}"]["get"]["responses"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/docs-static/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text.lower()
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    json.dumps(spec)


# ---------------------------------------------------------------------------- CLI
def test_serve_command_loads_then_runs_uvicorn(
    settings: Settings, fake_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from assistant.cli import app

    seen: dict[str, object] = {}
    monkeypatch.setattr("assistant.lifecycle.load_embedder", lambda *a, **k: fake_embedder)
    monkeypatch.setattr(
        "assistant.lifecycle.describe_model", lambda name: (name, fake_embedder.fingerprint)
    )
    monkeypatch.setattr(uvicorn, "run", lambda app_, **kw: seen.update(app=app_, **kw))
    result = CliRunner().invoke(
        app,
        [
            "serve",
            "--port",
            "8123",
            "--host",
            "127.0.0.1",
            "--corpus",
            str(settings.corpus_dir),
            "--index",
            str(settings.index_dir),
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    assert seen["port"] == 8123 and seen["host"] == "127.0.0.1"
    assert seen["app"].state.assistant.is_loaded
    assert "Serving 4 sources" in result.output


def test_serve_with_processes_hands_the_settings_to_a_uvicorn_factory(
    settings: Settings, fake_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from assistant.cli import app
    from assistant.server.app import WORKER_SETTINGS_ENV, worker_app

    seen: dict[str, object] = {}
    monkeypatch.setattr("assistant.lifecycle.load_embedder", lambda *a, **k: fake_embedder)
    monkeypatch.setattr(
        "assistant.lifecycle.describe_model", lambda name: (name, fake_embedder.fingerprint)
    )
    monkeypatch.setattr(uvicorn, "run", lambda app_, **kw: seen.update(app=app_, **kw))
    monkeypatch.delenv(WORKER_SETTINGS_ENV, raising=False)
    args = ["serve", "--port", "8124", "--processes", "2", "--corpus", str(settings.corpus_dir),
            "--index", str(settings.index_dir)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen["app"] == "assistant.server.app:worker_app"
    assert seen["factory"] is True and seen["workers"] == 2 and seen["port"] == 8124
    assert "2 server processes" in result.output
    # a worker serves exactly the parent's settings (flags included) and never rebuilds
    worker = worker_app().state.assistant.settings
    assert worker.corpus_dir == settings.corpus_dir and worker.port == 8124
    assert worker.processes == 2 and worker.auto_rebuild is False
    monkeypatch.delenv(WORKER_SETTINGS_ENV)
    with pytest.raises(RuntimeError, match="assistant serve"):
        worker_app()


def test_serve_refuses_processes_on_a_milvus_lite_file(tmp_path: Path) -> None:
    from assistant.cli import app

    result = CliRunner().invoke(app, ["serve", "--processes", "2"],
                                env={"ASSISTANT_STORE": "milvus"})  # fmt: skip
    assert result.exit_code == 1
    assert "Milvus Lite" in result.output and "--processes 1" in result.output


def test_serve_command_errors_are_one_line(tmp_path: Path) -> None:
    from assistant.cli import app

    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(
        app, ["serve", "--corpus", str(tmp_path / "empty"), "--index", str(tmp_path / "i")]
    )
    assert result.exit_code == 1
    assert "error: no notes found" in result.output
    result = CliRunner().invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code != 0
