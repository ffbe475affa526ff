"""Parsing streamed replies and timing them: SSE with usage and [DONE], chat role deltas,
NDJSON from /vllm, stream errors; and one real request per outcome against a stub server."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from bench_stub import StubServer

from rayvllm.bench.http import Endpoint, RequestResult, StreamTimer, build_payload, send
from rayvllm.bench.workload import BenchRequest


def sse(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def timer(endpoint: Endpoint) -> StreamTimer:
    return StreamTimer(RequestResult(start=10.0), endpoint)


def test_completions_stream_times_tokens_and_reads_usage() -> None:
    t = timer(Endpoint.completions)
    t.feed(b": ping\n\n" + sse({"choices": [{"text": "Hel"}], "usage": None}), now=10.5)
    t.feed(sse({"choices": [{"text": "lo"}], "usage": None}), now=10.6)
    t.feed(sse({"choices": [{"text": "!"}]}), now=10.8)
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    t.feed(sse({"choices": [], "usage": usage}) + b"data: [DONE]\n\n", now=11.0)
    t.close(now=11.0)
    result = t.result
    assert result.ttft == pytest.approx(0.5)
    assert result.itl == pytest.approx([0.1, 0.2])
    assert result.e2e == pytest.approx(0.8)  # the usage chunk and [DONE] are not tokens
    assert (result.prompt_tokens, result.output_tokens) == (12, 3)
    assert result.error is None


def test_event_split_across_reads_is_reassembled_and_timed_on_arrival() -> None:
    t = timer(Endpoint.completions)
    raw = sse({"choices": [{"text": "a"}]})
    t.feed(raw[:9], now=10.1)
    t.feed(raw[9:], now=10.3)
    assert t.result.ttft == pytest.approx(0.3)


def test_crlf_lines_and_no_space_after_data_colon() -> None:
    t = timer(Endpoint.completions)
    t.feed(b'data:{"choices":[{"text":"a"}]}\r\n\r\n', now=10.2)
    assert t.result.ttft == pytest.approx(0.2)


def test_chat_role_only_delta_is_not_the_first_token() -> None:
    t = timer(Endpoint.chat)
    t.feed(sse({"choices": [{"delta": {"role": "assistant", "content": ""}}]}), now=10.1)
    t.feed(sse({"choices": [{"delta": {"content": "Hi"}}]}), now=10.4)
    assert t.result.ttft == pytest.approx(0.4)
    assert t.result.itl == []


def test_error_event_in_stream_marks_the_request() -> None:
    t = timer(Endpoint.completions)
    t.feed(sse({"choices": [{"text": "a"}]}), now=10.1)
    t.feed(sse({"error": {"message": "engine died", "code": 500}}), now=10.2)
    assert t.result.error == "stream"
    assert "engine died" in t.result.detail


def test_vllm_ndjson_deltas_are_tokens_and_kept_for_counting() -> None:
    t = timer(Endpoint.vllm)
    t.feed(b'{"text": "Hel"}\n{"text": "lo"}', now=10.2)
    t.close(now=10.5)
    assert t.result.ttft == pytest.approx(0.2)
    assert t.result.itl == pytest.approx([0.3])
    assert "".join(t.result.text) == "Hello"


def test_payloads_stream_with_usage_and_ignore_eos() -> None:
    request = BenchRequest(prompt="hi", output_len=64)
    completions = build_payload(Endpoint.completions, "m", request, ignore_eos=True)
    assert completions == {
        "max_tokens": 64,
        "stream": True,
        "prompt": "hi",
        "model": "m",
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
    }
    chat = build_payload(Endpoint.chat, "m", request, ignore_eos=False)
    assert chat["messages"] == [{"role": "user", "content": "hi"}]
    assert "ignore_eos" not in chat
    legacy = build_payload(Endpoint.vllm, None, request, ignore_eos=True)
    assert "model" not in legacy and legacy["prompt"] == "hi"


async def _send(server: StubServer, endpoint: Endpoint) -> RequestResult:
    path = {"completions": "/v1/completions", "chat": "/v1/chat/completions", "vllm": "/vllm"}
    payload = build_payload(endpoint, "stub-model", BenchRequest(prompt="x", output_len=4), True)
    async with aiohttp.ClientSession() as session:
        return await send(session, server.url + path[endpoint.value], payload, endpoint)


@pytest.mark.parametrize("endpoint", list(Endpoint))
async def test_send_times_a_real_stream(stub: StubServer, endpoint: Endpoint) -> None:
    result = await _send(stub, endpoint)
    assert result.ok, result.detail
    assert result.output_tokens == 4
    assert len(result.itl) == 3
    assert 0 < result.ttft <= result.e2e


@pytest.mark.parametrize("status", [503, 429, 500])
async def test_http_errors_keep_their_status(stub: StubServer, status: int) -> None:
    stub.fail_with = [status]
    result = await _send(stub, Endpoint.completions)
    assert not result.ok
    assert result.error == str(status)


async def test_unreachable_server_is_a_connect_error() -> None:
    server = StubServer(url="http://127.0.0.1:9")  # discard port: nothing listens
    result = await _send(server, Endpoint.completions)
    assert result.error == "connect"
