"""Bad input on all three generation routes: never a 500, always OpenAI's error body naming the
offending parameter. Odd but valid text (NUL, emoji, right-to-left) is served."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

CHAT, COMPLETIONS, LEGACY = "/v1/chat/completions", "/v1/completions", "/vllm"
ROUTES = [CHAT, COMPLETIONS, LEGACY]
OPENAI_ROUTES = [CHAT, COMPLETIONS]


def valid(route: str, text: str = "hi") -> dict[str, Any]:
    if route == CHAT:
        return {"messages": [{"role": "user", "content": text}], "max_tokens": 4}
    return {"prompt": text, "max_tokens": 4}


def prompt_param(route: str) -> str:
    return "messages" if route == CHAT else "prompt"


async def post_raw(client: httpx.AsyncClient, route: str, raw: bytes) -> httpx.Response:
    return await client.post(route, content=raw, headers={"content-type": "application/json"})


def assert_openai_error(r: httpx.Response, status: int, param: str | None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    assert err["param"] == param, err
    return err


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b'"a string"', b"[]", b"42", b"null", b'{"prompt": "x",}', b"[" * 5000],
)
async def test_a_body_that_is_not_a_json_object_is_400(
    client: httpx.AsyncClient, route: str, raw: bytes
) -> None:
    assert_openai_error(await post_raw(client, route, raw), 400, None)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", ["missing", "empty", "wrong type"])
async def test_missing_or_empty_prompt_names_it(
    client: httpx.AsyncClient, route: str, case: str
) -> None:
    body = valid(route)
    key = prompt_param(route)
    if case == "missing":
        del body[key]
    else:
        body[key] = [] if (case == "empty" and route == CHAT) else ("" if case == "empty" else 7)
    err = assert_openai_error(await client.post(route, json=body), 400, key)
    assert err["type"] == "invalid_request_error"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "patch, param",
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": 2.5}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 2.01}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": -0.5}, "top_p"),
        ({"top_p": 1.01}, "top_p"),
        ({"top_k": -2}, "top_k"),
        ({"top_k": 1.5}, "top_k"),
        ({"stop": ""}, "stop"),
        ({"stop": ["ok", ""]}, "stop"),
        ({"stop": ["s"] * 17}, "stop"),
        ({"stream": "yes"}, "stream"),
    ],
)
async def test_out_of_range_sampling_names_the_param(
    client: httpx.AsyncClient, route: str, patch: dict[str, Any], param: str
) -> None:
    assert_openai_error(await client.post(route, json={**valid(route), **patch}), 400, param)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_temperature_is_400(
    client: httpx.AsyncClient, route: str, literal: str
) -> None:
    raw = json.dumps(valid(route))[:-1] + f', "temperature": {literal}}}'
    assert_openai_error(await post_raw(client, route, raw.encode()), 400, "temperature")


@pytest.mark.parametrize("route", OPENAI_ROUTES)
@pytest.mark.parametrize("n", [0, 17, 1000])
async def test_n_out_of_range_is_400(client: httpx.AsyncClient, route: str, n: int) -> None:
    assert_openai_error(await client.post(route, json={**valid(route), "n": n}), 400, "n")


async def test_chat_max_completion_tokens_is_checked_like_max_tokens(
    client: httpx.AsyncClient,
) -> None:
    body = {**valid(CHAT), "max_completion_tokens": 0}
    assert_openai_error(await client.post(CHAT, json=body), 400, "max_completion_tokens")


@pytest.mark.parametrize("route", ROUTES)
async def test_max_tokens_beyond_the_context_is_400(client: httpx.AsyncClient, route: str) -> None:
    err = assert_openai_error(
        await client.post(route, json={**valid(route), "max_tokens": 5000}), 400, "max_tokens"
    )
    assert err["code"] == "context_length_exceeded"
    assert "2048" in err["message"] and "5000" in err["message"]


@pytest.mark.parametrize("route", ROUTES)
async def test_a_prompt_longer_than_the_context_names_both_numbers(
    client: httpx.AsyncClient, route: str
) -> None:
    r = await client.post(route, json=valid(route, "word " * 3000))
    err = assert_openai_error(r, 400, prompt_param(route))
    assert err["code"] == "context_length_exceeded"
    numbers = [int(n) for n in re.findall(r"\d+", err["message"])]
    assert 2048 in numbers and any(n >= 3000 for n in numbers), err["message"]


@pytest.mark.parametrize("route", OPENAI_ROUTES)
async def test_an_unknown_model_is_404(client: httpx.AsyncClient, route: str) -> None:
    err = assert_openai_error(
        await client.post(route, json={**valid(route), "model": "gpt-9"}), 404, "model"
    )
    assert err["code"] == "model_not_found"


async def test_the_legacy_route_ignores_model_as_the_blueprint_did(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post(LEGACY, json={**valid(LEGACY), "model": "gpt-9"})).status_code == 200


@pytest.mark.parametrize("route", ROUTES)
async def test_a_multi_megabyte_body_is_413(client: httpx.AsyncClient, route: str) -> None:
    r = await client.post(route, json=valid(route, "x" * (3 * 1024 * 1024)))
    assert assert_openai_error(r, 413, None)["code"] == "payload_too_large"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "text",
    [
        "nul \x00 in the middle",
        "emoji 🦙🚀 and a ZWJ family 👨\u200d👩\u200d👧",
        "مرحبا بالعالم \u202eright-to-left override\u202c",
        "שלום עולם",
        "\ufeffbyte order mark and combining e\u0301",
    ],
)
async def test_odd_but_valid_text_is_served(
    client: httpx.AsyncClient, route: str, text: str
) -> None:
    r = await client.post(route, json=valid(route, text))
    assert r.status_code == 200, r.text
    if route == LEGACY:
        assert r.json()["text"][0].startswith(text)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "raw",
    [
        b'{"prompt": "caf\xe9 latin-1", "messages": [{"role": "user", "content": "caf\xe9"}]}',
        b'{"prompt": "\xff\xfe", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        b'{"prompt": "\\ud800 lone surrogate", '
        b'"messages": [{"role": "user", "content": "\\udfff lone"}]}',
    ],
)
async def test_invalid_utf8_is_a_clean_400(
    client: httpx.AsyncClient, route: str, raw: bytes
) -> None:
    assert_openai_error(await post_raw(client, route, raw), 400, None)
