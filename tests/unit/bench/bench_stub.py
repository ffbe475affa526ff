"""A stub OpenAI-compatible server for bench tests: streams a set number of tokens, answers
queued error statuses, and logs what it received."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MODEL = "stub-model"


@dataclass
class StubServer:
    """Streams `tokens` chunks per request, `token_delay_s` apart; answers the statuses queued in
    `fail_with` first. Logs each POST body, and the most requests it saw in flight at once."""

    tokens: int = 4
    token_delay_s: float = 0.0
    fail_with: list[int] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    max_in_flight: int = 0
    url: str = ""
    _in_flight: int = 0

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": MODEL}]}, headers={"server": "stub/1.0"})

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "9.9.9"})

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        body["_path"] = request.path
        body["_received"] = time.perf_counter()
        self.bodies.append(body)
        if self.fail_with:
            status = self.fail_with.pop(0)
            return web.json_response({"error": {"message": "no"}}, status=status)
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return await self._stream(request, body)
        finally:
            self._in_flight -= 1

    async def _stream(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        ndjson = request.path == "/vllm"
        response = web.StreamResponse(
            headers={"content-type": "application/x-ndjson" if ndjson else "text/event-stream"}
        )
        await response.prepare(request)
        chat = request.path.endswith("chat/completions")
        if chat:  # like vLLM, a role-only delta comes first
            await response.write(_sse({"choices": [{"delta": {"role": "assistant"}}]}))
        for _ in range(self.tokens):
            await asyncio.sleep(self.token_delay_s)
            if ndjson:
                await response.write(json.dumps({"text": " tok"}).encode() + b"\n")
            elif chat:
                await response.write(_sse({"choices": [{"delta": {"content": " tok"}}]}))
            else:
                await response.write(_sse({"choices": [{"text": " tok"}], "usage": None}))
        if not ndjson:
            usage = {"prompt_tokens": 7, "completion_tokens": self.tokens}
            await response.write(_sse({"choices": [], "usage": usage}) + b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/version", self._version)
        for path in ("/v1/completions", "/v1/chat/completions", "/vllm"):
            app.router.add_post(path, self._generate)
        return app


def _sse(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event).encode() + b"\n\n"
