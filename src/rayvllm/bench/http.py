"""One streamed request and its timings: builds the body for each endpoint, parses SSE (OpenAI)
or NDJSON (legacy /vllm) as bytes arrive, and records when each token-bearing chunk landed."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp

from rayvllm.bench.workload import BenchRequest


class Endpoint(StrEnum):
    completions = "completions"
    chat = "chat"
    vllm = "vllm"


# json.loads on bytes sniffs the encoding and strips whitespace on every call; raw_decode on an
# already stripped str goes straight to the C scanner.
_parse_json = json.JSONDecoder().raw_decode

ENDPOINT_PATHS = {
    Endpoint.completions: "/v1/completions",
    Endpoint.chat: "/v1/chat/completions",
    Endpoint.vllm: "/vllm",
}


# A dataclass, not a pydantic model: thousands are made per level on the hot path, and
# validation would cost more than the parsing it records.
@dataclass(slots=True)
class RequestResult:
    """What one request did. Times are seconds; `start` is time.perf_counter() at send."""

    start: float
    ok: bool = False
    error: str | None = None  # an HTTP status ("503"), or "connect", "timeout", "stream", ...
    detail: str = ""
    ttft: float = 0.0
    e2e: float = 0.0
    itl: list[float] = field(default_factory=list)
    output_tokens: int = 0
    prompt_tokens: int = 0
    text: list[str] = field(default_factory=list)  # kept for /vllm only, which reports no usage


def build_payload(
    endpoint: Endpoint, model: str | None, request: BenchRequest, ignore_eos: bool
) -> dict[str, Any]:
    """The JSON body, like `vllm bench serve` sends: streamed, max_tokens, usage in the stream."""
    payload: dict[str, Any] = {"max_tokens": request.output_len, "stream": True}
    if endpoint is Endpoint.chat:
        payload["messages"] = [{"role": "user", "content": request.prompt}]
    else:
        payload["prompt"] = request.prompt
    if endpoint is not Endpoint.vllm:
        payload["model"] = model
        payload["stream_options"] = {"include_usage": True}
    if ignore_eos:
        # A vLLM extension: generate exactly max_tokens, so every server does the same work.
        # (min_tokens would be redundant, and vLLM runs an extra logits processor for it.)
        payload["ignore_eos"] = True
    return payload


class StreamTimer:
    """Feeds on response bytes; tracks token-chunk arrival times, usage and stream errors.

    A token chunk is an event whose text (completions), delta content (chat) or "text" (/vllm)
    is non-empty: a role-only first delta or an empty keep-alive is not a token arriving.
    """

    __slots__ = ("_buffer", "_chat", "_last", "_ndjson", "result")

    def __init__(self, result: RequestResult, endpoint: Endpoint) -> None:
        self.result = result
        self._chat = endpoint is Endpoint.chat
        self._ndjson = endpoint is Endpoint.vllm
        self._buffer = b""
        self._last = 0.0

    def feed(self, data: bytes, now: float) -> None:
        # All lines in one read arrived together, so they share its timestamp. This loop runs
        # for every chunk of every stream: it is what caps the client, so it stays lean.
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            if self._ndjson:
                payload = line.strip()
                if not payload:
                    continue
            else:
                # SSE: only `data:` fields matter; comments, event: and id: lines are skipped.
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if not payload or payload == b"[DONE]":
                    continue
            self._event(payload, now)

    def close(self, now: float) -> None:
        if self._buffer.strip():
            self.feed(b"\n", now)
        self._buffer = b""

    def _event(self, payload: bytes, now: float) -> None:
        try:
            event, _ = _parse_json(payload.decode())
        except ValueError:
            self._fail("stream", f"unparseable stream line: {payload[:200]!r}")
            return
        if not isinstance(event, dict):
            return
        if "error" in event:
            self._fail("stream", str(event["error"])[:500])
            return
        text = None
        if self._ndjson:
            text = event.get("text")
        else:
            choices = event.get("choices")
            if choices:
                choice = choices[0]
                if self._chat:
                    delta = choice.get("delta") or {}
                    text = delta.get("content") or delta.get("reasoning_content")
                else:
                    text = choice.get("text")
            usage = event.get("usage")
            if usage:
                self.result.output_tokens = int(usage.get("completion_tokens") or 0)
                self.result.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        if text:
            self._token(now, text)

    def _token(self, now: float, text: str) -> None:
        result = self.result
        if self._last == 0.0:
            result.ttft = now - result.start
        else:
            result.itl.append(now - self._last)
        self._last = now
        result.e2e = now - result.start
        if self._ndjson:
            result.text.append(text)

    def _fail(self, error: str, detail: str) -> None:
        self.result.error = error
        self.result.detail = detail


async def send(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    endpoint: Endpoint,
) -> RequestResult:
    """POST one streamed request and time it. Never raises; failures land in `error`."""
    result = RequestResult(start=time.perf_counter())
    timer = StreamTimer(result, endpoint)
    try:
        async with session.post(url, json=payload) as response:
            if response.status != 200:
                result.error = str(response.status)
                result.detail = (await response.text())[:500]
                return result
            async for data in response.content.iter_any():
                timer.feed(data, time.perf_counter())
            timer.close(time.perf_counter())
    except aiohttp.ClientConnectorError as error:
        result.error, result.detail = "connect", str(error)
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as error:
        result.error, result.detail = "disconnected", str(error)
    except TimeoutError as error:
        result.error, result.detail = "timeout", str(error)
    except (aiohttp.ClientError, asyncio.IncompleteReadError) as error:
        result.error, result.detail = type(error).__name__, str(error)
    if result.error is None:
        if result.ttft == 0.0:
            result.error, result.detail = "no_tokens", "the stream ended before any token"
        else:
            result.ok = True
            if not result.output_tokens:
                # No usage in the stream (/vllm): count token chunks; the runner may recount.
                result.output_tokens = len(result.itl) + 1
    return result
