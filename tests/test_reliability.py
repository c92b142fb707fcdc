"""The reliability suite (issue 11): an unlucky kill, a hostile note, a live rebuild.

Each test fails on the code before the fix: a kill between the steps of an index save, YAML
alias bombs and oversized inputs under a memory cap, symbolic links out of the folder, sources
served from disk instead of the loaded snapshot, note paths tied to the working directory, a
server that never sees a rebuilt index, broken front matter accepted by `corpus add`, a rate
limit bypassed with X-Forwarded-For, and the smaller items (input errors, export, secrets,
malformed bodies, CSP, docs).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers import FIXTURE_CORPUS, FakeEmbedder, client_for
from typer.testing import CliRunner

from assistant import Assistant, Settings
from assistant.cli import app as cli_app
from assistant.corpus import load_corpus, parse_note
from assistant.errors import CorpusError
from assistant.index import CURRENT, SNAPSHOTS, load_index, read_manifest, save_index
from assistant.ingest import CorpusStore, Overrides
from assistant.server import client_address, create_app

ROOT = Path(__file__).resolve().parent.parent
KEY = "reload-key"


# ------------------------------------------------------------------ 1. atomic index switch
@pytest.mark.slow
def test_a_kill_at_any_step_of_a_save_leaves_a_complete_index(tmp_path: Path) -> None:
    """The saver is SIGKILLed before each line of the save in turn (tests/fault_save.py)."""
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "fault_save.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["failures"] == []
    assert result["kill_points"] >= 20 and result["killed"] == result["kill_points"]
    assert result["loaded_old"] > 0 and result["loaded_new"] > 0  # the switch is in between


def test_index_folder_layout_keeps_the_user_facing_path(fake_assistant, settings) -> None:
    index_dir = settings.index_dir
    assert (index_dir / CURRENT).is_symlink()
    live = (index_dir / CURRENT).resolve()
    assert live.parent == (index_dir / SNAPSHOTS).resolve()
    assert (index_dir / "manifest.json").resolve() == (live / "manifest.json").resolve()
    first = live.name
    fake_assistant.build(force=True)
    second = (index_dir / CURRENT).resolve().name
    fake_assistant.build(force=True)
    kept = sorted(p.name for p in (index_dir / SNAPSHOTS).iterdir())
    assert first not in kept and second in kept and len(kept) == 2  # live + the one before


def test_leftovers_of_an_interrupted_folder_swap_are_recovered(fake_assistant, settings):
    """The state the old two-rename swap left when killed between its renames: no index folder,
    the finished new index in .index.tmp-*, the old one in .index.old-*."""
    index_dir = settings.index_dir
    live = (index_dir / CURRENT).resolve()
    parent = index_dir.parent
    shutil.copytree(live, parent / ".index.old-1-1")
    shutil.copytree(live, parent / ".index.tmp-1-2")
    newer = json.loads((parent / ".index.tmp-1-2" / "manifest.json").read_text())
    newer["created_at"] = "2999-01-01T00:00:00+00:00"
    (parent / ".index.tmp-1-2" / "manifest.json").write_text(json.dumps(newer))
    shutil.rmtree(index_dir)
    assert read_manifest(index_dir)["created_at"].startswith("2999")
    assert len(load_index(index_dir).chunks) == len(fake_assistant.index.chunks)
    fake_assistant.build(force=True)
    assert [p.name for p in parent.iterdir() if p.name.startswith(".index.")] == []


def test_an_index_saved_before_snapshots_loads_and_is_converted(fake_assistant, settings):
    index_dir = settings.index_dir
    live = (index_dir / CURRENT).resolve()
    flat = index_dir.parent / "flat"
    shutil.copytree(live, flat)
    (flat / "README.md").write_text("keep me")
    assert len(load_index(flat).chunks) == len(fake_assistant.index.chunks)
    save_index(fake_assistant.index, flat)
    assert (flat / CURRENT).is_symlink() and (flat / "manifest.json").is_symlink()
    assert (flat / "README.md").read_text() == "keep me"
    assert len(load_index(flat).chunks) == len(fake_assistant.index.chunks)


# ------------------------------------------------------------------ 2. YAML bombs and sizes
BOMB_LEVELS = "abcdefghi"


def alias_bomb(last_key: str = "title") -> str:
    """About 400 bytes of YAML that expand to billions of strings when aliases are followed."""
    lines = ['topics: [&a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"],']
    for prev, cur in zip(BOMB_LEVELS, BOMB_LEVELS[1:], strict=False):
        lines.append(f"  &{cur} [" + ", ".join([f"*{prev}"] * 9) + "],")
    lines[-1] = lines[-1].rstrip(",") + "]"
    return "\n".join([*lines, f"{last_key}: *{BOMB_LEVELS[-1]}"])


MEMORY_CAPPED = r"""
import json, resource, sys
from pathlib import Path
from assistant.corpus import parse_note
from assistant.errors import CorpusError
from assistant.ingest import CorpusStore
size_kb = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0])
cap = size_kb * 1024 + 600 * 1024 * 1024  # 600 MB above what the imports use
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
work = Path(sys.argv[1])
out = {}
try:
    parse_note(work / "bomb.md")
    out["note"] = "accepted"
except CorpusError as exc:
    out["note"] = exc.problems[0]
except MemoryError:
    out["note"] = "MemoryError"
for name, paths in (("add_note", [work / "inbox" / "bomb.md"]),
                    ("add_sidecar", [work / "side" / "paper.txt"])):
    try:
        report = CorpusStore(work / "corpus").add(paths)
        out[name] = report.refused[0] if report.refused else "accepted"
    except MemoryError:
        out[name] = "MemoryError"
print(json.dumps(out))
"""


@pytest.mark.slow
def test_alias_bombs_are_refused_under_a_memory_cap(tmp_path: Path) -> None:
    front = (
        f"---\nid: bomb\n{alias_bomb()}\nyear: 2020\nsource_type: other\n---\n\n# Bomb\n\nText.\n"
    )
    assert len(front) < 700
    (tmp_path / "bomb.md").write_text(front)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "bomb.md").write_text(front)
    (tmp_path / "side").mkdir()
    (tmp_path / "side" / "paper.txt").write_text("A paper title\n\nSome text about liver.\n")
    (tmp_path / "side" / "paper.txt.yaml").write_text(alias_bomb() + "\nyear: 2020\n")
    proc = subprocess.run([sys.executable, "-c", MEMORY_CAPPED, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert "anchors (&) and aliases (*) are not allowed" in out["note"]
    assert re.match(rf"{re.escape(str(tmp_path / 'bomb.md'))}:3: ", out["note"])  # file and line
    assert "line 3" in out["add_note"] and "aliases" in out["add_note"]
    assert "paper.txt.yaml" in out["add_sidecar"] and "aliases" in out["add_sidecar"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "[a, b]", "title must be a single value"),
        ("journal", "{name: x}", "journal must be a single value"),
        ("authors", "[[a, b], c]", "every item of authors must be a single value"),
        ("page_count", "many", "page_count must be a whole number"),
    ],
)
def test_front_matter_field_types_are_checked(tmp_path, field, value, message) -> None:
    base = {"id": "x", "title": "T", "year": "2020", "source_type": "other"}
    base[field] = value
    text = "---\n" + "".join(f"{k}: {v}\n" for k, v in base.items()) + "---\n\nBody text.\n"
    with pytest.raises(CorpusError) as info:
        parse_note(tmp_path / "x.md", text)
    assert any(message in p for p in info.value.problems), info.value.problems


NOTE = "---\nid: big\ntitle: Big\nyear: 2020\nsource_type: other\n---\n\n# Big\n\n"


def test_oversized_note_is_refused_when_indexing(corpus_dir: Path) -> None:
    (corpus_dir / "big.md").write_text(NOTE + "liver metastases resection. " * 800)
    with pytest.raises(CorpusError) as info:
        load_corpus(corpus_dir, max_bytes=20_000)
    (line,) = info.value.problems
    assert "big.md:1: the note is 22," in line and "ASSISTANT_MAX_NOTE_BYTES" in line
    docs, _ = load_corpus(corpus_dir, max_bytes=50_000)
    assert "big" in {d.id for d in docs}


def test_oversized_inputs_are_refused_by_corpus_add(tmp_path: Path) -> None:
    (tmp_path / "long.txt").write_text("A long text\n\n" + "hepatic metastases. " * 2000)
    store = CorpusStore(tmp_path / "corpus", max_note_bytes=20_000, max_sidecar_bytes=1024)
    report = store.add([tmp_path / "long.txt"], Overrides(year=2020))
    assert report.added == [] and "ASSISTANT_MAX_NOTE_BYTES" in report.refused[0]
    (tmp_path / "short.txt").write_text("A short text\n\nhepatic metastases.\n")
    (tmp_path / "short.txt.yaml").write_text("year: 2020\nsummary: " + "x" * 2000 + "\n")
    report = store.add([tmp_path / "short.txt"])
    assert report.added == [] and "ASSISTANT_MAX_SIDECAR_BYTES" in report.refused[0]
    limits = Settings()
    assert limits.max_note_bytes == 2_000_000 and limits.max_sidecar_bytes == 65536


# ------------------------------------------------------------------ 3. symbolic links
def test_corpus_add_never_follows_a_link_out_of_the_folder(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "notes.txt").symlink_to(secret)
    (inbox / "real.txt").write_text("Liver metastases study\n\nResection outcomes were good.\n")
    (inbox / "alias.txt").symlink_to(inbox / "real.txt")  # inside the folder: fine
    report = CorpusStore(tmp_path / "corpus").add([inbox], Overrides(year=2020))
    assert any("notes.txt" in r and "symbolic link" in r for r in report.refused), report.refused
    added_text = "".join(p.read_text() for p in (tmp_path / "corpus").rglob("*.md"))
    assert "root:x:0:0" not in added_text
    assert len(report.added) == 1  # real.txt (alias.txt is the same file)


def test_a_symlinked_sidecar_out_of_the_folder_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "outside.yaml").write_text("title: Leaked title\nyear: 2020\n")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "paper.txt").write_text("A paper\n\nHepatic metastases.\n")
    (inbox / "paper.txt.yaml").symlink_to(tmp_path / "outside.yaml")
    report = CorpusStore(tmp_path / "corpus").add([inbox])
    assert report.added == [] and "symbolic link" in report.refused[0]


def test_a_symlinked_note_out_of_the_corpus_is_skipped_at_index_time(
    corpus_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.md"
    outside.write_text(NOTE.replace("big", "elsewhere") + "Leaked text.\n")
    (corpus_dir / "linked.md").symlink_to(outside)
    docs, warnings = load_corpus(corpus_dir)
    assert "elsewhere" not in {d.id for d in docs}
    assert any("linked.md" in w and "symbolic link" in w for w in warnings)


# ------------------------------------------------------------------ 4/5. one snapshot serves
def test_sources_come_from_the_loaded_snapshot_not_the_disk(fake_assistant, corpus_dir, tmp_path):
    c = client_for(fake_assistant, rate_limit_per_minute=0)
    before = c.get("/v1/sources/prrt-study").json()
    assert "Progression-free survival at 20 months" in before["text"]
    note = corpus_dir / "prrt-study.md"
    note.write_text(note.read_text().replace("65%", "99%"))  # edited
    assert c.get("/v1/sources/prrt-study").json()["text"] == before["text"]
    note.write_text("---\ntitle: [broken\n---\n")  # broken YAML
    r = c.get("/v1/sources/prrt-study")
    assert r.status_code == 200 and r.json()["text"] == before["text"]
    note.unlink()  # deleted
    assert c.get("/v1/sources/prrt-study").json()["text"] == before["text"]
    context = fake_assistant.context("prrt-study#0")
    assert context["text"] and "---" not in context["before"]
    for response in (c.get("/v1/sources/prrt-study"), c.get("/v1/sources"), c.get("/readyz")):
        assert str(tmp_path) not in response.text  # no server path in any response


def test_note_paths_are_relative_to_the_corpus(tmp_path: Path, monkeypatch) -> None:
    work = tmp_path / "work"
    shutil.copytree(FIXTURE_CORPUS, work / "corpus")
    monkeypatch.chdir(work)
    built = Settings(corpus_dir=Path("corpus"), index_dir=Path("index"))
    Assistant(built, embedder=FakeEmbedder()).build()
    documents = read_manifest(work / "index")["corpus"]["documents"]
    assert documents["prrt-study"]["path"] == "prrt-study.md"
    shutil.copytree(work / "index", tmp_path / "copy", symlinks=True)  # a copied index
    monkeypatch.chdir(tmp_path)  # served from another working directory
    served = Settings(corpus_dir=work / "corpus", index_dir=tmp_path / "copy", auto_rebuild=False)
    a = Assistant(served, embedder=FakeEmbedder())
    a.load()
    detail = a.source("prrt-study")
    assert detail["path"] == "prrt-study.md" and "lutetium-177" in detail["text"]
    note = work / "corpus" / "prrt-study.md"
    note.write_text(note.read_text().replace("lutetium-177", "yttrium-90"))
    assert "lutetium-177" in Assistant(served, embedder=FakeEmbedder()).source("prrt-study")["text"]


# ------------------------------------------------------------------ 6. live reload
def _variant(corpus_src: Path, dest: Path, tag: str) -> Path:
    """The fixture corpus with ids, titles and a body line marking version `tag`."""
    shutil.copytree(corpus_src, dest)
    for note in dest.glob("*.md"):
        text = note.read_text()
        text = re.sub(r"^id: (.+)$", rf"id: \1-{tag}", text, count=1, flags=re.M)
        text = re.sub(r'^title: "?(.+?)"?$', rf'title: "\1 ({tag})"', text, count=1, flags=re.M)
        note.write_text(text + f"\nVersion marker {tag}.\n")
    return dest


def _build(corpus: Path, index_dir: Path, embedder: FakeEmbedder):
    a = Assistant(Settings(corpus_dir=corpus, index_dir=index_dir), embedder=embedder)
    a.build()
    return a.index


def test_a_request_answers_from_one_snapshot_across_a_reload(fake_assistant, settings, tmp_path):
    other = _build(_variant(FIXTURE_CORPUS, tmp_path / "b", "vb"), tmp_path / "bi",
                   fake_assistant.embedder)  # fmt: skip
    with fake_assistant.snapshot() as pinned:
        save_index(other, settings.index_dir)
        assert fake_assistant.reload()["reloaded"] is True
        assert fake_assistant.index is pinned  # still the old one inside the call
        assert "prrt-study" in {s["id"] for s in fake_assistant.sources()}
    assert fake_assistant.index is not pinned
    assert {s["id"] for s in fake_assistant.sources()} == {f"{i}-vb" for i in pinned.sources}
    assert fake_assistant.reload()["reloaded"] is False  # nothing new saved


def test_reload_endpoint_needs_the_key_and_readyz_names_the_snapshot(
    fake_assistant, settings, tmp_path
) -> None:
    c = client_for(fake_assistant, rate_limit_per_minute=0)
    assert c.post("/v1/reload").status_code == 403  # no key configured, not from this machine
    c = client_for(fake_assistant, rate_limit_per_minute=0, api_key=KEY)
    first = c.get("/readyz").json()
    assert first["snapshot"] == (settings.index_dir / CURRENT).resolve().name
    assert first["corpus_fingerprint"]
    assert c.post("/v1/reload").status_code == 401
    other = _build(_variant(FIXTURE_CORPUS, tmp_path / "b", "vb"), tmp_path / "bi",
                   fake_assistant.embedder)  # fmt: skip
    save_index(other, settings.index_dir)
    r = c.post("/v1/reload", headers={"X-API-Key": KEY})
    assert r.status_code == 200 and r.json()["reloaded"] is True
    now = c.get("/readyz").json()
    assert now["snapshot"] != first["snapshot"] and now["snapshot"] == r.json()["snapshot"]
    assert now["corpus_fingerprint"] != first["corpus_fingerprint"]
    assert c.get("/v1/sources/prrt-study-vb", headers={"X-API-Key": KEY}).status_code == 200
    assert c.get("/v1/sources/prrt-study", headers={"X-API-Key": KEY}).status_code == 404


def test_an_index_of_another_model_is_refused_and_the_live_one_kept(
    fake_assistant, settings, tmp_path
) -> None:
    c = client_for(fake_assistant, rate_limit_per_minute=0, api_key=KEY)
    before = c.get("/readyz").json()["snapshot"]
    Assistant(settings, embedder=FakeEmbedder(name="another-model")).build(force=True)
    r = c.post("/v1/reload", headers={"X-API-Key": KEY})
    assert r.status_code == 503 and "another-model" in r.json()["message"]
    assert str(tmp_path) not in r.text  # the index folder is named by its role only
    assert c.get("/readyz").json()["snapshot"] == before
    assert (
        c.post("/v1/search", json={"query": "liver"}, headers={"X-API-Key": KEY}).status_code == 200
    )


@pytest.mark.slow
def test_live_reload_under_concurrent_requests(fake_assistant, settings, tmp_path) -> None:
    """Requests keep coming while the index is switched back and forth: no 5xx, and every
    response belongs wholly to one snapshot."""
    from helpers import serve_in_thread

    versions = {
        "va": _build(_variant(FIXTURE_CORPUS, tmp_path / "a", "va"), tmp_path / "ai",
                     fake_assistant.embedder),
        "vb": _build(_variant(FIXTURE_CORPUS, tmp_path / "b", "vb"), tmp_path / "bi",
                     fake_assistant.embedder),
    }  # fmt: skip
    save_index(versions["va"], settings.index_dir)
    fake_assistant.reload()
    ids = [f"{i}-{v}" for v in versions for i in ("prrt-study", "liver-transplant")]
    stats = run_reload_load(fake_assistant, versions, settings, ids, serve_in_thread, seconds=4)
    assert stats["server_errors"] == 0 and stats["mixed"] == [], stats
    assert stats["reloads"] >= 8 and stats["requests"] >= 100, stats
    assert len(stats["snapshots_seen"]) >= 4, stats


def run_reload_load(assistant, versions, settings, ids, serve_in_thread, seconds: float) -> dict:
    """Switch between `versions` (saving each to the index folder and POSTing /v1/reload) while
    8 clients search, ask and fetch sources; count responses, 5xx and mixed snapshots."""
    settings.rate_limit_per_minute = 0
    settings.api_key = KEY
    headers = {"X-API-Key": KEY}
    stats: dict = {"requests": 0, "server_errors": 0, "mixed": [], "reloads": 0,
                   "snapshots_seen": set(), "status": Counter()}  # fmt: skip
    lock = threading.Lock()
    stop = threading.Event()

    def consistent(passages: list[dict]) -> bool:
        for p in passages:
            doc, tag = p["chunk_id"].split("#")[0], p["source"]["id"].rsplit("-", 1)[-1]
            if doc != p["source"]["id"] or not p["source"]["title"].endswith(f"({tag})"):
                return False
        return len({p["source"]["id"].rsplit("-", 1)[-1] for p in passages}) <= 1

    def client(n: int, url: str) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            while not stop.is_set():
                kind = rng.choice(["search", "ask", "source", "ready"])
                if kind == "search":
                    r = http.post("/v1/search", json={"query": "liver metastases resection"})
                    ok = r.status_code != 200 or consistent(r.json()["passages"])
                elif kind == "ask":
                    r = http.post("/v1/ask", json={"question": "kidney toxicity of PRRT?"})
                    ok = r.status_code != 200 or consistent(r.json()["passages"])
                elif kind == "source":
                    sid = rng.choice(ids)
                    r = http.get(f"/v1/sources/{sid}")
                    body = r.json()
                    tag = sid.rsplit("-", 1)[-1]
                    ok = r.status_code == 404 or (
                        f"Version marker {tag}." in body["text"]
                        and body["title"].endswith(f"({tag})")
                    )
                else:
                    r = http.get("/readyz")
                    ok = r.status_code == 200
                    with lock:
                        stats["snapshots_seen"].add(r.json().get("snapshot"))
                with lock:
                    stats["requests"] += 1
                    stats["status"][r.status_code] += 1
                    stats["server_errors"] += r.status_code >= 500
                    if not ok:
                        stats["mixed"].append((kind, r.status_code, r.text[:200]))

    with serve_in_thread(create_app(assistant)) as url:
        workers = [threading.Thread(target=client, args=(n, url)) for n in range(8)]
        for w in workers:
            w.start()
        deadline = time.monotonic() + seconds
        order = ["vb", "va"]
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            while time.monotonic() < deadline:
                save_index(versions[order[stats["reloads"] % 2]], settings.index_dir)
                r = http.post("/v1/reload")
                assert r.status_code == 200, r.text
                stats["reloads"] += 1
                time.sleep(0.1)
        stop.set()
        for w in workers:
            w.join(30)
    stats["status"] = dict(stats["status"])
    return stats


# ------------------------------------------------------------------ 7. broken front matter
@pytest.mark.parametrize("year", [None, 2020])
def test_corpus_add_refuses_broken_front_matter_with_its_line(tmp_path: Path, year) -> None:
    (tmp_path / "broken.md").write_text(
        "---\ntitle: A study\nauthors: [Smith J\nyear: 2020\n---\n\n# A study\n\nText.\n"
    )
    report = CorpusStore(tmp_path / "corpus").add([tmp_path / "broken.md"], Overrides(year=year))
    assert report.added == []
    (line,) = report.refused
    assert "invalid YAML front matter" in line and re.search(r"line [45]", line), line


# ------------------------------------------------------------------ 8. forwarded headers
def _scope(peer: str, *forwarded: str) -> dict:
    return {"client": (peer, 5000),
            "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded]}  # fmt: skip


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    import ipaddress

    proxies = [ipaddress.ip_network("10.0.0.0/24")]
    assert client_address(_scope("127.0.0.1", "1.2.3.4"), []) == "127.0.0.1"
    assert client_address(_scope("127.0.0.1", "1.2.3.4"), proxies) == "127.0.0.1"
    assert client_address(_scope("10.0.0.5", "1.2.3.4"), proxies) == "1.2.3.4"
    # a client's own spoofed entry sits left of what the proxy appended: ignored
    assert client_address(_scope("10.0.0.5", "6.6.6.6, 1.2.3.4"), proxies) == "1.2.3.4"
    assert client_address(_scope("10.0.0.5", "1.2.3.4, 10.0.0.7"), proxies) == "1.2.3.4"
    assert client_address(_scope("10.0.0.5", "garbage"), proxies) == "10.0.0.5"
    with pytest.raises(ValueError, match="not an IP address"):
        Settings(trusted_proxies=["proxy.example"])
    assert Settings().trusted_proxies == []


def spoof_burst(url: str, n: int, path: str = "/v1/search") -> Counter:
    """`n` requests from 127.0.0.1, each claiming another address in X-Forwarded-For."""
    counts: Counter = Counter()
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(n):
            spoofed = f"203.0.{i // 250}.{i % 250 + 1}"
            r = http.post(path, json={"query": "liver"}, headers={"X-Forwarded-For": spoofed})
            counts[r.status_code] += 1
    return counts


@pytest.mark.slow
def test_assistant_serve_ignores_spoofed_forwarded_for(fake_assistant, monkeypatch) -> None:
    """The app and uvicorn options `assistant serve` uses, on a real socket: 150 requests with
    rotating X-Forwarded-For from 127.0.0.1 share one rate-limit bucket."""
    import uvicorn
    from helpers import free_port

    captured: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: captured.update(app=app, kw=kw))
    monkeypatch.setattr("assistant.cli.serve.open_assistant", lambda s, nr=False: fake_assistant)
    monkeypatch.setenv("ASSISTANT_RATE_LIMIT_PER_MINUTE", "20")
    fake_assistant.settings.rate_limit_per_minute = 20
    result = CliRunner().invoke(cli_app, ["serve", "--port", "8765"])
    assert result.exit_code == 0, result.output
    kw = dict(captured["kw"], port=free_port(), log_level="warning")
    server = uvicorn.Server(uvicorn.Config(captured["app"], **kw))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        counts = spoof_burst(f"http://127.0.0.1:{kw['port']}", 150)
    finally:
        server.should_exit = True
        thread.join(10)
    assert counts[200] <= 21 and counts[429] >= 129, counts
    assert not any(code >= 500 for code in counts)


def test_rate_limit_behind_a_trusted_proxy_keys_on_the_forwarded_client(fake_assistant) -> None:
    def codes(peer: str, proxies: list[str], forwarded: list[str]) -> list[int]:
        fake_assistant.settings.rate_limit_per_minute = 3
        fake_assistant.settings.trusted_proxies = proxies
        c = TestClient(create_app(fake_assistant), client=(peer, 4000))
        return [c.post("/v1/search", json={"query": "liver"},
                       headers={"X-Forwarded-For": f}).status_code for f in forwarded]  # fmt: skip

    rotating = [f"198.51.100.{i}" for i in range(1, 7)]
    assert codes("127.0.0.1", [], rotating).count(429) == 3  # not trusted: one bucket
    assert codes("10.0.0.5", ["10.0.0.0/24"], rotating).count(429) == 0  # one bucket each
    assert codes("10.0.0.5", ["10.0.0.0/24"], ["198.51.100.9"] * 5).count(429) == 2


# ------------------------------------------------------------------ 9. smaller items
def test_invalid_utf8_question_is_one_input_error(fake_assistant) -> None:
    bad = b"liver \xff metastases".decode("utf-8", "surrogateescape")
    with pytest.raises(Exception, match="not valid UTF-8") as info:
        fake_assistant.ask(bad)
    assert type(info.value).__name__ == "InputError"


def test_chat_and_ask_report_invalid_utf8_in_one_line(monkeypatch, settings, fake_embedder):
    monkeypatch.setattr("assistant.lifecycle.load_embedder", lambda *a, **k: fake_embedder)
    monkeypatch.setenv("ASSISTANT_CHAT_SAVE_HISTORY", "false")
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    result = CliRunner().invoke(cli_app, ["chat", *args], input=b"liver \xff mets\n/quit\n")
    assert result.exit_code == 0, result.output
    assert "not valid UTF-8" in result.output and "TypeError" not in result.output
    bad = b"liver \xff".decode("utf-8", "surrogateescape")
    result = CliRunner().invoke(cli_app, ["ask", bad, *args])
    assert result.exit_code == 1 and "error: the question is not valid UTF-8" in result.output


def test_export_refuses_folders_and_existing_files(fake_assistant, tmp_path: Path) -> None:
    from assistant.chat_session import ChatSession

    session = ChatSession(fake_assistant)
    session.ask("kidney toxicity of PRRT")
    with pytest.raises(Exception, match="is a folder"):
        session.export(tmp_path)
    assert not tmp_path.with_suffix(".md").exists()
    target = tmp_path / "note.md"
    target.write_text("mine")
    with pytest.raises(Exception, match="exists already") as info:
        session.export(target)
    assert "--force" in info.value.hint and target.read_text() == "mine"
    session.export(target, overwrite=True)
    assert target.read_text() != "mine"


def test_settings_command_masks_secrets(monkeypatch) -> None:
    monkeypatch.setenv("ASSISTANT_API_KEY", "top-secret-key")
    monkeypatch.setenv("ASSISTANT_NCBI_API_KEY", "ncbi-secret")
    for args in (["settings"], ["settings", "--json"]):
        result = CliRunner().invoke(cli_app, args)
        assert result.exit_code == 0, result.output
        assert "top-secret-key" not in result.output and "ncbi-secret" not in result.output
    rows = json.loads(CliRunner().invoke(cli_app, ["settings", "--json"]).output)
    assert {r["env"]: r["value"] for r in rows}["ASSISTANT_API_KEY"] == "***"


@pytest.mark.parametrize(
    "raw", [b'{"question": "liver \xff\xfe"}', b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000]
)
def test_undecodable_or_deeply_nested_bodies_are_malformed_json(fake_assistant, raw) -> None:
    c = client_for(fake_assistant, rate_limit_per_minute=0, max_body_bytes=65536)
    r = c.post("/v1/ask", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "malformed_json", r.text


def test_a_text_plain_body_names_the_content_type(fake_assistant) -> None:
    c = client_for(fake_assistant, rate_limit_per_minute=0)
    r = c.post("/v1/ask", content=b'{"question": "liver"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["field"] == "Content-Type"
    assert "application/json" in r.json()["message"] and "text/plain" in r.json()["message"]


def test_docs_page_has_a_content_security_policy(fake_assistant) -> None:
    r = client_for(fake_assistant).get("/docs")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "'sha256-" in csp and "unsafe-inline'; style" not in csp
    assert "script-src 'self' 'sha256-" in csp


def test_api_docs_state_the_real_defaults() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    workers = Settings().api_workers
    assert f"| `ASSISTANT_API_WORKERS` | `{workers}` |" in text
    assert "score fusion" in text and "ASSISTANT_TRUSTED_PROXIES" in text
    assert (
        "hybrid (RRF" not in text and "hybrid (RRF" not in Settings.model_fields["mode"].description
    )
