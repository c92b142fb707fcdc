"""`corpus fetch-pubmed` against a local E-utilities stand-in on 127.0.0.1 serving fixture XML."""

from __future__ import annotations

import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.errors import AssistantError, InputError
from assistant.ingest import CorpusStore, PubMedClient

DATA = Path(__file__).parent / "data" / "ingest"
HEADER = (
    '<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, '
    '1st January 2024//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_240101.dtd">\n'
)


def _articles() -> dict[str, bytes]:
    out = {}
    for name in ("pubmed_two.xml", "pubmed_no_abstract.xml"):
        root = ET.fromstring((DATA / name).read_bytes())
        for art in root.findall("PubmedArticle"):
            out[art.findtext("MedlineCitation/PMID")] = ET.tostring(art, encoding="utf-8")
    return out


class FakeEutils:
    """Serves efetch like NCBI: the requested PMIDs that it knows, in one PubmedArticleSet."""

    def __init__(self) -> None:
        self.articles = _articles()
        self.requests: list[tuple[float, dict[str, list[str]]]] = []
        self.fail_with: list[int] = []  # status codes to answer with before succeeding
        self.clock = time.monotonic  # when requests arrive, by this clock
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                url = urlparse(self.path)
                query = parse_qs(url.query)
                fake.requests.append((fake.clock(), query))
                if fake.fail_with:
                    status = fake.fail_with.pop(0)
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if url.path != "/eutils/efetch.fcgi" or query.get("db") != ["pubmed"]:
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                ids = query.get("id", [""])[0].split(",")
                body = HEADER.encode() + b"<PubmedArticleSet>\n"
                body += b"\n".join(fake.articles[i] for i in ids if i in fake.articles)
                body += b"\n</PubmedArticleSet>\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/eutils/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def eutils() -> Iterator[FakeEutils]:
    server = FakeEutils()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_adds_records_and_reports_unknown_pmids(
    eutils: FakeEutils, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_PUBMED_BASE_URL", eutils.base_url)
    monkeypatch.setenv("ASSISTANT_NCBI_API_KEY", "fixture-key")
    monkeypatch.setenv("ASSISTANT_NCBI_EMAIL", "librarian@example.org")
    corpus = tmp_path / "c"
    result = CliRunner().invoke(app, ["corpus", "fetch-pubmed", "90000001", "90000002",
                                      "90000404", "--corpus", str(corpus)])  # fmt: skip
    assert result.exit_code == 1
    assert "error: PMID 90000404: not found in PubMed" in result.stderr
    assert result.stdout.count("added ") == 2
    (_, query), *_ = eutils.requests
    assert query["id"] == ["90000001,90000002,90000404"] and query["retmode"] == ["xml"]
    assert query["api_key"] == ["fixture-key"] and query["email"] == ["librarian@example.org"]
    assert query["tool"] == ["net-liver-assistant"]
    store = CorpusStore(corpus)
    docs = {d.pmid: d for d in store.scan()[0]}
    assert set(docs) == {"90000001", "90000002"}
    prov = docs["90000001"].extra["provenance"]
    assert prov["original"] == "PubMed efetch PMID 90000001" and prov["format"] == "pubmed"
    again = CliRunner().invoke(app, ["corpus", "fetch-pubmed", "90000001", "--corpus", str(corpus)])
    assert again.exit_code == 1 and "already in the corpus" in again.stderr


def test_record_without_abstract_is_refused_others_kept(eutils: FakeEutils) -> None:
    client = PubMedClient(eutils.base_url, backoff=0)
    records, refused = client.fetch(["90000003", "90000002"])
    assert [r.meta["pmid"] for r in records] == ["90000002"]
    assert (
        len(refused) == 1 and "90000003" in refused[0].line() and "no abstract" in refused[0].line()
    )


def test_retries_with_back_off_on_server_errors(eutils: FakeEutils) -> None:
    eutils.fail_with = [503, 429]
    slept: list[float] = []
    client = PubMedClient(eutils.base_url, backoff=0.5, sleep=slept.append)
    records, refused = client.fetch(["90000001"])
    assert len(records) == 1 and not refused
    assert len(eutils.requests) == 3
    backoffs = [s for s in slept if s >= 0.5]
    assert backoffs == [0.5, 1.0]  # doubled each retry


def test_gives_up_after_the_configured_retries(eutils: FakeEutils) -> None:
    eutils.fail_with = [500] * 5
    client = PubMedClient(eutils.base_url, retries=2, backoff=0, sleep=lambda s: None)
    with pytest.raises(AssistantError, match="kept failing"):
        client.fetch(["90000001"])
    assert len(eutils.requests) == 3


def test_client_errors_are_not_retried(eutils: FakeEutils) -> None:
    eutils.fail_with = [400]
    client = PubMedClient(eutils.base_url, backoff=0, sleep=lambda s: None)
    with pytest.raises(AssistantError, match="refused the request"):
        client.fetch(["90000001"])
    assert len(eutils.requests) == 1


class FakeClock:
    """Time that passes only when the client sleeps (plus a fixed cost per request)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("api_key", "per_second"), [(None, 3), ("k", 10)])
def test_request_rate_follows_ncbi_rules(
    eutils: FakeEutils, api_key: str | None, per_second: int
) -> None:
    clock = FakeClock()
    eutils.clock = clock
    client = PubMedClient(eutils.base_url, api_key=api_key, sleep=clock.sleep, clock=clock)
    client.batch_size = 1
    client.fetch(["90000001", "90000002", "90000001"])  # two distinct ids → two requests
    clock.now += 0.05  # some work between two calls
    client.fetch(["90000002"])
    times = [t for t, _ in eutils.requests]
    assert len(times) == 3
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps == pytest.approx([1 / per_second] * 2)  # no faster than NCBI allows, no slower
    assert clock.slept == pytest.approx([1 / per_second, 1 / per_second - 0.05])


def test_offline_gives_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_PUBMED_BASE_URL", f"http://127.0.0.1:{closed_port()}/eutils/")
    monkeypatch.setenv("ASSISTANT_PUBMED_RETRIES", "1")
    monkeypatch.setenv("ASSISTANT_PUBMED_BACKOFF", "0")
    result = CliRunner().invoke(app, ["corpus", "fetch-pubmed", "90000001", "--corpus",
                                      str(tmp_path / "c")])  # fmt: skip
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "cannot reach NCBI E-utilities" in lines[0] and "offline" in lines[0]
    assert "assistant corpus add" in lines[0]
    assert not (tmp_path / "c").exists()


def test_bad_pmid_argument() -> None:
    with pytest.raises(InputError, match="not a PMID"):
        PubMedClient("http://127.0.0.1:9/").fetch(["PMC123"])
