"""Load benchmark of the HTTP API: N concurrent clients for T seconds on loopback.

Starts `assistant serve` on 127.0.0.1 (rate limit off) unless --url names a running server,
then has each client POST /v1/ask in a loop (keep-alive), cycling through clinical questions.
Prints throughput, latency percentiles, errors and the server's peak memory (RSS); --json prints
them as one JSON object per backend. With --backends, one server per embedding backend is started
in turn, each on its own index folder (built at start when missing).

    .venv/bin/python bench/load.py                      # 16 clients, 30 s, bundled corpus
    .venv/bin/python bench/load.py --backends torch,onnx-int8
    .venv/bin/python bench/load.py --clients 4 --seconds 10 --route search
    .venv/bin/python bench/load.py --client wrk        # wrk (C) drives the load instead
    .venv/bin/python bench/load.py --processes 1,2     # one run per number of server processes

The default client is Python (httpx on asyncio): on a two-core machine it takes most of one core
itself, so the server and its load compete for the CPU. `--client wrk` (Debian's `wrk`) drives the
same questions from C with two threads and much less CPU; both figures are worth reporting.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import bench_index_dir, parse_backends, peak_rss_mib

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What is the overall survival after hepatic resection of neuroendocrine liver metastases?",
    "Which patients with liver metastases are candidates for liver transplantation?",
    "What is the kidney toxicity of lutetium-177 dotatate PRRT?",
    "Does octreotide LAR prolong time to progression in midgut tumours?",
    "What are the complications of transarterial chemoembolization?",
    "Is radiofrequency ablation an option for small liver metastases?",
    "What does the Ki-67 index mean for grading?",
    "How effective is everolimus in pancreatic neuroendocrine tumours?",
]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    port: int, extra: list[str], backend: str | None = None, processes: int | None = None
) -> subprocess.Popen:
    env = dict(os.environ, ASSISTANT_RATE_LIMIT_PER_MINUTE="0")
    if processes:
        env["ASSISTANT_PROCESSES"] = str(processes)
    if backend:
        env["ASSISTANT_EMBEDDING_BACKEND"] = backend
    cmd = [sys.executable, "-m", "assistant", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd + extra, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def family(pid: int) -> list[int]:
    """A process and its descendants (uvicorn's worker processes), Linux /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, ValueError, IndexError):
                continue
    out, todo = [pid], [pid]
    while todo:
        parent = todo.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        out += children
        todo += children
    return out


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of a process and its worker processes (Linux /proc)."""
    try:
        ticks = 0
        for member in family(pid):
            fields = _stat(member)
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def family_peak_rss_mib(pid: int) -> float | None:
    """Summed peak resident memory (VmHWM) of a process and its worker processes."""
    peaks = [peak_rss_mib(member) for member in family(pid)]
    return sum(p for p in peaks if p is not None) if any(p is not None for p in peaks) else None


def wait_ready(
    url: str, proc: subprocess.Popen | None, timeout: float = 600, processes: int | None = None
) -> dict:
    """The ready answer of /readyz, once the server answers ready. With several worker
    processes each new connection may reach another one, so it must answer ready ten times
    per process in a row (a worker still loading answers 503)."""
    needed = 1 if not processes or processes < 2 else 10 * processes
    deadline = time.monotonic() + timeout
    streak = 0
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            r = httpx.get(f"{url}/readyz", timeout=2)
            streak = streak + 1 if r.status_code == 200 else 0
            if streak >= needed:
                return r.json()
            if streak:
                continue
        except httpx.TransportError:
            streak = 0
        time.sleep(0.5)
    raise SystemExit(f"server at {url} not ready after {timeout:.0f} s")


async def client(
    http: httpx.AsyncClient, route: str, offset: int, stop_at: float, out: dict
) -> None:
    i = offset
    while time.perf_counter() < stop_at:
        q = QUESTIONS[i % len(QUESTIONS)]
        i += 1
        body = {"question": q} if route == "ask" else {"query": q}
        t0 = time.perf_counter()
        try:
            r = await http.post(f"/v1/{route}", json=body)
            ok = r.status_code == 200
            if not ok:
                out["status"][r.status_code] = out["status"].get(r.status_code, 0) + 1
        except httpx.HTTPError as exc:
            ok = False
            out["status"][type(exc).__name__] = out["status"].get(type(exc).__name__, 0) + 1
        out["latencies"].append((time.perf_counter() - t0) * 1000)
        out["errors"] += 0 if ok else 1


async def run(url: str, clients: int, seconds: float, route: str, warmup: int) -> dict:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        for q in QUESTIONS[:warmup]:  # first calls pay one-off costs (allocations, caches)
            await http.post("/v1/ask", json={"question": q})
        out: dict = {"latencies": [], "errors": 0, "status": {}}
        start = time.perf_counter()
        stop_at = start + seconds
        await asyncio.gather(*(client(http, route, n, stop_at, out) for n in range(clients)))
        elapsed = time.perf_counter() - start
    lat = sorted(out["latencies"])
    return {
        "route": f"/v1/{route}",
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": len(lat),
        "errors": out["errors"],
        "error_kinds": {str(k): v for k, v in out["status"].items()},
        "throughput_rps": round(len(lat) / elapsed, 2),
        "latency_ms": {
            "mean": round(statistics.fmean(lat), 2) if lat else None,
            "p50": round(percentile(lat, 50), 2),
            "p95": round(percentile(lat, 95), 2),
            "p99": round(percentile(lat, 99), 2),
            "max": round(lat[-1], 2) if lat else None,
        },
    }


WRK_SCRIPT = """
local qs = %(questions)s
local key = "%(key)s"
local i = %(offset)d
request = function()
  i = i + 1
  local body = '{"' .. key .. '": ' .. qs[(i %% #qs) + 1] .. '}'
  return wrk.format("POST", "/v1/%(route)s", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  local bad = e.connect + e.read + e.write + e.timeout + e.status
  io.write(string.format(
    'WRK {"requests": %%d, "errors": %%d, "seconds": %%.3f, "mean": %%.3f, "p50": %%.3f, '
    .. '"p95": %%.3f, "p99": %%.3f, "max": %%.3f}\\n',
    summary.requests, bad, summary.duration / 1e6, latency.mean / 1000,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def run_wrk(url: str, clients: int, seconds: float, route: str, warmup: int) -> dict:
    """The same questions driven by wrk (2 threads, `clients` connections); wrk's own figures."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("--client wrk needs wrk on the PATH (Debian: apt-get install wrk)")
    for q in QUESTIONS[:warmup]:
        httpx.post(f"{url}/v1/ask", json={"question": q}, timeout=30)
    questions = "{" + ", ".join(json.dumps(json.dumps(q)) for q in QUESTIONS) + "}"
    script = WRK_SCRIPT % {"questions": questions, "route": route, "offset": 0,
                           "key": "question" if route == "ask" else "query"}  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        out = subprocess.run([wrk, "-t2", f"-c{clients}", f"-d{seconds:.0f}s", "-s", fh.name, url],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    finally:
        os.unlink(fh.name)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    w = json.loads(line[4:])
    return {
        "route": f"/v1/{route}",
        "client": "wrk",
        "clients": clients,
        "seconds": round(w["seconds"], 2),
        "requests": w["requests"],
        "errors": w["errors"],
        "error_kinds": {},
        "throughput_rps": round(w["requests"] / w["seconds"], 2),
        "latency_ms": {k: round(w[k], 2) for k in ("mean", "p50", "p95", "p99", "max")},
    }


def bench_one(args: argparse.Namespace, backend: str | None, processes: int | None = None) -> dict:
    """One load run: against --url, or against a server started here (on `backend`)."""
    proc = None
    if args.url:
        host = httpx.URL(args.url).host
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("--url must be a loopback address (127.0.0.1, localhost, ::1)")
        url = args.url.rstrip("/")
    else:
        port = free_port()
        extra = []
        if args.corpus:
            extra += ["--corpus", args.corpus]
        if args.index:
            extra += ["--index", args.index]
        elif backend:
            extra += ["--index", str(bench_index_dir(backend))]
        proc = start_server(port, extra, backend, processes)
        url = f"http://127.0.0.1:{port}"
    try:
        ready = wait_ready(url, proc, processes=processes)
        cpu0 = cpu_seconds(proc.pid) if proc else None
        if args.client == "wrk":
            result = run_wrk(url, args.clients, args.seconds, args.route, args.warmup)
        else:
            result = asyncio.run(run(url, args.clients, args.seconds, args.route, args.warmup))
            result["client"] = "httpx"
        cpu1 = cpu_seconds(proc.pid) if proc else None
        if cpu0 is not None and cpu1 is not None and result["requests"]:
            # CPU the server spent per request (warm-up included): what bounds throughput on
            # an idle machine, whatever else is running on this one
            total = result["requests"] + args.warmup
            result["server_cpu_ms_per_request"] = round((cpu1 - cpu0) * 1000 / total, 2)
        rss = family_peak_rss_mib(proc.pid) if proc else None
        if rss is not None:
            result["server_peak_rss_mib"] = round(rss, 1)
        result.update(sources=ready["sources"], chunks=ready["chunks"], model=ready["model"],
                      backend=backend or "setting", cpus=os.cpu_count(),
                      processes=processes or "setting")  # fmt: skip
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--url", help="benchmark a running server (loopback only) instead")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--route", choices=("ask", "search"), default="ask")
    ap.add_argument("--warmup", type=int, default=len(QUESTIONS))
    ap.add_argument("--corpus", help="corpus folder for the started server")
    ap.add_argument("--index", help="index folder for the started server")
    ap.add_argument("--backends", help="comma-separated embedding backends, one server each "
                    "(torch, onnx, onnx-int8; default: the setting)")  # fmt: skip
    ap.add_argument("--client", choices=("httpx", "wrk"), default="httpx",
                    help="load generator: Python httpx (default) or wrk")  # fmt: skip
    ap.add_argument("--processes", help="comma-separated numbers of server processes, one run "
                    "each (default: the setting, ASSISTANT_PROCESSES)")  # fmt: skip
    ap.add_argument("--json", action="store_true", help="print one JSON object per run")
    args = ap.parse_args()
    process_counts: list[int | None] = [None]
    if args.processes:
        if args.url:
            raise SystemExit("--processes starts servers; it cannot be used with --url")
        process_counts = [int(n) for n in args.processes.split(",")]
    backends: list[str | None] = [None]
    if args.backends:
        if args.url:
            raise SystemExit("--backends starts servers; it cannot be used with --url")
        backends = list(parse_backends(args.backends))
    for backend, processes in itertools.product(backends, process_counts):
        result = bench_one(args, backend, processes)
        if args.json:
            print(json.dumps(result), flush=True)
            continue
        lat = result["latency_ms"]
        print(f"[{result['backend']}, processes {result['processes']}] {result['route']}: {result['clients']} {result['client']} "
              f"clients for "
              f"{result['seconds']} s against {result['sources']} sources / {result['chunks']} "
              f"chunks ({result['model']}), {result['cpus']} CPUs")  # fmt: skip
        print(f"requests {result['requests']}, errors {result['errors']} "
              f"{result['error_kinds'] or ''}")  # fmt: skip
        print(f"throughput {result['throughput_rps']} req/s")
        print(f"latency ms: p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  "
              f"mean {lat['mean']}  max {lat['max']}")  # fmt: skip
        if "server_cpu_ms_per_request" in result:
            print(f"server CPU per request: {result['server_cpu_ms_per_request']} ms")
        if "server_peak_rss_mib" in result:
            print(f"server peak memory (VmHWM, all processes): {result['server_peak_rss_mib']} MiB")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        if load is not None:
            print(f"load average (1 min) at the end: {load:.2f} on {result['cpus']} CPUs")


if __name__ == "__main__":
    main()
