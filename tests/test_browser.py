"""End to end in headless Chromium (Debian's package, driven by Playwright): the demo page, the
widget asking questions and follow-ups, citation links, and XSS payloads that must stay inert."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import serve_in_thread
from playwright.sync_api import Browser, Page, expect, sync_playwright

from assistant import Assistant, Settings
from assistant.server import create_app

pytestmark = [pytest.mark.slow, pytest.mark.browser]

DATA = Path(__file__).parent / "data"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
XSS_QUESTION = (
    "Octreotide payload <script>alert('question')</script> "
    "<img src=x onerror=\"window.__xss='question'\">?"
)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fixture corpus plus the XSS note, fake embedder, under a real uvicorn server."""
    from helpers import FakeEmbedder

    base = tmp_path_factory.mktemp("browser")
    shutil.copytree(DATA / "corpus", base / "corpus")
    shutil.copy(DATA / "xss-corpus" / "xss-payload-note.md", base / "corpus")
    settings = Settings(
        corpus_dir=base / "corpus",
        index_dir=base / "index",
        abstain_threshold=0.2,
        rate_limit_per_minute=0,
    )
    assistant = Assistant(settings, embedder=FakeEmbedder())
    assistant.load()
    with serve_in_thread(create_app(assistant)) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make browser`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_page(chromium: Browser, server_url: str, **context) -> tuple[Page, list[str], list[str]]:
    """The demo page with the widget open; also the dialogs and page errors seen."""
    ctx = chromium.new_context(**context)
    page = ctx.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server_url + "/")
    launcher = page.get_by_role("button", name="Ask the literature")
    expect(launcher).to_be_visible()
    launcher.click()
    expect(page.get_by_role("textbox", name="Your question")).to_be_focused()
    return page, dialogs, errors


def ask(page: Page, question: str, turn: int) -> None:
    box = page.get_by_role("textbox", name="Your question")
    box.fill(question)
    box.press("Enter")  # keyboard only
    expect(page.locator(f'.a[data-turn="{turn}"] .status')).to_have_count(0, timeout=15000)


def test_demo_page_question_follow_up_and_citations(chromium: Browser, server_url: str) -> None:
    page, dialogs, errors = open_page(chromium, server_url)
    ask(page, "What is the kidney toxicity of lutetium-177 dotatate PRRT?", 1)
    first = page.locator('.a[data-turn="1"]')
    answer = first.locator("p.answer")
    expect(answer).to_contain_text("Kidney toxicity")
    marker = answer.locator("a.marker").first
    expect(marker).to_have_text(re.compile(r"\[\d\]"))
    # the citation list: year, source type, and a PubMed link built from the PMID
    pubmed = first.locator('ol.sources a[href="https://pubmed.ncbi.nlm.nih.gov/67890/"]')
    expect(pubmed.first).to_be_visible()
    expect(pubmed.first).to_have_attribute("rel", "noopener noreferrer")
    expect(first.locator("ol.sources li").first).to_contain_text("2017")
    expect(first.locator("ol.sources .badge").first).to_have_text("rct")
    # a source after the 2012 review is marked; older ones are not; the footer stamps the corpus
    prrt = first.locator(
        "ol.sources li", has=page.locator('a[href*="pubmed.ncbi.nlm.nih.gov/67890/"]')
    )
    expect(prrt.first.locator(".badge.new")).to_have_text("after 2012")
    marks = first.locator("ol.sources li").evaluate_all(
        "els => els.map(e => [e.querySelector('.meta').textContent.match(/(?:19|20)\\d\\d/)[0],"
        " e.querySelectorAll('.badge.new').length])"
    )
    assert len(marks) > 1 and {year: n for year, n in marks}.get("2017") == 1
    assert all(n == (1 if int(year) > 2012 else 0) for year, n in marks), marks
    expect(page.locator("p.footer")).to_have_text(
        re.compile(r"^Corpus snapshot [0-9a-f]{12} · \d+ sources · newest source 20\d\d$")
    )
    # the [n] marker jumps to its citation
    marker.focus()
    marker.press("Enter")
    rank = marker.get_attribute("data-rank")
    expect(first.locator(f'ol.sources li[data-rank="{rank}"]')).to_be_focused()

    # a follow-up keeps the client-side history: the server searches a rewritten query
    ask(page, "And what about its limitations?", 2)
    second = page.locator('.a[data-turn="2"]')
    expect(second.locator("p.query")).to_contain_text("lutetium")
    expect(second.locator("ol.sources li").first).to_be_visible()

    # a new conversation forgets the history; an off-topic question gets the abstention message
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".a")).to_have_count(0)
    ask(page, "What is the capital city of Mongolia?", 3)
    expect(page.locator('.a[data-turn="3"] .abstain')).to_contain_text("does not appear to address")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "widget-desktop.png"), full_page=True)
    assert (ARTIFACTS / "widget-desktop.png").stat().st_size > 10000
    assert dialogs == [] and errors == []
    page.context.close()


def test_xss_payloads_stay_inert(chromium: Browser, server_url: str) -> None:
    """Payloads in the question and in the corpus (title, authors, text, DOI, URL) show as text.

    CSP is bypassed so that the widget's own rendering, not the demo page's policy, is tested.
    """
    page, dialogs, errors = open_page(chromium, server_url, bypass_csp=True)
    ask(page, XSS_QUESTION, 1)
    turn = page.locator('.a[data-turn="1"]')
    expect(turn.locator("ol.sources li").first).to_be_visible()
    item = turn.locator("ol.sources li", has_text="Markup in a note").first
    expect(item).to_be_visible()
    expect(item.locator(".title")).to_have_text(
        "Markup in a note <script>alert(1)</script> <img src=x onerror=\"window.__xss='title'\">"
    )
    expect(page.locator(".q").first).to_have_text(XSS_QUESTION)
    answer_text = turn.locator("p.answer").text_content() or ""
    assert "<script>alert(1)</script>" in answer_text
    # no element was created from server text, and nothing ran
    root = page.locator("[data-widget=net-liver-assistant]")
    for selector in ("script", "img", "svg", "b", "i", "iframe"):
        expect(root.locator(selector)).to_have_count(0)
    hrefs = turn.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert hrefs and all(h.startswith(("#", "https://")) for h in hrefs), hrefs
    assert not any("javascript" in h.lower() for h in hrefs)
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert dialogs == [] and errors == []
    page.context.close()


def test_phone_width_layout(chromium: Browser, server_url: str) -> None:
    page, _, errors = open_page(
        chromium, server_url, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
    )
    panel = page.locator("section.panel")
    box = panel.bounding_box()
    assert box is not None and box["width"] <= 375 and box["x"] >= 0
    ask(page, "Which patients are candidates for liver transplantation?", 1)
    expect(page.locator('.a[data-turn="1"] ol.sources li').first).to_be_visible()
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 375  # nothing overflows sideways
    # Escape closes the floating panel and gives focus back to the launcher
    page.get_by_role("textbox", name="Your question").press("Escape")
    expect(panel).to_be_hidden()
    expect(page.get_by_role("button", name="Ask the literature")).to_be_focused()
    panel_open = page.get_by_role("button", name="Ask the literature")
    panel_open.press("Enter")
    expect(panel).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "widget-phone.png"))
    assert errors == []
    page.context.close()


def test_server_errors_show_as_messages(chromium: Browser, server_url: str) -> None:
    """An error body from the server is shown as its message and hint, as text, as an alert."""
    page, dialogs, errors = open_page(chromium, server_url, bypass_csp=True)
    body = (
        '{"error": "rate_limited", "message": "too many <img src=x onerror=alert(2)> requests",'
        ' "field": null, "hint": "wait 7 s", "errors": []}'
    )
    page.route(
        "**/v1/ask",
        lambda route: route.fulfill(status=429, body=body, content_type="application/json"),
    )
    ask(page, "Does octreotide prolong survival?", 1)
    alert = page.locator('.a[data-turn="1"] .error[role=alert]')
    expect(alert).to_have_text("too many <img src=x onerror=alert(2)> requests (wait 7 s)")
    expect(page.locator("[data-widget=net-liver-assistant] img")).to_have_count(0)
    assert dialogs == [] and errors == []
    page.context.close()


def test_pdf_page_numbers_and_unsafe_links(chromium: Browser, server_url: str) -> None:
    """A passage with a `page` shows "p. N"; only http(s) URLs become links."""
    source = {"id": "pdf-guideline", "title": "A PDF guideline", "authors": ["Kappa K"],
              "journal": None, "year": 2023, "pmid": None, "doi": None,
              "url": "https://example.org/guideline.pdf", "source_type": "guideline"}  # fmt: skip
    bad = dict(source, id="bad-url", title="Bad URL", url="javascript:alert(3)")
    passages = [
        {"rank": 1, "score": 0.5, "chunk_id": "pdf-guideline#0", "text": "Resect when possible.",
         "section": "Surgery", "source": source, "similarity": 0.8, "span": [0, 20], "page": 12},
        {"rank": 2, "score": 0.4, "chunk_id": "bad-url#0", "text": "Other text.",
         "section": "Other", "source": bad, "similarity": 0.7, "span": [0, 11]},
    ]  # fmt: skip
    body = {"question": "Resect?", "answer": "Resect when possible. [1] Other text. [2]",
            "abstained": False, "message": None, "query": "Resect?", "mode": "hybrid",
            "passages": passages, "timings_ms": {"total": 1.0}}  # fmt: skip
    page, dialogs, errors = open_page(chromium, server_url)
    page.route("**/v1/ask", lambda route: route.fulfill(json=body))
    ask(page, "Resect?", 1)
    items = page.locator('.a[data-turn="1"] ol.sources li')
    expect(items.nth(0).locator(".page")).to_have_text("p. 12")
    expect(items.nth(0).get_by_role("link", name="Source web page")).to_have_attribute(
        "href", "https://example.org/guideline.pdf"
    )
    expect(items.nth(1).locator(".page")).to_have_count(0)
    expect(items.nth(1).locator("a")).to_have_count(0)  # javascript: URL is not linked
    assert dialogs == [] and errors == []
    page.context.close()
