"""The OpenAI-compatible routes with the fake engine: shapes, streaming, usage, errors."""

from __future__ import annotations

import json

import httpx
import pytest

from rayvllm.engine.fake import FakeEngine

CHAT = {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}]}


def sse_events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n\n") if line.startswith("data: ")]


async def test_chat_completion_has_openais_shape_and_real_usage(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 4})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 4
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 4


async def test_chat_stream_ends_with_done_and_reports_usage(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/chat/completions",
        json={**CHAT, "max_tokens": 3, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert len(text.split()) == 3


async def test_n_choices_are_indexed_and_counted(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 2, "n": 3})
    body = r.json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert body["usage"]["completion_tokens"] == 6


async def test_stop_string_ends_the_choice(client: httpx.AsyncClient) -> None:
    first = (await client.post("/v1/completions", json={"prompt": "a", "max_tokens": 6})).json()
    words = first["choices"][0]["text"].split()
    r = await client.post(
        "/v1/completions", json={"prompt": "a", "max_tokens": 6, "stop": [words[2]]}
    )
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["text"].split() == words[:2]


async def test_completion_logprobs_and_echo(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/completions", json={"prompt": "hello", "max_tokens": 2, "logprobs": 2, "echo": True}
    )
    choice = r.json()["choices"][0]
    assert choice["text"].startswith("hello")
    assert len(choice["logprobs"]["tokens"]) == 2
    assert all(len(top) == 2 for top in choice["logprobs"]["top_logprobs"])


async def test_chat_logprobs_in_chat_form(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/chat/completions", json={**CHAT, "max_tokens": 2, "logprobs": True, "top_logprobs": 3}
    )
    content = r.json()["choices"][0]["logprobs"]["content"]
    assert len(content) == 2 and len(content[0]["top_logprobs"]) == 3


async def test_unknown_model_is_404_listing_served_models(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json={**CHAT, "model": "gpt-9"})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["param"] == "model" and "smollm2-135m-instruct" in err["message"]


@pytest.mark.parametrize(
    "patch, param",
    [
        ({"messages": []}, "messages"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"n": 1000}, "n"),
        ({"stop": ""}, "stop"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
    ],
)
async def test_chat_bad_input_names_the_param(
    client: httpx.AsyncClient, patch: dict[str, object], param: str
) -> None:
    r = await client.post("/v1/chat/completions", json={**CHAT, **patch})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


async def test_models_health_ready_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/models")).json()["data"][0]["id"] == "smollm2-135m-instruct"
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/ready")).json()["ready"] is True
    await client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 2})
    metrics = (await client.get("/metrics")).text
    assert (
        'rayvllm_requests_total{model="smollm2-135m-instruct",route="/v1/chat/completions"'
        in metrics
    )
    assert "rayvllm_time_to_first_token_seconds_bucket" in metrics
    assert "rayvllm_queue_seconds_bucket" in metrics


async def test_ready_is_503_until_the_engine_has_started() -> None:
    from rayvllm.config import FakeEngineConfig, ServeConfig
    from rayvllm.server.app import create_app
    from rayvllm.server.services import LocalService

    cfg = ServeConfig(engine="fake", fake=FakeEngineConfig(ttft_ms=1, itl_ms=1))
    engine = FakeEngine(cfg.models[0].name, cfg.fake)
    app = create_app({engine.model_name: LocalService(engine, request_timeout_s=5)}, cfg)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/health")).status_code == 200
        assert (await c.get("/ready")).status_code == 503
        r = await c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 2})
        assert r.status_code == 503 and "Retry-After" in r.headers
        await engine.start()
        assert (await c.get("/ready")).status_code == 200


async def test_engine_death_mid_stream_sends_an_error_event_then_done(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    import asyncio

    async def kill_soon() -> None:
        await asyncio.sleep(0.02)
        fake_engine.kill()

    killer = asyncio.ensure_future(kill_soon())
    r = await client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 500, "stream": True})
    await killer
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "engine_unavailable"
    r = await client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 2})
    assert r.status_code == 503 and (await client.get("/ready")).status_code == 503


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/completions", content=b"x" * (3 * 1024 * 1024))
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
