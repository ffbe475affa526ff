"""`rayvllm client` against the real app with the fake engine, in-process over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from rayvllm.client.report import format_results_txt
from rayvllm.client.runner import ClientSettings, Endpoint, load_prompts, run_client
from rayvllm.config import EngineKind, FakeEngineConfig, ServeConfig

server_app = pytest.importorskip("rayvllm.server.app")

MAX_TOKENS = 8


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    from rayvllm.engine.factory import make_engine
    from rayvllm.server.services import LocalService

    config = ServeConfig(engine=EngineKind.fake, fake=FakeEngineConfig(ttft_ms=0, itl_ms=0))
    engines = [make_engine(config, model) for model in config.models]
    services = {
        engine.model_name: LocalService(engine, request_timeout_s=config.http.request_timeout_s)
        for engine in engines
    }
    app = server_app.create_app(services, config)
    # Started here rather than in a lifespan: ASGITransport sends no lifespan events.
    for engine in engines:
        await engine.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            yield http
    finally:
        for engine in engines:
            await engine.shutdown()


@pytest.mark.parametrize("endpoint", [Endpoint.chat, Endpoint.vllm])
async def test_every_packaged_prompt_gets_a_reply_and_the_servers_token_count(
    client: httpx.AsyncClient, endpoint: Endpoint, tmp_path: Path
) -> None:
    settings = ClientSettings(endpoint=endpoint, max_tokens=MAX_TOKENS, concurrency=4)
    prompts = load_prompts()

    run = await run_client(settings, prompts, client=client)

    assert run.warmup_error is None
    assert run.failures == []
    assert [r.prompt for r in run.results] == prompts
    for result in run.results:
        assert result.completion_tokens is not None
        assert 0 < result.completion_tokens <= MAX_TOKENS
        assert result.response is not None
        assert "[INST]" not in result.response
    text = format_results_txt(run)
    assert text.count("=" * 80 + "\n") == len(prompts)
    assert "Token Length: n/a" not in text
    assert f"Total Prompts: {len(prompts)}\n" in text


async def test_chat_defaults_to_the_served_model(client: httpx.AsyncClient) -> None:
    run = await run_client(ClientSettings(max_tokens=2), ["Hello?"], client=client)

    assert run.model == ServeConfig().models[0].name


async def test_an_unknown_model_fails_each_prompt_with_the_servers_message(
    client: httpx.AsyncClient,
) -> None:
    settings = ClientSettings(model="no-such-model", max_tokens=2)

    run = await run_client(settings, ["Hello?", "Bye?"], client=client)

    assert len(run.failures) == 2
    assert all(r.status_code == 404 for r in run.failures)
    assert all("no-such-model" in (r.error or "") for r in run.failures)
