"""Shared fixtures: the real app with the fake engine, in-process over httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from rayvllm.config import FakeEngineConfig, ServeConfig
from rayvllm.engine.fake import FakeEngine
from rayvllm.server.app import create_app
from rayvllm.server.services import LocalService

MODEL = "smollm2-135m-instruct"


def fake_config(**fake: float) -> ServeConfig:
    return ServeConfig(engine="fake", fake=FakeEngineConfig(ttft_ms=1, itl_ms=1, **fake))


@pytest.fixture
async def fake_engine() -> AsyncIterator[FakeEngine]:
    cfg = fake_config()
    engine = FakeEngine(MODEL, cfg.fake)
    await engine.start()
    yield engine
    await engine.shutdown()


@pytest.fixture
async def client(fake_engine: FakeEngine) -> AsyncIterator[httpx.AsyncClient]:
    cfg = fake_config()
    app = create_app({MODEL: LocalService(fake_engine, request_timeout_s=30)}, cfg)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rayvllm") as c:
        yield c
