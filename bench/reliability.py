"""Reliability figures for docs/reliability.md: faults injected, hostile inputs tried, load held.

Everything runs locally and talks only to 127.0.0.1:

1. fault injection: tests/fault_save.py kills the index saver before every line of the save;
2. hostile notes and sidecars (alias bombs, wrong types, oversized files, broken front matter,
   symbolic links out of the folder), the bombs under a 600 MB address-space cap;
3. malformed HTTP bodies against the API (JSON 4xx expected, never a 5xx);
4. a burst of requests with rotating, spoofed X-Forwarded-For from 127.0.0.1 against the app and
   uvicorn options `assistant serve` uses;
5. live reloads (the index switched back and forth) while 8 clients search, ask and read sources.

The server parts use the fixture corpus (tests/data/corpus) and the tests' fake embedder, so no
model is needed.

    .venv/bin/python bench/reliability.py            # about a minute; --json for one object
    .venv/bin/python bench/reliability.py --seconds 20
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import test_reliability as suite  # noqa: E402  (the reliability tests' own helpers)
from _common import machine  # noqa: E402
from conftest import FIXTURE_CORPUS, FakeEmbedder  # noqa: E402

from assistant import Assistant, Settings  # noqa: E402
from assistant.index import save_index  # noqa: E402
from assistant.ingest import CorpusStore, Overrides  # noqa: E402
from assistant.server import create_app  # noqa: E402


def fault_injection(work: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "fault_save.py"), str(work)],
                          capture_output=True, text=True, timeout=1200, check=True)  # fmt: skip
    return json.loads(proc.stdout)


NOTE_HEAD = "---\nid: x\ntitle: T\nyear: 2020\nsource_type: other\n"


def hostile_inputs(work: Path) -> dict[str, Any]:
    """Each hostile note or input through `corpus add` (and the notes through the index-time
    parser); count refusals. The alias bombs run in a child under a memory cap."""
    bombs = work / "bombs"
    bombs.mkdir(parents=True)
    front = f"---\nid: bomb\n{suite.alias_bomb()}\nyear: 2020\nsource_type: other\n---\n\nText.\n"
    (bombs / "bomb.md").write_text(front)
    (bombs / "inbox").mkdir()
    (bombs / "inbox" / "bomb.md").write_text(front)
    (bombs / "side").mkdir()
    (bombs / "side" / "paper.txt").write_text("A paper title\n\nSome text about liver.\n")
    (bombs / "side" / "paper.txt.yaml").write_text(suite.alias_bomb() + "\nyear: 2020\n")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", suite.MEMORY_CAPPED, str(bombs)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    capped = json.loads(proc.stdout) if proc.returncode == 0 else {"crash": proc.stderr[-300:]}
    bomb_seconds = time.perf_counter() - started

    cases: dict[str, tuple[str, str]] = {  # name -> (file name, content)
        "anchor only": ("a.md", NOTE_HEAD + "topics: &t [x]\n---\n\nText.\n"),
        "merge key": ("b.md", NOTE_HEAD + "p: &p {a: 1}\nq: {<<: *p}\n---\n\nText.\n"),
        "title is a list": ("c.md", NOTE_HEAD.replace("title: T", "title: [a, b]")
                            + "---\n\nText.\n"),
        "journal is a mapping": ("d.md", NOTE_HEAD + "journal: {x: 1}\n---\n\nText.\n"),
        "nested authors": ("e.md", NOTE_HEAD + "authors: [[a], b]\n---\n\nText.\n"),
        "page_count text": ("f.md", NOTE_HEAD + "page_count: many\n---\n\nText.\n"),
        "unclosed list": ("g.md", NOTE_HEAD + "authors: [Smith\n---\n\nText.\n"),
        "bad indentation": ("h.md", NOTE_HEAD + "  journal: x\n ---\n---\n\nText.\n"),
        "tab in YAML": ("i.md", NOTE_HEAD + "journal:\t\t- x\n  - y\n---\n\nText.\n"),
        "python tag": ("j.md", NOTE_HEAD + "summary: !!python/object/apply:os.system [ls]\n"
                       "---\n\nText.\n"),
        "oversized note": ("k.md", NOTE_HEAD + "---\n\n" + "liver metastases. " * 130_000),
    }  # fmt: skip
    refused: dict[str, bool] = {}
    for name, (file_name, content) in cases.items():
        inbox = work / "cases" / name.replace(" ", "-")
        inbox.mkdir(parents=True)
        (inbox / file_name).write_text(content)
        report = CorpusStore(work / "corpus-add").add([inbox / file_name], Overrides(year=2020))
        corpus = work / "corpus-index" / name.replace(" ", "-")
        corpus.mkdir(parents=True)
        (corpus / file_name).write_text(content.replace("id: x", f"id: x{len(refused)}"))
        try:
            from assistant.corpus import load_corpus

            load_corpus(corpus)
            at_index = False
        except Exception:  # noqa: BLE001 - a refusal
            at_index = True
        refused[name] = bool(report.refused) and not report.added and at_index
    # symbolic links out of the folder: corpus add, sidecar, and a note in the corpus
    secret = work / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    inbox = work / "link-inbox"
    inbox.mkdir()
    (inbox / "notes.txt").symlink_to(secret)
    report = CorpusStore(work / "corpus-links").add([inbox], Overrides(year=2020))
    refused["symlink out of an added folder"] = not report.added and bool(report.refused)
    side = work / "link-side"
    side.mkdir()
    (side / "paper.txt").write_text("A paper\n\nHepatic metastases.\n")
    (side / "paper.txt.yaml").symlink_to(secret)
    report = CorpusStore(work / "corpus-links").add([side])
    refused["symlinked sidecar"] = not report.added and bool(report.refused)
    corpus = work / "corpus-symlink"
    shutil.copytree(FIXTURE_CORPUS, corpus)
    outside = work / "outside.md"
    outside.write_text(NOTE_HEAD.replace("id: x", "id: leaked") + "---\n\nLeaked.\n")
    (corpus / "linked.md").symlink_to(outside)
    from assistant.corpus import load_corpus

    docs, _ = load_corpus(corpus)
    refused["symlinked note in the corpus"] = "leaked" not in {d.id for d in docs}
    bomb_refused = sum(1 for v in capped.values() if "aliases" in str(v))
    return {
        "inputs": len(refused) + len(capped),
        "refused": sum(refused.values()) + bomb_refused,
        "alias_bombs": len(capped),
        "alias_bombs_refused": bomb_refused,
        "alias_bomb_seconds": round(bomb_seconds, 1),
        "not_refused": [k for k, v in refused.items() if not v]
        + [k for k, v in capped.items() if "aliases" not in str(v)],
    }


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("invalid UTF-8", b'{"question": "liver \xff\xfe"}', "application/json"),
    ("nested arrays 5000 deep", b"[" * 5000 + b"]" * 5000, "application/json"),
    ("nested objects 3000 deep", b'{"a":' * 3000, "application/json"),
    ("truncated", b'{"question": "a"', "application/json"),
    ("trailing comma", b'{"question": "a",}', "application/json"),
    ("empty", b"", "application/json"),
    ("not an object", b'"a question"', "application/json"),
    ("null", b"null", "application/json"),
    ("NaN", b'{"question": "a", "k": NaN}', "application/json"),
    ("huge integer", b'{"question": "a", "k": 1' + b"0" * 4000 + b"}", "application/json"),
    ("lone surrogate", b'{"question": "liver \\ud800"}', "application/json"),
    ("text/plain", b'{"question": "liver"}', "text/plain"),
    ("form", b"question=liver", "application/x-www-form-urlencoded"),
    ("xml", b"<question>liver</question>", "application/xml"),
    ("UTF-16 BOM", "\ufeff{}".encode("utf-16"), "application/json"),
]


def bad_bodies(assistant: Assistant) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    assistant.settings.rate_limit_per_minute = 0
    client = TestClient(create_app(assistant), raise_server_exceptions=False)
    codes: dict[str, int] = {}
    json_4xx = 0
    for name, body, ctype in BAD_BODIES:
        for route in ("/v1/ask", "/v1/search"):
            r = client.post(route, content=body, headers={"Content-Type": ctype})
            codes[f"{route} {name}"] = r.status_code
            is_json = r.headers.get("content-type", "").startswith("application/json")
            json_4xx += 400 <= r.status_code < 500 and is_json and "error" in r.json()
    return {
        "requests": len(codes),
        "json_4xx": json_4xx,
        "5xx": sum(1 for c in codes.values() if c >= 500),
        "by_status": dict(sorted(_count(codes.values()).items())),
        "not_json_4xx": [k for k, c in codes.items() if not 400 <= c < 500],
    }


def _count(values: Any) -> dict[int, int]:
    out: dict[int, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def spoofing(assistant: Assistant, n: int) -> dict[str, Any]:
    """The app and uvicorn options of `assistant serve`, on 127.0.0.1, rate limit 20/min."""
    import uvicorn
    from test_server_live import free_port

    from assistant.cli.serve import uvicorn_options

    assistant.settings.rate_limit_per_minute = 20
    assistant.settings.api_key = None
    options = uvicorn_options(assistant.settings) | {"port": free_port(), "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(create_app(assistant), **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        counts = suite.spoof_burst(f"http://127.0.0.1:{options['port']}", n)
    finally:
        server.should_exit = True
        thread.join(10)
    return {"requests": n, "rate_limit_per_minute": 20, "by_status": dict(sorted(counts.items()))}


def live_reload(assistant: Assistant, settings: Settings, work: Path, seconds: float) -> dict:
    from test_server_live import serve_in_thread

    versions = {
        tag: suite._build(suite._variant(FIXTURE_CORPUS, work / tag, tag), work / f"{tag}-index",
                          assistant.embedder)
        for tag in ("va", "vb")
    }  # fmt: skip
    save_index(versions["va"], settings.index_dir)
    assistant.reload()
    ids = [f"{i}-{v}" for v in versions for i in ("prrt-study", "liver-transplant")]
    started = time.perf_counter()
    stats = suite.run_reload_load(assistant, versions, settings, ids, serve_in_thread, seconds)
    elapsed = time.perf_counter() - started
    stats["snapshots_seen"] = len(stats["snapshots_seen"])
    stats["mixed"] = len(stats["mixed"])
    stats["seconds"] = round(elapsed, 1)
    stats["requests_per_second"] = round(stats["requests"] / elapsed, 1)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="Length of the reload run.")
    parser.add_argument("--spoofed", type=int, default=150, help="Requests in the spoof burst.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        work = Path(tmp)
        (work / "faults").mkdir()
        results: dict[str, Any] = {"machine": machine()}
        results["fault_injection"] = fault_injection(work / "faults")
        results["hostile_inputs"] = hostile_inputs(work / "hostile")
        corpus = work / "corpus"
        shutil.copytree(FIXTURE_CORPUS, corpus)
        settings = Settings(corpus_dir=corpus, index_dir=work / "index", abstain_threshold=0.2)
        assistant = Assistant(settings, embedder=FakeEmbedder())
        assistant.load()
        results["bad_http_bodies"] = bad_bodies(assistant)
        results["spoofed_forwarded_for"] = spoofing(assistant, args.spoofed)
        results["live_reload"] = live_reload(assistant, settings, work / "reload", args.seconds)
    if args.json:
        print(json.dumps(results))
        return
    f, h, b = results["fault_injection"], results["hostile_inputs"], results["bad_http_bodies"]
    s, r = results["spoofed_forwarded_for"], results["live_reload"]
    print(f"machine: {results['machine']}")
    print(
        f"fault injection: {f['killed']} kills at {f['kill_points']} steps of a save; "
        f"index loaded old {f['loaded_old']}, new {f['loaded_new']}; "
        f"failures {len(f['failures'])} ({f['seconds']} s)"
    )
    print(
        f"hostile inputs: {h['refused']}/{h['inputs']} refused (alias bombs "
        f"{h['alias_bombs_refused']}/{h['alias_bombs']} under a 600 MB cap in "
        f"{h['alias_bomb_seconds']} s); not refused: {h['not_refused'] or 'none'}"
    )
    print(
        f"bad HTTP bodies: {b['requests']} requests, {b['json_4xx']} JSON 4xx, {b['5xx']} 5xx; "
        f"by status {b['by_status']}"
    )
    print(
        f"spoofed X-Forwarded-For: {s['requests']} requests at {s['rate_limit_per_minute']}/min "
        f"→ {s['by_status']}"
    )
    print(f"live reload: {r['reloads']} reloads under {r['requests']} requests in {r['seconds']} s "
          f"({r['requests_per_second']}/s, 8 clients); 5xx {r['server_errors']}, mixed "
          f"snapshots {r['mixed']}, snapshots seen by /readyz {r['snapshots_seen']}; "
          f"by status {r['status']}")  # fmt: skip


if __name__ == "__main__":
    main()
