"""Prompts are user data: not logged by default; when logging them is on, cut to N characters."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rayvllm.config import ServeConfig
from rayvllm.engine.fake import FakeEngine
from rayvllm.server.app import create_app
from rayvllm.server.services import LocalService

MODEL = "smollm2-135m-instruct"
SECRET_PROMPT = "my card number is 4111 1111 1111 1111 and my password is hunter2"


async def serve(**logging_: Any) -> AsyncIterator[httpx.AsyncClient]:
    cfg = ServeConfig.model_validate(
        {"engine": "fake", "fake": {"ttft_ms": 0, "itl_ms": 0}, "logging": logging_}
    )
    engine = FakeEngine(MODEL, cfg.fake)
    await engine.start()
    app = create_app({MODEL: LocalService(engine, request_timeout_s=30)}, cfg)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await engine.shutdown()


async def send_everywhere(c: httpx.AsyncClient, prompt: str) -> None:
    await c.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": prompt}], "max_tokens": 2},
    )
    await c.post("/v1/completions", json={"prompt": prompt, "max_tokens": 2, "stream": True})
    await c.post("/vllm", json={"prompt": prompt, "max_tokens": 2})
    await c.post("/vllm", json={"prompt": prompt, "max_tokens": 2, "temperature": -1})  # a 400


async def test_prompts_are_not_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async for c in serve():
        await send_everywhere(c, SECRET_PROMPT)
    lines = [r.getMessage() for r in caplog.records if r.name == "rayvllm.requests"]
    assert len(lines) == 4 and "/v1/chat/completions" in lines[0] and "status=400" in lines[3]
    assert "hunter2" not in caplog.text and "4111" not in caplog.text
    assert not [
        r for r in caplog.records if r.name == "rayvllm.requests" and r.levelno >= logging.INFO
    ]


async def test_logged_prompts_are_cut_to_max_logged_chars(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="rayvllm.requests")
    async for c in serve(log_prompts=True, max_logged_chars=18):
        await send_everywhere(c, SECRET_PROMPT)
    lines = [r.getMessage() for r in caplog.records if r.name == "rayvllm.requests"]
    assert len(lines) == 4
    more = len(SECRET_PROMPT) - 18
    for line in lines[1:3]:
        assert f"prompt='my card number is ' (+{more} chars)" in line
    assert "status=400" in lines[3] and "prompt=" not in lines[3]  # invalid bodies: no prompt
    assert "prompt='user: my card numb' (+" in lines[0]  # chat: role-tagged turns
    assert "hunter2" not in caplog.text and "4111" not in caplog.text


async def test_a_logged_prompt_cannot_forge_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rayvllm.requests")
    async for c in serve(log_prompts=True, max_logged_chars=200):
        await c.post("/vllm", json={"prompt": "hi\nERROR fake line", "max_tokens": 1})
    (line,) = [r.getMessage() for r in caplog.records if r.name == "rayvllm.requests"]
    assert "\n" not in line and "hi\\nERROR fake line" in line
