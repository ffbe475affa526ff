"""Engine death on Ray: SIGKILL the replica's VLLM::EngineCore mid-request. /ready turns false
within seconds, every in-flight request ends with an error (an error event then [DONE] when
streamed, a 503 body when not), never a hang; Serve's health check replaces the replica and
requests succeed again. One Ray cluster, two engine starts (the original and its replacement)."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import psutil
import pytest
from drills import StreamResult, free_port, haproxy_ports_env, read_sse, serve_subprocess

from rayvllm.config import ServeConfig

pytest.importorskip("ray")
pytest.importorskip("vllm")
pytestmark = [pytest.mark.ray, pytest.mark.vllm]

READY_FALSE_BUDGET_S = 5.0
REPLACED_BUDGET_S = 600.0
HEALTH_CHECK_PERIOD_S = 2.0
PROBE_TIMEOUT_S = 400.0  # longer than a replacement engine start on 2 busy cores


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> object:
    tmp = tmp_path_factory.mktemp("engine-death")
    cfg = ServeConfig()
    cfg.models[0].deployment.health_check_period_s = HEALTH_CHECK_PERIOD_S
    (tmp / "serve.yaml").write_text(cfg.to_yaml())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["serve", "--config", str(tmp / "serve.yaml"), "--port", str(port)]
    with serve_subprocess(
        args, url=url, log=tmp / "serve.log", timeout_s=900, env=haproxy_ports_env()
    ) as proc:
        yield url, proc


def replica_and_engine_core(root_pid: int) -> tuple[psutil.Process, psutil.Process]:
    """The model replica (a Ray worker under our `rayvllm serve`) and its EngineCore child."""
    for proc in psutil.Process(root_pid).children(recursive=True):
        try:
            if "ServeReplica:" not in " ".join(proc.cmdline()):
                continue
            cores = [c for c in proc.children() if c.name() == "VLLM::EngineCore"]
        except psutil.NoSuchProcess:
            continue
        if cores:
            return proc, cores[0]
    raise AssertionError("no ServeReplica process with a VLLM::EngineCore child")


class InFlight(threading.Thread):
    """One request running in the background; `started` is set once tokens flow."""

    def __init__(self, url: str, *, stream: bool) -> None:
        super().__init__(daemon=True)
        self.url, self.stream = url, stream
        self.started = threading.Event()
        self.status = 0
        self.error_code: str | None = None
        self.sse = StreamResult()
        self.ended_at = 0.0

    def run(self) -> None:
        body = {
            "prompt": "Write a long story about a fox.",
            "max_tokens": 600,
            "ignore_eos": True,
            "stream": self.stream,
        }
        timeout = httpx.Timeout(10, read=60)  # a hang shows as ReadTimeout, not a stuck test
        try:
            if self.stream:
                with httpx.stream(
                    "POST", f"{self.url}/v1/completions", json=body, timeout=timeout
                ) as r:
                    self.status = r.status_code
                    self.sse = read_sse(self._mark_started(r.iter_lines()))
            else:
                self.started.set()
                r = httpx.post(f"{self.url}/v1/completions", json=body, timeout=timeout)
                self.status = r.status_code
                self.error_code = r.json().get("error", {}).get("code")
        finally:
            self.ended_at = time.monotonic()
            self.started.set()

    def _mark_started(self, lines: object) -> object:
        for n, line in enumerate(lines):  # type: ignore[attr-defined]
            if n >= 4:
                self.started.set()
            yield line


def probe(url: str) -> tuple[str, float]:
    """One small request: its status (or the client error's name) and how long it took."""
    start = time.monotonic()
    try:
        r = httpx.post(
            f"{url}/v1/completions", json={"prompt": "hi", "max_tokens": 4}, timeout=PROBE_TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        return type(exc).__name__, time.monotonic() - start
    return str(r.status_code), time.monotonic() - start


def test_engine_core_death_fails_requests_fast_and_serve_replaces_the_replica(
    server: tuple[str, object],
) -> None:
    url, serve_proc = server
    replica, core = replica_and_engine_core(serve_proc.pid)  # type: ignore[attr-defined]
    in_flight = [InFlight(url, stream=True) for _ in range(3)]
    in_flight += [InFlight(url, stream=False) for _ in range(2)]
    for req in in_flight:
        req.start()
    for req in in_flight:
        assert req.started.wait(120), "requests did not get going"

    core.kill()
    killed = time.monotonic()
    while httpx.get(f"{url}/ready", timeout=10).status_code == 200:
        assert time.monotonic() - killed < READY_FALSE_BUDGET_S, "/ready still true"
        time.sleep(0.05)
    ready_false_s = time.monotonic() - killed

    for req in in_flight:
        req.join(90)
        assert not req.is_alive(), "an in-flight request hung"
    ended_s = max(req.ended_at for req in in_flight) - killed
    for req in in_flight:
        if req.stream:
            assert req.status == 200 and req.sse.done, "stream cut without [DONE]"
            assert [e["code"] for e in req.sse.errors] == ["engine_unavailable"]
        else:
            assert (req.status, req.error_code) == (503, "engine_unavailable")

    # Until the replacement is up, a request gets a quick 503 from the dead replica, or once
    # Serve has taken it out, waits in Serve's fallback proxy for the new one: never a hang.
    outage: Counter[str] = Counter()
    while True:
        status, took = probe(url)
        if status == "200":
            break
        outage[status] += 1
        assert time.monotonic() - killed < REPLACED_BUDGET_S, f"not replaced: {outage}"
        time.sleep(0.5)
    back_s = time.monotonic() - killed
    assert set(outage) <= {"503"}, outage

    assert httpx.get(f"{url}/ready", timeout=10).status_code == 200
    new_replica, _ = replica_and_engine_core(serve_proc.pid)  # type: ignore[attr-defined]
    assert new_replica.pid != replica.pid
    r = httpx.post(
        f"{url}/v1/completions",
        timeout=60,
        json={"prompt": "Hello", "max_tokens": 8, "ignore_eos": True},
    )
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 8
    print(
        f"engine death: /ready false after {ready_false_s:.2f} s; in-flight requests ended "
        f"{ended_s:.2f} s after the kill; replacement served after {back_s:.0f} s; "
        f"answers meanwhile: {dict(outage)}, then one waited {took:.0f} s for the new replica"
    )
