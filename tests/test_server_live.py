"""The real server: uvicorn on 127.0.0.1 on a free port, called over HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from helpers import FIXTURE_CORPUS, free_port, serve_in_thread

from assistant import Assistant
from assistant.server import create_app

QUESTIONS = [
    "What is the kidney toxicity of PRRT?",
    "Which patients can have a liver transplant?",
    "Does octreotide prolong progression-free survival?",
    "What are the complications of hepatic arterial embolization?",
]


@pytest.mark.slow
def test_real_uvicorn_serves_concurrent_requests(fake_assistant: Assistant) -> None:
    fake_assistant.settings.rate_limit_per_minute = 0
    fake_assistant.settings.max_body_bytes = 4096
    with serve_in_thread(create_app(fake_assistant)) as url, httpx.Client(base_url=url) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        assert http.get("/readyz").status_code == 200
        serial = {q: http.post("/v1/ask", json={"question": q}).json() for q in QUESTIONS}

        def ask(q: str) -> tuple[str, dict]:
            with httpx.Client(base_url=url, timeout=30) as c:
                r = c.post("/v1/ask", json={"question": q})
                assert r.status_code == 200, r.text
                return q, r.json()

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(ask, QUESTIONS * 8))
        assert len(results) == 32
        for q, body in results:
            body.pop("timings_ms")
            expected = dict(serial[q])
            expected.pop("timings_ms")
            assert body == expected  # concurrent answers equal the serial ones

        assert http.get("/widget.js").headers["content-type"].startswith("application/javascript")
        assert "widget.js" in http.get("/").text
        r = http.post("/v1/ask", content=b"{oops", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["field"] == "body"
        r = http.post("/v1/ask", json={"question": "x" * 5000})
        assert r.status_code == 413 and r.json()["error"] == "body_too_large"
        r = http.post("/v1/ask", json={"question": QUESTIONS[0], "mode": "fuzzy"})
        assert r.status_code == 422 and r.json()["field"] == "mode"


@pytest.mark.slow
def test_oversized_declared_body_is_refused_before_it_is_sent(fake_assistant: Assistant) -> None:
    """A client announcing a huge body gets 413 at once; the server does not wait to read it."""
    fake_assistant.settings.rate_limit_per_minute = 0
    with serve_in_thread(create_app(fake_assistant)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000000\r\n\r\n{"
            )
            reply = b""
            while b"}" not in reply:  # the status line, headers and the JSON error body
                data = sock.recv(4096)
                if not data:
                    break
                reply += data
        text = reply.decode("latin-1")
        assert text.startswith("HTTP/1.1 413"), text
        assert '"error":"body_too_large"' in text


@pytest.mark.slow
def test_assistant_serve_command_over_http(tmp_path: Path) -> None:
    """`python -m assistant serve` with the real offline model, called over HTTP, then stopped."""
    shutil.copytree(FIXTURE_CORPUS, tmp_path / "corpus")
    port = free_port()
    env = dict(os.environ, ASSISTANT_RATE_LIMIT_PER_MINUTE="0", ASSISTANT_API_KEY="live-key")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assistant",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--corpus",
            str(tmp_path / "corpus"),
            "--index",
            str(tmp_path / "index"),
        ],  # fmt: skip
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready:
                break
            time.sleep(0.5)
        assert ready, "server did not become ready"
        headers = {"X-API-Key": "live-key"}
        r = httpx.post(
            f"{url}/v1/ask",
            json={"question": "What is the kidney toxicity of lutetium-177 dotatate PRRT?"},
            headers=headers,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["abstained"] is False and "[1]" in body["answer"]
        assert body["passages"][0]["source"]["id"] == "prrt-study"
        assert httpx.post(f"{url}/v1/search", json={"query": "prrt"}).status_code == 401
        assert httpx.get(f"{url}/v1/sources", headers=headers).json()["total"] == 4
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert "Serving 4 sources" in out
    assert "kidney toxicity" not in out  # questions are not logged by default


def _wait_ready(url: str, proc: subprocess.Popen, seconds: float = 240) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    return False


def _workers(pid: int) -> set[int]:
    """The uvicorn worker processes of a supervisor (Linux /proc)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == pid and b"spawn_main" in cmdline:
            out.add(int(entry.name))
    return out


@pytest.mark.slow
def test_serve_with_two_processes_shares_the_settings_and_restarts_on_sighup(
    tmp_path: Path,
) -> None:
    """`serve --processes 2`: both processes serve the flags' corpus; SIGHUP starts new workers."""
    shutil.copytree(FIXTURE_CORPUS, tmp_path / "corpus")
    port = free_port()
    env = dict(os.environ, ASSISTANT_RATE_LIMIT_PER_MINUTE="0")
    cmd = [sys.executable, "-m", "assistant", "serve", "--port", str(port), "--processes", "2",
           "--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "index")]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        assert _wait_ready(url, proc), "server did not become ready"
        first = _workers(proc.pid)
        assert len(first) == 2
        question = {"question": "What is the kidney toxicity of lutetium-177 dotatate PRRT?"}
        with ThreadPoolExecutor(8) as pool:  # both workers answer; each from the flags' corpus
            bodies = list(pool.map(lambda _: httpx.post(f"{url}/v1/ask", json=question,
                                                        timeout=60).json(), range(16)))  # fmt: skip
        assert {b["passages"][0]["source"]["id"] for b in bodies} == {"prrt-study"}
        assert httpx.get(f"{url}/v1/sources").json()["total"] == 4
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (_workers(proc.pid) & first or
                                               len(_workers(proc.pid)) < 2):  # fmt: skip
            time.sleep(0.5)
        assert len(_workers(proc.pid)) == 2 and not _workers(proc.pid) & first
        assert _wait_ready(url, proc)
        assert httpx.post(f"{url}/v1/ask", json=question, timeout=60).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert "2 server processes" in out
