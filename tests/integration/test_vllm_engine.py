"""The real vLLM CPU engine with the embedded model, in-process: chat, streaming through the
official openai client, /vllm, structured output, logprobs, and context-length rejection."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

pytest.importorskip("vllm")
openai = pytest.importorskip("openai")

from rayvllm.config import ServeConfig  # noqa: E402
from rayvllm.engine.factory import make_engine  # noqa: E402
from rayvllm.server.app import create_app  # noqa: E402
from rayvllm.server.services import LocalService  # noqa: E402

pytestmark = pytest.mark.vllm
MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[object]:
    cfg = ServeConfig()
    eng = make_engine(cfg, cfg.models[0])
    await eng.start()
    yield eng
    await eng.shutdown()


@pytest.fixture(scope="module")
async def http(engine: object) -> AsyncIterator[httpx.AsyncClient]:
    cfg = ServeConfig()
    app = create_app({MODEL: LocalService(engine, request_timeout_s=120)}, cfg)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rayvllm", timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def oai(http: httpx.AsyncClient) -> object:
    return openai.AsyncOpenAI(base_url="http://rayvllm/v1", api_key="unused", http_client=http)


async def test_openai_client_chat_answers_with_real_usage(oai: object) -> None:
    resp = await oai.chat.completions.create(  # type: ignore[attr-defined]
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=16,
        temperature=0,
    )
    assert resp.choices[0].message.content.strip()
    assert resp.usage.completion_tokens == 16 or resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens > 5


async def test_openai_client_streams_a_chat_answer(oai: object) -> None:
    stream = await oai.chat.completions.create(  # type: ignore[attr-defined]
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
        temperature=0,
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text.strip()
    assert usage is not None and 1 <= usage.completion_tokens <= 12


async def test_greedy_chat_is_reproducible_and_matches_the_stream(oai: object) -> None:
    kwargs = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Count to five."}],
        "max_tokens": 10,
        "temperature": 0,
    }
    a = await oai.chat.completions.create(**kwargs)  # type: ignore[attr-defined]
    stream = await oai.chat.completions.create(stream=True, **kwargs)  # type: ignore[attr-defined]
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert a.choices[0].message.content == streamed


async def test_json_schema_response_format_gives_valid_json(oai: object) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    resp = await oai.chat.completions.create(  # type: ignore[attr-defined]
        model=MODEL,
        messages=[{"role": "user", "content": "Name a city in France as JSON."}],
        max_tokens=40,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    data = json.loads(resp.choices[0].message.content)
    assert set(data) == {"city"} and isinstance(data["city"], str)


async def test_legacy_vllm_endpoint_with_the_blueprint_payload(http: httpx.AsyncClient) -> None:
    prompt = "<s>[INST] What is machine learning? [/INST]"
    r = await http.post(
        "/vllm",
        json={
            "prompt": prompt,
            "stream": False,
            "max_tokens": 20,
            "temperature": 0.01,
            "top_p": 1,
            "top_k": 20,
            "stop": None,
        },
    )
    assert r.status_code == 200
    text = r.json()["text"][0]
    assert text.startswith(prompt) and len(text) > len(prompt) + 10
    assert int(r.headers["x-rayvllm-completion-tokens"]) > 0


async def test_legacy_vllm_stream_is_ndjson(http: httpx.AsyncClient) -> None:
    r = await http.post("/vllm", json={"prompt": "Hello", "max_tokens": 8, "stream": True})
    deltas = [json.loads(line)["text"] for line in r.text.splitlines()]
    assert len(deltas) >= 2 and "".join(deltas).strip()


async def test_completions_with_logprobs(http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/v1/completions",
        json={"model": MODEL, "prompt": "The sky is", "max_tokens": 3, "logprobs": 2},
    )
    lp = r.json()["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == 3 and all(x <= 0 for x in lp["token_logprobs"])


async def test_prompt_longer_than_the_context_is_400_naming_both_numbers(
    http: httpx.AsyncClient,
) -> None:
    r = await http.post(
        "/v1/completions", json={"model": MODEL, "prompt": "hello " * 3000, "max_tokens": 4}
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "context_length_exceeded" and "2048" in err["message"]
    assert "3000" in err["message"] or "3001" in err["message"]


async def test_engine_metrics_are_exported(http: httpx.AsyncClient) -> None:
    text = (await http.get("/metrics")).text
    assert "vllm:num_requests_running" in text
    assert "rayvllm_prefill_seconds_count" in text
