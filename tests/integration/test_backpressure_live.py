"""Back-pressure and timeouts over real HTTP (uvicorn, fake engine): refusals arrive at once while
admitted requests stream on, and a stream past the timeout ends with an error event, then [DONE]."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from live import live_fake_server

from rayvllm.config import ServeConfig

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def bounded() -> Iterator[str]:
    cfg = ServeConfig.model_validate(
        {
            "engine": "fake",
            "fake": {"ttft_ms": 1, "itl_ms": 20},
            "models": [{"deployment": {"max_ongoing_requests": 1, "max_queued_requests": 1}}],
        }
    )
    with live_fake_server(cfg) as (url, _):
        yield url


@pytest.fixture(scope="module")
def short_timeout() -> Iterator[str]:
    cfg = ServeConfig.model_validate(
        {
            "engine": "fake",
            "fake": {"ttft_ms": 5, "itl_ms": 5},
            "http": {"request_timeout_s": 0.5},
        }
    )
    with live_fake_server(cfg) as (url, _):
        yield url


async def test_ten_over_the_bound_are_refused_at_once(bounded: str) -> None:
    async with httpx.AsyncClient(base_url=bounded, timeout=10) as c:

        async def post(stream: bool) -> tuple[int, float, str]:
            start = time.monotonic()
            r = await c.post(
                "/v1/chat/completions", json={**CHAT, "max_tokens": 25, "stream": stream}
            )
            return r.status_code, time.monotonic() - start, r.text

        admitted = [asyncio.ensure_future(post(stream=True)) for _ in range(2)]
        await asyncio.sleep(0.1)
        refused = await asyncio.gather(*(post(stream=False) for _ in range(10)))
        print(f"10 refused over HTTP in {sorted(round(s, 3) for _, s, _ in refused)} s")
        for status, seconds, text in refused:
            # The bound. Measured ~20 ms over real HTTP (server and client share this
            # process); each admitted request runs ~500 ms, so none of these waited for a slot.
            assert status == 503 and seconds < 0.1, (status, seconds)
            assert json.loads(text)["error"]["code"] == "overloaded"
        for status, _, text in await asyncio.gather(*admitted):
            assert status == 200 and text.endswith("data: [DONE]\n\n")
            assert '"finish_reason":"length"' in text.replace(" ", "")


def test_a_stream_past_the_timeout_ends_with_an_error_event_then_done(short_timeout: str) -> None:
    for route, body in (("/v1/chat/completions", CHAT), ("/v1/completions", {"prompt": "hi"})):
        start = time.monotonic()
        r = httpx.post(
            f"{short_timeout}{route}", json={**body, "max_tokens": 1000, "stream": True}, timeout=10
        )
        assert time.monotonic() - start < 2
        events = [e[6:] for e in r.text.split("\n\n") if e.startswith("data: ")]
        assert r.status_code == 200 and events[-1] == "[DONE]" and len(events) > 3
        assert json.loads(events[-2])["error"]["code"] == "request_timeout"


def test_a_legacy_stream_past_the_timeout_ends_with_an_error_line(short_timeout: str) -> None:
    r = httpx.post(
        f"{short_timeout}/vllm",
        json={"prompt": "hi", "max_tokens": 1000, "stream": True},
        timeout=10,
    )
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert "text" in lines[0] and lines[-1]["error"]["code"] == "request_timeout"
