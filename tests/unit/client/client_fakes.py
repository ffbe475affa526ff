"""A stand-in OpenAI-compatible server on httpx.MockTransport, recording what the client sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from rayvllm.client.runner import COMPLETION_TOKENS_HEADER

Failure = Callable[[str, dict[str, Any]], httpx.Response | None]


class FakeServer:
    """Answers /v1/models, /v1/chat/completions and /vllm; `fail` may answer instead."""

    def __init__(
        self,
        *,
        models: tuple[str, ...] = ("smollm2-135m-instruct",),
        delay_s: float = 0.0,
        completion_tokens: int | None = 42,
        fail: Failure | None = None,
    ) -> None:
        self.models = models
        self.delay_s = delay_s
        self.completion_tokens = completion_tokens
        self.fail = fail
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.headers: list[httpx.Headers] = []
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport)

    @property
    def prompt_posts(self) -> list[dict[str, Any]]:
        """Bodies of the POSTs after the warm-up."""
        return [body for _, body in self.posts[1:]]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers)
        if request.url.path == "/v1/models":
            data = [{"id": m, "object": "model", "owned_by": "rayvllm"} for m in self.models]
            return httpx.Response(200, json={"object": "list", "data": data})
        body = json.loads(request.content)
        self.posts.append((request.url.path, body))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        if self.fail is not None and (failed := self.fail(request.url.path, body)) is not None:
            return failed
        if request.url.path == "/v1/chat/completions":
            question = body["messages"][-1]["content"]
            usage = (
                None
                if self.completion_tokens is None
                else {"prompt_tokens": 9, "completion_tokens": self.completion_tokens}
            )
            return httpx.Response(
                200,
                json={
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": f" Answer to {question} "},
                            "finish_reason": "length",
                        }
                    ],
                    "usage": usage,
                },
            )
        if request.url.path == "/vllm":
            headers = (
                {}
                if self.completion_tokens is None
                else {COMPLETION_TOKENS_HEADER: str(self.completion_tokens)}
            )
            # The blueprint's server: the prompt echoed before the completion, no content type.
            content = json.dumps({"text": [body["prompt"] + "  A completion."]}).encode()
            return httpx.Response(200, content=content, headers=headers)
        return httpx.Response(404, json={"detail": "Not Found"})


def openai_error(status: int, message: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "error": {"message": message, "type": "BadRequestError", "param": None, "code": status}
        },
    )
