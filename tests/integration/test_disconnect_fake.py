"""A client that goes away aborts its engine request, streamed or not (real HTTP, fake engine)."""

from __future__ import annotations

import time

import httpx
import pytest
from live import live_fake_server

from rayvllm.config import FakeEngineConfig, HTTPConfig, ServeConfig

CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2000}


@pytest.fixture(scope="module")
def server() -> object:
    cfg = ServeConfig(
        engine="fake",
        fake=FakeEngineConfig(ttft_ms=5, itl_ms=5),
        http=HTTPConfig(request_timeout_s=1.5),
    )
    with live_fake_server(cfg) as live:
        yield live


def wait_for(predicate: object, timeout: float = 2.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_disconnect_mid_stream_aborts_within_a_second(server: tuple[str, object]) -> None:
    url, engine = server
    before = len(engine.aborted)  # type: ignore[attr-defined]
    with httpx.stream("POST", f"{url}/v1/chat/completions", json={**CHAT, "stream": True}) as r:
        for _ in zip(range(3), r.iter_lines(), strict=False):
            pass
    waited = wait_for(lambda: len(engine.aborted) == before + 1)  # type: ignore[attr-defined]
    assert waited < 1.0
    assert engine.num_unfinished_requests() == 0  # type: ignore[attr-defined]


def test_disconnect_before_a_non_streamed_reply_aborts(server: tuple[str, object]) -> None:
    url, engine = server
    before = len(engine.aborted)  # type: ignore[attr-defined]
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/vllm", json={"prompt": "hi", "max_tokens": 1000}, timeout=0.3)
    waited = wait_for(lambda: len(engine.aborted) == before + 1)  # type: ignore[attr-defined]
    assert waited < 1.0


def test_request_past_the_timeout_is_408_and_aborted(server: tuple[str, object]) -> None:
    url, engine = server
    before = len(engine.aborted)  # type: ignore[attr-defined]
    r = httpx.post(f"{url}/vllm", json={"prompt": "hi", "max_tokens": 1500}, timeout=10)
    assert r.status_code == 408
    assert r.json()["error"]["code"] == "request_timeout"
    assert len(engine.aborted) == before + 1  # type: ignore[attr-defined]


def test_other_requests_are_unaffected(server: tuple[str, object]) -> None:
    url, _ = server
    r = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "max_tokens": 5}, timeout=10)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 5
