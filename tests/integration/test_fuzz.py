"""Property-based fuzzing of the three generation routes (fake engine, in-process): whatever the
body, the answer is never a 5xx, and every error is OpenAI's error body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from rayvllm.config import ServeConfig
from rayvllm.engine.fake import FakeEngine
from rayvllm.server.app import create_app, engine_lifespan
from rayvllm.server.services import LocalService

ROUTES = ["/v1/chat/completions", "/v1/completions", "/vllm"]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def either(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly values near the valid range (often valid), sometimes any JSON at all."""
    return st.one_of(*[plausible] * 6, json_values)


words = st.text(st.characters(codec="utf-8"), max_size=60)
parts = st.lists(
    st.fixed_dictionaries({"type": either(st.just("text")), "text": either(words)}), max_size=3
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": either(st.sampled_from(["system", "user", "assistant", "tool", "wizard"]))},
        optional={"content": either(words | parts), "name": either(words)},
    ),
    max_size=4,
)
token_ids = st.lists(st.integers(-5, 60_000), max_size=20)
stops = st.text(max_size=6) | st.lists(st.text(max_size=6), max_size=18)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "model": either(st.sampled_from(["m", "other", ""])),
    "prompt": either(words | token_ids | st.lists(words, max_size=2)),
    "messages": either(messages),
    "max_tokens": either(st.integers(-3, 80)),
    "max_completion_tokens": either(st.integers(-3, 80)),
    "temperature": either(st.floats(-1, 3) | st.just(float("nan"))),
    "top_p": either(st.floats(-0.5, 1.5)),
    "top_k": either(st.integers(-3, 100)),
    "n": either(st.integers(-1, 20)),
    "stop": either(stops),
    "stream": either(st.booleans()),
    "stream_options": either(st.fixed_dictionaries({"include_usage": either(st.booleans())})),
    "seed": either(st.integers(-(2**64), 2**64)),
    "logprobs": either(st.booleans() | st.integers(-1, 25)),
    "top_logprobs": either(st.integers(-1, 25)),
    "echo": either(st.booleans()),
    "presence_penalty": either(st.floats(-3, 3)),
    "frequency_penalty": either(st.floats(-3, 3)),
    "ignore_eos": either(st.booleans()),
    "min_tokens": either(st.integers(-2, 100)),
    "response_format": either(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "json_object", "json_schema", "xml"])},
            optional={
                "json_schema": either(
                    st.fixed_dictionaries({}, optional={"name": words, "schema": json_values})
                )
            },
        )
    ),
}
bodies = st.fixed_dictionaries({}, optional=FIELDS)
BASES = {
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "hi there"}]},
    "/v1/completions": {"prompt": "once upon a time"},
    "/vllm": {"prompt": "once upon a time"},
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    cfg = ServeConfig.model_validate(
        {
            "engine": "fake",
            "fake": {"ttft_ms": 0, "itl_ms": 0, "max_model_len": 96},
            "models": [{"name": "m"}],
        }
    )
    engine = FakeEngine("m", cfg.fake)
    app = create_app(
        {"m": LocalService(engine, request_timeout_s=10)}, cfg, lifespan=engine_lifespan([engine])
    )
    with TestClient(app) as c:
        yield c


def check(response: Any) -> None:
    event(f"status {response.status_code}")  # `pytest --hypothesis-show-statistics` shows the mix
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        err = response.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["message"]


def post(client: TestClient, route: str, body: Any) -> Any:
    raw = json.dumps(body).encode()
    return client.post(route, content=raw, headers={"content-type": "application/json"})


@FUZZ
@given(route=st.sampled_from(ROUTES), data=st.data())
def test_a_valid_request_with_a_few_fields_changed_never_gets_a_5xx(
    client: TestClient, route: str, data: st.DataObject
) -> None:
    changed = data.draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=4, unique=True))
    body = {**BASES[route], **{k: data.draw(FIELDS[k], label=k) for k in changed}}
    check(post(client, route, body))


@FUZZ
@given(route=st.sampled_from(ROUTES), body=bodies)
def test_structured_bodies_never_get_a_5xx(
    client: TestClient, route: str, body: dict[str, Any]
) -> None:
    check(post(client, route, body))


@settings(max_examples=100, deadline=None)
@given(
    route=st.sampled_from(ROUTES),
    raw=json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=120),
)
def test_any_json_or_bytes_never_get_a_5xx(client: TestClient, route: str, raw: bytes) -> None:
    check(client.post(route, content=raw, headers={"content-type": "application/json"}))
