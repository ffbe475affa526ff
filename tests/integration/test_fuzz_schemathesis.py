"""Schema-driven fuzzing: schemathesis generates requests from the app's own /openapi.json (valid
and invalid bodies for every route) against a real server on the fake engine: never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from live import live_fake_server

from rayvllm.config import ServeConfig
from rayvllm.engine.fake import FakeEngine
from rayvllm.server.app import create_app
from rayvllm.server.services import LocalService

schemathesis = pytest.importorskip("schemathesis")

CONFIG = ServeConfig.model_validate(
    {
        "engine": "fake",
        "fake": {"ttft_ms": 0, "itl_ms": 0, "max_model_len": 96},
    }
)
_engine = FakeEngine(CONFIG.models[0].name, CONFIG.fake)
schema = schemathesis.openapi.from_dict(
    create_app({_engine.model_name: LocalService(_engine, request_timeout_s=10)}, CONFIG).openapi()
)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with live_fake_server(CONFIG) as (base, _):
        yield base


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_no_generated_request_gets_a_5xx(case: Any, url: str) -> None:
    response = case.call(base_url=url, timeout=10)
    assert response.status_code < 500, (case.as_curl_command(), response.text)
    if response.status_code >= 400 and case.path != "/ready":
        err = response.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
