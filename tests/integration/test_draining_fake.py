"""Draining on Ray with HAProxy ingress (fake engine, slow tokens): scaling 2 replicas down to 1
while streams run lets every in-flight stream finish whole, and new requests keep succeeding;
SIGTERM to `rayvllm serve` lets in-flight streams finish, then the port refuses connections.

Ray holds a replica behind HAProxy reachable for RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S
(30 s by default) before it closes its listener; the drill sets 2 s so a scale-down takes seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from drills import (
    RayNode,
    StreamResult,
    free_port,
    haproxy_ports_env,
    ray_node,
    read_sse,
    serve_subprocess,
    wait_for_haproxy_replicas,
    wait_until,
)

from rayvllm.config import (
    DeploymentConfig,
    FakeEngineConfig,
    ModelConfig,
    RayActorOptions,
    ServeConfig,
)

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

ITL_MS = 20
STREAM_TOKENS = 600  # 12 s of tokens: still running when the replica is told to stop
MIN_DRAINING_S = 2
RAY_ENV = {
    # Ray 2.60 turns token auth on for `ray start`, but a driver given an explicit address
    # only sends the token (from ~/.ray/auth_token) when told to.
    "RAY_AUTH_MODE": "token",
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": str(MIN_DRAINING_S),
}

REDEPLOY = """
import sys
import ray
from ray import serve
from rayvllm.config import ServeConfig
from rayvllm.deployment.app import build_app

config = ServeConfig.from_yaml(sys.argv[2])
ray.init(address=sys.argv[1], namespace="rayvllm", log_to_driver=False)
print("connected", flush=True)
sys.stdin.readline()
serve.run(build_app(config), name=config.app_name, route_prefix="/", blocking=False)
print("deployed", flush=True)
"""


def config(replicas: int) -> ServeConfig:
    deployment = DeploymentConfig(
        num_replicas=replicas,
        ray_actor_options=RayActorOptions(num_cpus=0.1),
        graceful_shutdown_wait_loop_s=0.5,
    )
    return ServeConfig(
        engine="fake",
        fake=FakeEngineConfig(ttft_ms=20, itl_ms=ITL_MS),
        models=[ModelConfig(deployment=deployment)],
    )


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("drain")


@pytest.fixture(scope="module")
def haproxy_ports() -> dict[str, str]:
    return haproxy_ports_env()


@pytest.fixture(scope="module")
def head(tmp: Path, haproxy_ports: dict[str, str]) -> Iterator[RayNode]:
    with ray_node(tmp, "head", num_cpus=2, env={**RAY_ENV, **haproxy_ports}) as node:
        yield node


@pytest.fixture(scope="module")
def server(
    tmp: Path, head: RayNode, haproxy_ports: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    (tmp / "two.yaml").write_text(config(2).to_yaml())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["serve", "--config", str(tmp / "two.yaml"), "--port", str(port)]
    args += ["--address", head.gcs_address]
    with serve_subprocess(args, url=url, log=tmp / "serve.log", timeout_s=240, env=RAY_ENV) as p:
        # /ready answers once one replica is up: wait for both behind HAProxy.
        wait_for_haproxy_replicas(haproxy_ports["RAY_SERVE_HAPROXY_STATS_PORT"], 2)
        yield url, p


def replicas(node: RayNode) -> list[psutil.Process]:
    out = []
    for proc in psutil.Process(node.proc.pid).children(recursive=True):
        try:
            if "ServeReplica:" in " ".join(proc.cmdline()):
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


def inbound_streams(replica: psutil.Process) -> int:
    """Connections open to the replica's own HTTP port (direct ingress, 30000-31000)."""
    conns = replica.net_connections(kind="tcp")
    ports = {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN}
    ingress = {p for p in ports if 30000 <= p <= 31000}
    return sum(c.status == psutil.CONN_ESTABLISHED and c.laddr.port in ingress for c in conns)


class Stream(threading.Thread):
    """A long streamed completion; `flowing` is set once tokens arrive."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.flowing = threading.Event()
        self.result = StreamResult()
        self.failure: str | None = None

    def run(self) -> None:
        body = {
            "prompt": "drain",
            "max_tokens": STREAM_TOKENS,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        try:
            with httpx.stream(
                "POST", f"{self.url}/v1/completions", json=body, timeout=httpx.Timeout(10, read=60)
            ) as r:
                self.result = read_sse(self._flag(r.iter_lines()))
                self.result.status = r.status_code
        except httpx.HTTPError as exc:
            self.failure = type(exc).__name__
        finally:
            self.flowing.set()

    def _flag(self, lines: Iterator[str]) -> Iterator[str]:
        for n, line in enumerate(lines):
            if n >= 6:
                self.flowing.set()
            yield line

    @property
    def whole(self) -> bool:
        r = self.result
        return (
            self.failure is None
            and r.status == 200
            and r.done
            and not r.errors
            and r.completion_tokens == STREAM_TOKENS
        )


def start_streams(url: str, n: int) -> list[Stream]:
    streams = [Stream(url) for _ in range(n)]
    for s in streams:
        s.start()
    for s in streams:
        assert s.flowing.wait(30)
    return streams


class Newcomers(threading.Thread):
    """Fresh short requests, one after another, until stopped: their statuses."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.statuses: Counter[str] = Counter()

    def run(self) -> None:
        body = {"prompt": "new", "max_tokens": 10, "ignore_eos": True}
        while not self.stop.is_set():
            try:
                r = httpx.post(f"{self.url}/v1/completions", json=body, timeout=30)
                ok = r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 10
                self.statuses[str(r.status_code) if ok or r.status_code != 200 else "short"] += 1
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1
            time.sleep(0.05)


def test_scale_down_lets_in_flight_streams_finish_and_new_requests_succeed(
    tmp: Path, head: RayNode, server: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, _ = server
    assert len(replicas(head)) == 2
    (tmp / "one.yaml").write_text(config(1).to_yaml())
    driver = subprocess.Popen(
        [sys.executable, "-c", REDEPLOY, head.gcs_address, str(tmp / "one.yaml")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, **RAY_ENV},
    )  # fmt: skip
    try:
        assert driver.stdout is not None and driver.stdin is not None
        assert driver.stdout.readline().strip() == "connected"
        streams = start_streams(url, 12)
        load = {r.pid: inbound_streams(r) for r in replicas(head)}
        newcomers = Newcomers(url)
        newcomers.start()
        driver.stdin.write("go\n")
        driver.stdin.flush()
        told = time.monotonic()
        assert driver.stdout.readline().strip() == "deployed"
        for s in streams:
            s.join(90)
        streams_done_s = time.monotonic() - told
        gone_s = wait_until(lambda: len(replicas(head)) == 1, timeout_s=90)
        time.sleep(2)  # newcomers keep coming after the replica has gone
        newcomers.stop.set()
        newcomers.join(40)
    finally:
        driver.kill()
        driver.wait()

    survivors = {r.pid for r in replicas(head)}
    print(
        f"redeploy 2->1: streams per replica before {sorted(load.values())}; survivors "
        f"{'old' if survivors <= set(load) else 'new'}; streams whole "
        f"{sum(s.whole for s in streams)}/12 after {streams_done_s:.1f} s "
        f"{[(s.failure, s.result) for s in streams if not s.whole][:2]}; one replica left "
        f"after {streams_done_s + gone_s:.1f} s; newcomers {dict(newcomers.statuses)}"
    )
    assert len(survivors) == 1
    assert all(n >= 1 for n in load.values()), f"a replica had no stream to drain: {load}"
    assert [s.whole for s in streams] == [True] * 12
    assert set(newcomers.statuses) == {"200"}, newcomers.statuses


def test_sigterm_lets_in_flight_streams_finish_then_refuses(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = server
    streams = start_streams(url, 4)
    proc.terminate()
    sent = time.monotonic()
    for s in streams:
        s.join(90)
    streams_done_s = time.monotonic() - sent
    proc.wait(120)
    exited_s = time.monotonic() - sent
    after: str
    try:
        after = str(
            httpx.post(f"{url}/v1/completions", json={"prompt": "x"}, timeout=10).status_code
        )
    except httpx.HTTPError as exc:
        after = type(exc).__name__
    print(
        f"SIGTERM: streams {[s.whole for s in streams]} "
        f"{[(s.failure, s.result) for s in streams if not s.whole]}; done after "
        f"{streams_done_s:.1f} s; rayvllm serve exited after {exited_s:.1f} s; then: {after}"
    )
    assert [s.whole for s in streams] == [True] * 4
    assert after == "ConnectError"
