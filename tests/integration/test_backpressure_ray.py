"""On a real local Ray Serve (HAProxy direct ingress, two fake replicas): a full replica refuses
at once in OpenAI's shape, and one key's rate limit holds across both replicas (shared actor)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from drills import wait_for_haproxy_replicas
from live import free_port

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

KEYS = {
    "flood-1": "sk-flood-3b1f0a",
    "flood-2": "sk-flood-5d8e21",
    "flood-3": "sk-flood-7a4c90",
    "steady": "sk-steady-9c2e77",
}
RPM = 20
CONFIG = f"""
engine: fake
fake: {{ttft_ms: 1, itl_ms: 20}}
models:
  - name: m
    deployment:
      num_replicas: 2
      max_ongoing_requests: 1
      max_queued_requests: 1
      ray_actor_options: {{num_cpus: 0.1}}
auth: {{enabled: true}}
limits: {{requests_per_minute: {RPM}, store: ray}}
"""
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@contextlib.contextmanager
def serve_on_ray(config: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """`rayvllm serve` on its own local Ray, stopped by its own process group only (never
    `ray stop`, which would take down every Ray on the machine)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "rayvllm.cli.main",
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rayvllm serve exited {proc.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(log.read_text()[-4000:])
            time.sleep(1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)  # serve.shutdown() and ray.shutdown() of its own Ray
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(90)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of its session is left
        proc.wait()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("ray-backpressure")
    cfg = tmp / "limits.yaml"
    cfg.write_text(CONFIG)
    stats_port = free_port()
    env = {
        "RAYVLLM_API_KEYS": ",".join(KEYS.values()),  # replicas inherit it; the config has none
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_TMPDIR": str(tmp_path_factory.mktemp("ray")),  # its own session dir, not /tmp/ray
        # HAProxy's own metrics and stats ports are fixed by default: free ones, so another
        # Serve on this machine does not make ours fail to start.
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(stats_port),
    }
    with serve_on_ray(cfg, env, tmp / "serve.log") as u:
        wait_for_replicas(u, stats_port, 2)
        yield u


def wait_for_replicas(url: str, stats_port: int, n: int, timeout_s: float = 120) -> None:
    """/ready answers once one replica is up, and replicas answer through HAProxy's backup (the
    Serve proxy) before HAProxy has them as servers: a burst then met one replica alone. So wait
    until HAProxy has all `n` UP, then until each has answered /ready through it."""
    wait_for_haproxy_replicas(stats_port, n, timeout_s)
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=5) as c:
        while len(seen) < n:
            assert time.monotonic() < deadline, f"only replicas {seen} answered"
            seen |= {r.headers["x-rayvllm-replica"] for r in [c.get("/ready") for _ in range(4)]}
            time.sleep(0.2)


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


@pytest.mark.parametrize("burst", [1, 2, 3])
async def test_full_replicas_refuse_at_once_in_openais_shape(url: str, burst: int) -> None:
    """Three bursts in a row: a later burst once met Serve's own plain-text refusal, which
    counts simultaneous arrivals as queued while slots are free. Each has its own key so the
    rate limit (RPM) stays out of the way."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(f"flood-{burst}")) as c:

        async def post() -> tuple[httpx.Response, float]:
            start = time.monotonic()
            r = await c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 25})
            return r, time.monotonic() - start

        # Two replicas x (1 running + 1 queued) = 4 admitted, however HAProxy spreads the 14;
        # each admitted one runs ~500 ms (25 tokens x 20 ms), the queued ones ~1 s.
        replies = await asyncio.gather(*(post() for _ in range(14)))
    served = [(r, s) for r, s in replies if r.status_code == 200]
    refused = [(r, s) for r, s in replies if r.status_code != 200]
    seen = sorted(
        (r.status_code, round(s, 3), r.headers.get("x-rayvllm-replica", r.text[:60]))
        for r, s in replies
    )
    print(f"14 at once: (status, seconds, replica or body) {seen}")
    assert len(served) == 4 and len(refused) == 10, seen
    for r, seconds in refused:
        assert r.status_code == 503 and seconds < 0.25, seen
        assert r.json()["error"]["code"] == "overloaded" and r.headers["retry-after"] == "1"
    assert all(seconds > 0.4 for _, seconds in served), seen
    assert len({r.headers["x-rayvllm-replica"] for r, _ in served}) == 2, seen


async def test_one_keys_limit_holds_across_both_replicas(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=bearer("steady")) as c:
        replies: list[httpx.Response] = []
        for _ in range(15):  # two at a time, so leastconn sends one to each replica
            replies += await asyncio.gather(
                *(c.post("/vllm", json={"prompt": "hi", "max_tokens": 1}) for _ in range(2))
            )
    codes = [r.status_code for r in replies]
    # RPM a minute, plus what refills (RPM / 60 a second) while the test runs.
    assert RPM <= codes.count(200) <= RPM + 1, codes
    assert set(codes) == {200, 429}, codes
    refused = [r for r in replies if r.status_code == 429]
    assert all(r.json()["error"]["code"] == "rate_limit_exceeded" for r in refused)
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    # Both replicas served and both refused: each saw the other's admissions (shared buckets).
    assert len({r.headers["x-rayvllm-replica"] for r in replies if r.status_code == 200}) == 2
    assert len({r.headers["x-rayvllm-replica"] for r in refused}) == 2


def test_serve_log_never_shows_a_key(url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    logs = [p for p in Path(tmp_path_factory.getbasetemp()).rglob("serve.log")]
    assert logs
    for log in logs:
        text = log.read_text(errors="replace")
        assert all(key not in text for key in KEYS.values())
