"""The blueprint's POST /vllm contract, kept exactly, with what it got wrong fixed."""

from __future__ import annotations

import json

import httpx
import pytest


async def test_non_streamed_reply_is_prompt_plus_completion_in_a_list(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/vllm", json={"prompt": "Tell me", "max_tokens": 3})
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["text"]
    assert isinstance(body["text"], list) and len(body["text"]) == 1
    assert body["text"][0].startswith("Tell me") and len(body["text"][0]) > len("Tell me")
    assert r.headers["x-rayvllm-completion-tokens"] == "3"


async def test_streamed_reply_is_ndjson_deltas_that_add_up(client: httpx.AsyncClient) -> None:
    r = await client.post("/vllm", json={"prompt": "Tell me", "max_tokens": 4, "stream": True})
    assert r.status_code == 200
    lines = r.text.splitlines()
    assert len(lines) == 4
    deltas = [json.loads(line) for line in lines]
    assert all(list(d) == ["text"] and isinstance(d["text"], str) for d in deltas)
    whole = await client.post("/vllm", json={"prompt": "Tell me", "max_tokens": 4})
    assert "Tell me" + "".join(d["text"] for d in deltas) == whole.json()["text"][0]


async def test_blueprint_payload_is_accepted(client: httpx.AsyncClient) -> None:
    payload = {
        "prompt": "<s>[INST] hi [/INST]",
        "stream": False,
        "max_tokens": 5,
        "temperature": 0.01,
        "top_p": 1,
        "top_k": 20,
        "stop": None,
    }
    r = await client.post("/vllm", json=payload)
    assert r.status_code == 200 and r.json()["text"][0].startswith(payload["prompt"])


@pytest.mark.parametrize(
    "body, param",
    [
        (b"{not json", None),
        (b'"a string"', None),
        (b"{}", "prompt"),
        (json.dumps({"prompt": ""}).encode(), "prompt"),
        (json.dumps({"prompt": "x", "max_tokens": 0}).encode(), "max_tokens"),
        (json.dumps({"prompt": "x", "max_tokens": 2.5}).encode(), "max_tokens"),
        (json.dumps({"prompt": "x", "temperature": -1}).encode(), "temperature"),
        (json.dumps({"prompt": "x", "top_p": 0}).encode(), "top_p"),
        (json.dumps({"prompt": "x", "top_k": -2}).encode(), "top_k"),
        (json.dumps({"prompt": "x", "stop": [""]}).encode(), "stop"),
        (b'{"prompt": "x", "temperature": NaN}', "temperature"),
    ],
)
async def test_bad_input_is_a_400_with_openais_error_body(
    client: httpx.AsyncClient, body: bytes, param: str | None
) -> None:
    r = await client.post("/vllm", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == param and err["message"]


async def test_prompt_that_does_not_fit_is_rejected_naming_both_numbers(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/vllm", json={"prompt": "word " * 3000, "max_tokens": 4})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "context_length_exceeded"
    assert "2048" in err["message"] and "3001" in err["message"]


async def test_max_tokens_beyond_the_context_is_rejected_not_clamped(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/vllm", json={"prompt": "hi", "max_tokens": 5000})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "max_tokens"
    assert "5000" in r.json()["error"]["message"]
