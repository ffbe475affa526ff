"""A real local Ray Serve app with two fake models behind the router ingress."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from live import free_port
from raysrv import rayvllm_serve

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

CONFIG = """
engine: fake
fake: {ttft_ms: 5, itl_ms: 2}
models:
  - name: alpha
    deployment: {num_replicas: 1, ray_actor_options: {num_cpus: 0.1}}
  - name: beta
    deployment: {num_replicas: 1, ray_actor_options: {num_cpus: 0.1}}
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> object:
    tmp = tmp_path_factory.mktemp("ray-fake")
    cfg = tmp / "fake.yaml"
    cfg.write_text(CONFIG)
    with rayvllm_serve(
        ["--config", str(cfg)], port=free_port(), log=tmp / "serve.log", timeout_s=180
    ) as u:
        yield u


def test_each_model_is_served_by_its_deployment(url: str) -> None:
    models = httpx.get(f"{url}/v1/models").json()["data"]
    assert sorted(m["id"] for m in models) == ["alpha", "beta"]
    for name in ("alpha", "beta"):
        r = httpx.post(
            f"{url}/v1/chat/completions",
            timeout=30,
            json={"model": name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
        )
        assert r.status_code == 200 and r.json()["model"] == name
        assert r.json()["usage"]["completion_tokens"] == 3


def test_streaming_crosses_the_router(url: str) -> None:
    r = httpx.post(
        f"{url}/v1/completions",
        timeout=30,
        json={"model": "beta", "prompt": "x", "max_tokens": 4, "stream": True},
    )
    events = [e[6:] for e in r.text.split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]" and len(events) == 5
    assert all(json.loads(e)["model"] == "beta" for e in events[:-1])


def test_errors_from_a_model_deployment_keep_their_status(url: str) -> None:
    r = httpx.post(
        f"{url}/v1/completions",
        timeout=30,
        json={"model": "alpha", "prompt": "x", "max_tokens": 100000},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    r = httpx.post(f"{url}/v1/completions", timeout=30, json={"model": "gamma", "prompt": "x"})
    assert r.status_code == 404 and "alpha, beta" in r.json()["error"]["message"]


def test_legacy_endpoint_goes_to_the_first_model(url: str, tmp_path: Path) -> None:
    r = httpx.post(f"{url}/vllm", json={"prompt": "hello", "max_tokens": 2}, timeout=30)
    assert r.status_code == 200 and r.json()["text"][0].startswith("hello")
