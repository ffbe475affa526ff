"""Node loss: a two-node Ray cluster on this machine, one fake-engine replica per node, clients
on the head's HAProxy. SIGKILL of the worker node's raylet takes that node and its replica away;
the head keeps answering. Steady load runs across the loss; the errors it saw and how long the
disturbance lasted are printed (and recorded in docs/reliability-drills.md)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psutil
import pytest
from drills import (
    RayNode,
    free_port,
    haproxy_ports_env,
    ray_node,
    serve_subprocess,
    wait_for_haproxy_replicas,
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

RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_SERVE_ENABLE_HA_PROXY": "1"}
CLIENTS = 4
BEFORE_S, AFTER_S = 5.0, 45.0
RECOVERED_WITHIN_S = 30.0  # every request started this long after the loss must succeed
TOKENS = 20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RayNode, RayNode]]:
    tmp = tmp_path_factory.mktemp("node-loss")
    deployment = DeploymentConfig(
        num_replicas=2,
        # One CPU per replica on nodes of one CPU each: one replica per node.
        ray_actor_options=RayActorOptions(num_cpus=1),
        health_check_period_s=2,
    )
    cfg = ServeConfig(
        engine="fake",
        fake=FakeEngineConfig(ttft_ms=5, itl_ms=5),
        models=[ModelConfig(deployment=deployment)],
    )
    (tmp / "serve.yaml").write_text(cfg.to_yaml())
    # Both nodes share this machine, so the worker's HAProxy needs ports of its own.
    worker_env = {
        **RAY_ENV,
        **haproxy_ports_env(),
        "RAY_SERVE_WORKER_PROXY_HTTP_PORT": str(free_port()),
    }
    head_ports = haproxy_ports_env()
    with (
        ray_node(tmp, "head", num_cpus=1, env={**RAY_ENV, **head_ports}) as head,
        ray_node(
            tmp,
            "worker",
            num_cpus=1,
            head_address=head.gcs_address,
            resources=json.dumps({"worker_node": 1}),
            env=worker_env,
            worker_ports=(22500, 22999),
        ) as worker,
    ):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        args = ["serve", "--config", str(tmp / "serve.yaml"), "--port", str(port)]
        args += ["--address", head.gcs_address]
        with serve_subprocess(args, url=url, log=tmp / "serve.log", timeout_s=240, env=RAY_ENV):
            # /ready answers once one replica is up; the drill needs the worker's replica
            # running and behind the head's HAProxy too (CI once found none on the worker).
            wait_for_haproxy_replicas(head_ports["RAY_SERVE_HAPROXY_STATS_PORT"], 2)
            yield url, head, worker


def processes(node: RayNode, needle: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.Process(node.proc.pid).children(recursive=True):
        try:
            if needle in " ".join(proc.cmdline()) or proc.name() == needle:
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


@dataclass
class Outcome:
    started: float
    ended: float
    status: str


class SteadyLoad(threading.Thread):
    """One client sending request after request (streamed and not, alternating)."""

    def __init__(self, url: str, stop: threading.Event, log: list[Outcome]) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.log = url, stop, log

    def run(self) -> None:
        stream = False
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                stream = not stream
                started = time.monotonic()
                status = self._one(client, stream)
                self.log.append(Outcome(started, time.monotonic(), status))

    def _one(self, client: httpx.Client, stream: bool) -> str:
        body = {"prompt": "steady", "max_tokens": TOKENS, "ignore_eos": True, "stream": stream}
        try:
            if not stream:
                r = client.post("/v1/completions", json=body)
                if r.status_code == 200 and r.json()["usage"]["completion_tokens"] != TOKENS:
                    return "short"
                return str(r.status_code)
            with client.stream("POST", "/v1/completions", json=body) as r:
                events = [line for line in r.iter_lines() if line.startswith("data: ")]
            if r.status_code != 200:
                return str(r.status_code)
            whole = events[-1:] == ["data: [DONE]"] and len(events) == TOKENS + 1
            return "200" if whole else "cut-stream"
        except httpx.HTTPError as exc:
            return type(exc).__name__


def test_losing_the_worker_node_keeps_the_service_answering(
    cluster: tuple[str, RayNode, RayNode],
) -> None:
    url, head, worker = cluster
    assert len(processes(head, "ServeReplica:")) == 1
    assert len(processes(worker, "ServeReplica:")) == 1
    # By name: other processes of the node carry "raylet" in their arguments.
    (raylet,) = [p for p in processes(worker, "raylet") if p.name() == "raylet"]

    stop, log = threading.Event(), list[Outcome]()
    clients = [SteadyLoad(url, stop, log) for _ in range(CLIENTS)]
    for c in clients:
        c.start()
    time.sleep(BEFORE_S)
    raylet.kill()
    lost = time.monotonic()
    time.sleep(AFTER_S)
    stop.set()
    for c in clients:
        c.join(60)

    before = [o for o in log if o.ended < lost]
    after = [o for o in log if o.ended >= lost]
    failed = [o for o in after if o.status != "200"]
    late = [o for o in after if o.started > lost + RECOVERED_WITHIN_S]
    disturbance = max((o.ended for o in failed), default=lost) - lost
    counts = Counter(o.status for o in after)
    print(
        f"node loss: {len(before)} requests before (all {set(o.status for o in before)}); "
        f"{len(after)} in the {AFTER_S:.0f} s after: {dict(counts)}; last failure "
        f"{disturbance:.1f} s after the loss"
    )
    assert {o.status for o in before} == {"200"}
    assert late and all(o.status == "200" for o in late), Counter(o.status for o in late)
    assert httpx.get(f"{url}/ready", timeout=10).status_code == 200
    assert len(processes(head, "ServeReplica:")) == 1
