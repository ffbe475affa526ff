"""Every response names the replica that served it, in the x-rayvllm-replica header."""

from __future__ import annotations

import os
import socket

import httpx

from rayvllm.config import FakeEngineConfig, ServeConfig
from rayvllm.engine.fake import FakeEngine
from rayvllm.server.app import REPLICA_HEADER, create_app
from rayvllm.server.services import LocalService

MODEL = "smollm2-135m-instruct"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


async def test_streams_errors_and_probes_name_the_replica(fake_engine: FakeEngine) -> None:
    app = create_app(
        {MODEL: LocalService(fake_engine, request_timeout_s=30)},
        ServeConfig(engine="fake", fake=FakeEngineConfig(ttft_ms=1, itl_ms=1)),
        replica_id="abc123",
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://rayvllm"
    ) as client:
        replies = [
            await client.post("/v1/chat/completions", json={**CHAT, "stream": True}),
            await client.post("/v1/chat/completions", json={**CHAT, "model": "nope"}),
            await client.get("/health"),
        ]
    assert [r.status_code for r in replies] == [200, 404, 200]
    assert replies[0].text.rstrip().endswith("data: [DONE]")  # the stream is left whole
    assert all(r.headers[REPLICA_HEADER] == "abc123" for r in replies)


async def test_standalone_server_names_its_host_and_pid(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/models")
    assert r.headers[REPLICA_HEADER] == f"{socket.gethostname()}-{os.getpid()}"
