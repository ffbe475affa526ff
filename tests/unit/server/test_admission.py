"""Back-pressure: past max_ongoing_requests + max_queued_requests a request is refused at once,
in OpenAI's shape, and the admitted ones still finish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rayvllm.config import ServeConfig
from rayvllm.engine.fake import FakeEngine
from rayvllm.server.admission import RAY_REFUSAL_HEADROOM, serve_max_ongoing
from rayvllm.server.app import create_app
from rayvllm.server.services import LocalService

MODEL = "m"
ROUTES = {
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}]},
    "/v1/completions": {"prompt": "hi"},
    "/vllm": {"prompt": "hi"},
}


def bounded_config(**limits: Any) -> ServeConfig:
    return ServeConfig.model_validate(
        {
            "engine": "fake",
            "fake": {"ttft_ms": 1, "itl_ms": 20},  # 10 tokens take ~200 ms: the slots stay busy
            "models": [
                {"name": MODEL, "deployment": {"max_ongoing_requests": 1, "max_queued_requests": 1}}
            ],
            "limits": limits,
        }
    )


async def bounded_client(cfg: ServeConfig) -> AsyncIterator[httpx.AsyncClient]:
    engine = FakeEngine(MODEL, cfg.fake)
    await engine.start()
    app = create_app({MODEL: LocalService(engine, request_timeout_s=30)}, cfg)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await engine.shutdown()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async for c in bounded_client(bounded_config()):
        yield c


async def timed_post(
    c: httpx.AsyncClient, route: str, **extra: Any
) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    r = await c.post(route, json={**ROUTES[route], "max_tokens": 10, **extra})
    return r, time.monotonic() - start


@pytest.mark.parametrize("route", list(ROUTES))
async def test_past_one_running_and_one_queued_ten_more_are_refused_fast(
    client: httpx.AsyncClient, route: str
) -> None:
    admitted = [asyncio.ensure_future(timed_post(client, route)) for _ in range(2)]
    await asyncio.sleep(0.05)  # the first runs, the second waits in the queue
    refused = await asyncio.gather(*(timed_post(client, route) for _ in range(10)))
    for r, seconds in refused:
        assert r.status_code == 503 and seconds < 0.1, (r.status_code, seconds)
        err = r.json()["error"]
        assert err["code"] == "overloaded" and err["type"] == "service_unavailable"
        assert MODEL in err["message"] and r.headers["retry-after"] == "1"
    for r, _ in await asyncio.gather(*admitted):
        assert r.status_code == 200, r.text


async def test_a_stream_holds_its_slot_until_its_last_chunk(client: httpx.AsyncClient) -> None:
    streams = [
        asyncio.ensure_future(timed_post(client, "/v1/completions", stream=True)) for _ in range(2)
    ]
    await asyncio.sleep(0.05)
    r, _ = await timed_post(client, "/v1/completions", stream=True)
    assert r.status_code == 503
    for r, _ in await asyncio.gather(*streams):
        assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n")
    r, _ = await timed_post(client, "/v1/completions")  # both slots are free again
    assert r.status_code == 200


async def test_overload_status_can_be_429_with_the_configured_retry_after() -> None:
    cfg = bounded_config(overload_status=429, overload_retry_after_s=7)
    async for c in bounded_client(cfg):
        admitted = [asyncio.ensure_future(timed_post(c, "/vllm")) for _ in range(2)]
        await asyncio.sleep(0.05)
        r, _ = await timed_post(c, "/vllm")
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert r.json()["error"]["code"] == "overloaded"
        assert all(r.status_code == 200 for r, _ in await asyncio.gather(*admitted))


async def test_queue_depth_is_a_metric(client: httpx.AsyncClient) -> None:
    admitted = [asyncio.ensure_future(timed_post(client, "/vllm")) for _ in range(2)]
    await asyncio.sleep(0.05)
    metrics = (await client.get("/metrics")).text
    assert f'rayvllm_requests_queued{{model="{MODEL}"}} 1.0' in metrics
    await asyncio.gather(*admitted)
    assert f'rayvllm_requests_queued{{model="{MODEL}"}} 0.0' in (await client.get("/metrics")).text


async def test_a_queued_request_whose_client_leaves_frees_its_queue_place(
    client: httpx.AsyncClient,
) -> None:
    running = asyncio.ensure_future(timed_post(client, "/vllm"))
    await asyncio.sleep(0.05)
    queued = asyncio.ensure_future(timed_post(client, "/vllm"))
    await asyncio.sleep(0.02)
    queued.cancel()
    await asyncio.sleep(0.01)
    r, _ = await timed_post(client, "/vllm")  # takes the queue place the cancelled one left
    assert r.status_code == 200
    assert (await running)[0].status_code == 200


def test_unbounded_queue_leaves_serve_bounds_as_configured() -> None:
    cfg = ServeConfig.model_validate({"models": [{"deployment": {"max_ongoing_requests": 8}}]})
    assert serve_max_ongoing(cfg.models[0].deployment) == 8


def test_bounded_queue_lets_serve_pass_requests_to_our_admission() -> None:
    cfg = bounded_config()
    assert serve_max_ongoing(cfg.models[0].deployment) == 1 + 1 + RAY_REFUSAL_HEADROOM


def test_serve_refusals_use_the_configured_status() -> None:
    app = pytest.importorskip("rayvllm.deployment.app", reason="needs ray")
    cfg = bounded_config(overload_status=429, overload_retry_after_s=3)
    options = app.deployment_options(cfg.models[0], cfg.limits)
    assert options["backpressure_config"] == {"status_code": 429, "retry_after_s": 3}
    assert options["max_ongoing_requests"] == 2 + RAY_REFUSAL_HEADROOM
    # Serve's own queue bound would refuse bursts in plain text before they reach our admission.
    assert options["max_queued_requests"] == -1
