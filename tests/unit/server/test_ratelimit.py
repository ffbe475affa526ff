"""Rate limits per key: requests and tokens per minute, 429 with Retry-After, usage-corrected
token charges, and one limit held across two app instances (replicas) sharing a store."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rayvllm.config import LimitsConfig, ServeConfig
from rayvllm.engine.fake import FakeEngine
from rayvllm.server.app import create_app
from rayvllm.server.protocol import ChatCompletionRequest, CompletionRequest
from rayvllm.server.ratelimit import (
    Ask,
    LocalAuthority,
    RateLimiter,
    Rates,
    TokenBuckets,
    reserved_tokens,
)
from rayvllm.server.services import LocalService

MODEL = "smollm2-135m-instruct"
KEYS = {"alice": "sk-alice-0123456789", "bob": "sk-bob-9876543210"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limited_config(**limits: Any) -> ServeConfig:
    return ServeConfig.model_validate(
        {
            "engine": "fake",
            "fake": {"ttft_ms": 0, "itl_ms": 0, "max_model_len": 512},
            "auth": {"enabled": True},
            "limits": limits,
        }
    )


async def app_client(
    cfg: ServeConfig, authority: LocalAuthority | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    engine = FakeEngine(MODEL, cfg.fake)
    await engine.start()
    app = create_app(
        {MODEL: LocalService(engine, request_timeout_s=30)}, cfg, limits_authority=authority
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await engine.shutdown()


@pytest.fixture(autouse=True)
def api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAYVLLM_API_KEYS", ",".join(KEYS.values()))


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


# -- the buckets ---------------------------------------------------------------------------------


def test_buckets_refuse_past_the_minute_allowance_and_refill_continuously() -> None:
    clock = Clock()
    buckets = TokenBuckets(clock)
    rates = Rates(requests_per_minute=3, tokens_per_minute=None)
    assert [buckets.take(Ask("k", rates, 1, 0)).wait_s for _ in range(3)] == [0, 0, 0]
    refused = buckets.take(Ask("k", rates, 1, 0))
    assert refused.exceeded == "requests" and refused.wait_s == pytest.approx(20)
    clock.now += 20
    assert buckets.take(Ask("k", rates, 1, 0)).wait_s == 0
    assert buckets.take(Ask("other", rates, 1, 0)).wait_s == 0  # keys do not share buckets


def test_tokens_over_a_whole_minute_are_never_granted() -> None:
    grant = TokenBuckets(Clock()).take(Ask("k", Rates(None, 100), 1, 101))
    assert math.isinf(grant.wait_s) and grant.exceeded == "tokens"


def test_credit_refunds_and_charges_extra() -> None:
    clock = Clock()
    buckets = TokenBuckets(clock)
    rates = Rates(None, 100)
    assert buckets.take(Ask("k", rates, 1, 100)).wait_s == 0
    buckets.credit("k", rates, 0, 60)  # used 40 of the 100 reserved
    assert buckets.take(Ask("k", rates, 1, 60)).wait_s == 0
    buckets.credit("k", rates, 0, -30)  # used 30 more than reserved: a debt
    assert buckets.take(Ask("k", rates, 1, 1)).wait_s == pytest.approx(31 * 60 / 100)


async def test_leases_serve_most_requests_without_asking_the_authority() -> None:
    calls = 0

    class Counting(LocalAuthority):
        async def take(self, *args: Any) -> Any:
            nonlocal calls
            calls += 1
            return await super().take(*args)

    limiter = RateLimiter(LimitsConfig(requests_per_minute=1000), Counting())
    for _ in range(100):
        await limiter.admit("k", 0)
    assert calls <= 100 // (1000 // 50) + 1


async def test_leases_never_grant_more_than_the_limit_across_limiters() -> None:
    shared = LocalAuthority(TokenBuckets(Clock()))
    limiters = [RateLimiter(LimitsConfig(requests_per_minute=100), shared) for _ in range(3)]
    granted = 0
    for i in range(300):
        try:
            await limiters[i % 3].admit("k", 0)
            granted += 1
        except Exception:
            pass
    assert granted == 100


def test_reservation_is_the_prompt_estimate_plus_every_completion_token() -> None:
    chat = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 10, "n": 2}
    )
    assert reserved_tokens(chat, 512) == 11 + 20
    unset = ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "x"}]})
    assert reserved_tokens(unset, 512) == 512  # no max_tokens: the rest of the context
    ids = CompletionRequest.model_validate({"prompt": [1, 2, 3], "max_tokens": 5})
    assert reserved_tokens(ids, 512) == 4 + 5


# -- over HTTP -----------------------------------------------------------------------------------


async def test_requests_per_minute_is_per_key_and_429_says_when_to_retry() -> None:
    async for c in app_client(limited_config(requests_per_minute=2)):
        body = {"prompt": "hi", "max_tokens": 1}
        codes = [
            (await c.post("/vllm", json=body, headers=auth("alice"))).status_code for _ in range(2)
        ]
        assert codes == [200, 200]
        r = await c.post("/vllm", json=body, headers=auth("alice"))
        assert r.status_code == 429 and int(r.headers["retry-after"]) == 30
        err = r.json()["error"]
        assert err["type"] == "rate_limit_error" and err["code"] == "rate_limit_exceeded"
        assert "2 requests per minute" in err["message"]
        assert (await c.post("/vllm", json=body, headers=auth("bob"))).status_code == 200


async def test_tokens_are_charged_as_used_not_as_reserved() -> None:
    # 100 tokens a minute; each request reserves ~2 + 40 but stops after a few tokens.
    async for c in app_client(limited_config(tokens_per_minute=100)):
        body = {"prompt": "hi", "max_tokens": 40, "stop": "quick"}
        used = 0
        for _ in range(5):
            r = await c.post("/v1/completions", json=body, headers=auth("alice"))
            assert r.status_code == 200, r.text
            used += r.json()["usage"]["total_tokens"]
        assert 30 < used < 100  # five requests fit: reserving 5 x 42 would have refused the third
        greedy = await c.post(
            "/v1/completions", json={"prompt": "hi", "max_tokens": 90}, headers=auth("alice")
        )
        assert (
            greedy.status_code == 429 and "tokens per minute" in greedy.json()["error"]["message"]
        )


async def test_streamed_usage_is_settled_when_the_stream_ends() -> None:
    async for c in app_client(limited_config(tokens_per_minute=100)):
        body = {"prompt": "hi", "max_tokens": 40, "stop": "quick", "stream": True}
        for _ in range(5):
            r = await c.post("/v1/completions", json=body, headers=auth("alice"))
            assert r.status_code == 200 and r.text.endswith("[DONE]\n\n")


async def test_refused_requests_cost_no_tokens() -> None:
    async for c in app_client(limited_config(tokens_per_minute=100)):
        bad = {"prompt": "hi", "max_tokens": 40, "response_format": {"type": "json_schema"}}
        for _ in range(5):  # 41 tokens reserved each, then a 400 from the model: refunded
            r = await c.post("/v1/completions", json=bad, headers=auth("alice"))
            assert r.status_code == 400 and r.json()["error"]["param"] == "response_format"
        r = await c.post("/vllm", json={"prompt": "hi", "max_tokens": 90}, headers=auth("alice"))
        assert r.status_code == 200


async def test_a_request_larger_than_the_minute_allowance_names_max_tokens() -> None:
    async for c in app_client(limited_config(tokens_per_minute=50)):
        r = await c.post("/vllm", json={"prompt": "hi", "max_tokens": 60}, headers=auth("alice"))
        assert r.status_code == 429 and r.json()["error"]["param"] == "max_tokens"
        assert "retry-after" not in r.headers  # waiting would not help


async def test_the_limit_holds_across_two_replicas_sharing_a_store() -> None:
    shared = LocalAuthority()
    cfg = limited_config(requests_per_minute=6)
    replicas = [app_client(cfg, shared), app_client(cfg, shared)]
    clients = [await anext(r) for r in replicas]
    codes = [
        (
            await clients[i % 2].post(
                "/vllm", json={"prompt": "hi", "max_tokens": 1}, headers=auth("alice")
            )
        ).status_code
        for i in range(12)
    ]
    assert codes.count(200) == 6 and codes.count(429) == 6
    for r in replicas:
        with pytest.raises(StopAsyncIteration):
            await anext(r)


async def test_without_a_shared_store_each_replica_counts_alone() -> None:
    cfg = limited_config(requests_per_minute=6)
    replicas = [app_client(cfg), app_client(cfg)]
    clients = [await anext(r) for r in replicas]
    codes = [
        (
            await clients[i % 2].post(
                "/vllm", json={"prompt": "hi", "max_tokens": 1}, headers=auth("alice")
            )
        ).status_code
        for i in range(12)
    ]
    assert codes.count(200) == 12  # why the shared store exists
    for r in replicas:
        with pytest.raises(StopAsyncIteration):
            await anext(r)


async def test_a_requests_only_limit_settles_without_calling_the_authority() -> None:
    credits = 0

    class Counting(LocalAuthority):
        def credit(self, *args: Any) -> None:
            nonlocal credits
            credits += 1
            super().credit(*args)

    limiter = RateLimiter(LimitsConfig(requests_per_minute=10), Counting())
    reservation = await limiter.admit("k", 30)
    assert reservation is not None
    limiter.settle(reservation, 12)
    assert credits == 0
