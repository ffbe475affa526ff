"""Helpers the reliability drills share: a server subprocess, Prometheus scraping, SSE reading
and a process-tree lookup. Drills start real servers; nothing here is a fake."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

VLLM_GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def haproxy_ports_env() -> dict[str, str]:
    """Free ports for what Ray Serve's HAProxy ingress binds on each node. Its defaults (8404
    stats, 9101 metrics, 8500/9500 fallback proxy) are fixed, so a second Ray on the machine,
    a second node of the same machine, or a leaked HAProxy would collide."""
    names = (
        "RAY_SERVE_HAPROXY_STATS_PORT",
        "RAY_SERVE_HAPROXY_METRICS_PORT",
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT",
    )
    return {name: str(free_port()) for name in names}


def haproxy_replicas_up(stats_port: int | str) -> set[str]:
    """Serve replicas that Ray Serve's HAProxy has as servers and sees UP, from its stats CSV.
    Replicas can answer before this: while HAProxy has no server yet, its backup server (Serve's
    Python proxy) reaches them through handles, and a drill would then test the wrong path."""
    text = httpx.get(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=5).text
    rows = csv.DictReader(io.StringIO(text.removeprefix("# ")))
    return {
        row["svname"]
        for row in rows
        if row["svname"].startswith("SERVE_REPLICA") and row["status"].startswith("UP")
    }


def wait_for_haproxy_replicas(stats_port: int | str, n: int, timeout_s: float = 120) -> None:
    """Until HAProxy has `n` replicas UP. `/ready` is 200 as soon as one replica is up, so a
    drill that needs every replica behind HAProxy waits for this."""
    wait_until(lambda: len(haproxy_replicas_up(stats_port)) == n, timeout_s=timeout_s)


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of every sample of `name` (a counter's `_total` included) whose labels match."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in (name, name + "_total"):
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def engine_backlog(url: str) -> float:
    """vLLM's running + waiting requests, as the server's /metrics reports them."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(metric_sum(text, g) for g in VLLM_GAUGES)


def wait_until(predicate: Callable[[], bool], timeout_s: float, every_s: float = 0.1) -> float:
    """Seconds until `predicate()` held; AssertionError after `timeout_s`."""
    start = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(every_s)


@dataclass
class StreamResult:
    """What one streamed request showed its client."""

    status: int = 0
    chunks: int = 0
    completion_tokens: int | None = None
    errors: list[dict[str, object]] = field(default_factory=list)
    done: bool = False


def read_sse(lines: Iterator[str]) -> StreamResult:
    """Fold an OpenAI SSE stream: counts chunks, keeps usage, error events and [DONE]."""
    res = StreamResult(status=200)
    for line in lines:
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            res.done = True
            break
        event = json.loads(data)
        if "error" in event:
            res.errors.append(event["error"])
        elif event.get("usage"):
            res.completion_tokens = event["usage"]["completion_tokens"]
        else:
            res.chunks += 1
    return res


@contextmanager
def serve_subprocess(
    args: list[str], *, url: str, log: Path, timeout_s: float, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`rayvllm ARGS` in its own process group, ready when /ready says 200; SIGTERM at exit."""
    full_env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "rayvllm.cli.main", *args]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rayvllm exited {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout_s} s:\n{log.read_text()[-4000:]}")
            time.sleep(1)
        yield proc
    finally:
        stop_group(proc, grace_s=90)


def stop_group(proc: subprocess.Popen[bytes], *, grace_s: float) -> None:
    """SIGTERM the process (it shuts its own children down), then SIGKILL whatever it started
    that is still alive: its group, and descendants that left it (Ray's HAProxy does)."""
    try:
        started = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        started = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for child in started:
        with suppress(psutil.NoSuchProcess):
            if child.is_running():  # same process: psutil compares creation times
                child.kill()


@dataclass
class RayNode:
    proc: subprocess.Popen[bytes]
    gcs_address: str
    log: Path


@contextmanager
def ray_node(
    tmp: Path,
    name: str,
    *,
    num_cpus: int,
    env: dict[str, str],
    head_address: str | None = None,
    resources: str | None = None,
    worker_ports: tuple[int, int] = (22000, 22499),  # below Linux's ephemeral ports
    timeout_s: float = 120,
) -> Iterator[RayNode]:
    """`ray start --block`: a head, or a worker joining `head_address`, on this machine with
    ports of its own; SIGTERM at exit stops that node's processes and nothing else's."""
    ports = {
        "--node-manager-port": free_port(),
        "--object-manager-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--runtime-env-agent-port": free_port(),
        "--metrics-export-port": free_port(),
    }
    cmd = [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--block",
        f"--num-cpus={num_cpus}",
        "--object-store-memory=200000000",
        "--disable-usage-stats",
        *(f"{k}={v}" for k, v in ports.items()),
    ]
    session_dir = tempfile.mkdtemp(prefix="rv-", dir="/tmp")
    if head_address is None:
        gcs = f"127.0.0.1:{free_port()}"
        cmd += [
            "--head",
            f"--port={gcs.split(':')[1]}",
            "--include-dashboard=false",
            f"--ray-client-server-port={free_port()}",
            # Ray's socket paths live under the temp dir and may not exceed 107 bytes: pytest's
            # own tmp paths are too long, so the session gets a short one of its own.
            f"--temp-dir={session_dir}",
        ]
    else:
        gcs = head_address
        cmd += [f"--address={gcs}"]
    if resources:
        cmd += [f"--resources={resources}"]
    cmd += [
        "--node-ip-address=127.0.0.1",
        f"--min-worker-port={worker_ports[0]}",
        f"--max-worker-port={worker_ports[1]}",
    ]
    log = tmp / f"ray-{name}.log"
    full_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **env}
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )
    try:
        wait_until(
            lambda: "block forever" in log.read_text() or proc.poll() is not None,
            timeout_s,
            every_s=0.5,
        )
        if proc.poll() is not None:
            raise RuntimeError(f"ray start {name} exited:\n{log.read_text()[-3000:]}")
        yield RayNode(proc, gcs, log)
    finally:
        stop_group(proc, grace_s=60)
        shutil.rmtree(session_dir, ignore_errors=True)
