"""Drives load: a closed loop of N concurrent clients or open-loop Poisson arrivals, one aiohttp
session per target and level, targets interleaved level by level so drift hits them alike."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from pydantic import BaseModel, Field

from rayvllm.bench.http import ENDPOINT_PATHS, Endpoint, RequestResult, build_payload, send
from rayvllm.bench.workload import BenchRequest

PROBE_TIMEOUT_S = 10.0


class BenchError(RuntimeError):
    """A benchmark that cannot start: unreachable target, no model to name."""


class Target(BaseModel):
    """One server under test."""

    name: str
    url: str = Field(description="Base URL, e.g. http://127.0.0.1:8000 (no /v1).")
    model: str | None = Field(None, description="Model to request; None for the /vllm endpoint.")
    server_header: str | None = Field(None, description="The `server` header of its replies.")
    version: dict[str, Any] | None = Field(None, description="Its GET /version body, if any.")


class Level(BaseModel):
    """One load level: closed loop at `concurrency`, or Poisson arrivals at `rate` req/s."""

    concurrency: int | None = Field(None, gt=0)
    rate: float | None = Field(None, gt=0)
    max_concurrency: int | None = Field(
        None, gt=0, description="Cap on in-flight open-loop requests."
    )
    num_prompts: int = Field(gt=0, description="Measured requests.")
    warmup: int = Field(0, ge=0, description="Requests sent first and left out of the numbers.")

    @property
    def label(self) -> str:
        if self.rate is None:
            return f"c={self.concurrency}"
        cap = f" max {self.max_concurrency}" if self.max_concurrency else ""
        return f"{self.rate:g} req/s{cap}"

    @property
    def connection_limit(self) -> int:
        """Sockets the session may open: one per in-flight request (0 = unbounded)."""
        return self.concurrency or self.max_concurrency or 0

    @property
    def warmup_concurrency(self) -> int:
        """Warmup runs as a closed loop at about the load the level itself will bring."""
        return self.concurrency or self.max_concurrency or max(1, round(self.rate or 1))


@dataclass
class LevelRun:
    results: list[RequestResult]
    duration_s: float


class Progress(Protocol):
    def start(self, target: Target, level: Level, warmup: bool, total: int) -> None: ...

    def advance(self, result: RequestResult) -> None: ...


def interleave(num_targets: int, num_levels: int) -> list[tuple[int, int]]:
    """(level, target) in run order: every target at level 1, then every target at level 2..."""
    return [(level, target) for level in range(num_levels) for target in range(num_targets)]


async def probe(url: str, model: str | None, endpoint: Endpoint, api_key: str | None) -> Target:
    """Fills in the model (the first of GET /v1/models unless given) and what the server says it
    is (GET /version, `server` header)."""
    target = Target(name="", url=url.rstrip("/"), model=model)
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, headers=_auth(api_key)) as session:
        try:
            async with session.get(f"{target.url}/v1/models") as response:
                target.server_header = response.headers.get("server")
                models = (await response.json()).get("data", []) if response.ok else []
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise BenchError(
                f"cannot reach {target.url}/v1/models ({error}): start a server with "
                "`rayvllm serve`, or point --url/--compare at a running one"
            ) from error
        if target.model is None and endpoint is not Endpoint.vllm:
            if not models:
                raise BenchError(f"{target.url}/v1/models lists no model: pass --model NAME")
            target.model = str(models[0]["id"])
        try:
            async with session.get(f"{target.url}/version") as response:
                if response.ok:
                    body = await response.json(content_type=None)
                    target.version = body if isinstance(body, dict) else {"version": body}
        except (aiohttp.ClientError, TimeoutError, ValueError):
            pass  # /version is optional
    return target


def _auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


async def closed_loop(
    send_one: Callable[[BenchRequest], Awaitable[RequestResult]],
    requests: Sequence[BenchRequest],
    concurrency: int,
) -> list[RequestResult]:
    """`concurrency` clients, each sending its next request as soon as its last one finishes."""
    pending = iter(requests)
    results: list[RequestResult] = []

    async def client() -> None:
        for request in pending:  # one shared iterator: each request is sent once
            results.append(await send_one(request))

    await asyncio.gather(*(client() for _ in range(min(concurrency, len(requests)))))
    return results


async def open_loop(
    send_one: Callable[[BenchRequest], Awaitable[RequestResult]],
    requests: Sequence[BenchRequest],
    rate: float,
    max_concurrency: int | None,
    rng: random.Random,
) -> list[RequestResult]:
    """Requests arrive as a Poisson process of `rate` req/s, whether or not earlier ones are done.
    Arrival times are fixed in advance so a slow event loop cannot stretch the gaps."""
    gate = asyncio.Semaphore(max_concurrency) if max_concurrency else None

    async def arrive(request: BenchRequest) -> RequestResult:
        if gate is None:
            return await send_one(request)
        async with gate:
            return await send_one(request)

    tasks = []
    due = time.perf_counter()
    for index, request in enumerate(requests):
        if index:
            due += rng.expovariate(rate)
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(arrive(request)))
    return list(await asyncio.gather(*tasks))


async def run_level(
    target: Target,
    level: Level,
    warmup_requests: Sequence[BenchRequest],
    requests: Sequence[BenchRequest],
    *,
    endpoint: Endpoint,
    ignore_eos: bool,
    api_key: str | None,
    request_timeout_s: float,
    progress: Progress,
    count_tokens: Callable[[str], int] | None = None,
    seed: int = 0,
) -> LevelRun:
    """Warm up, then measure one level against one target with a fresh keep-alive session.

    aiohttp does not retry a POST, so each failure is counted as the server gave it.
    """
    url = target.url + ENDPOINT_PATHS[endpoint]
    connector = aiohttp.TCPConnector(limit=level.connection_limit, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=request_timeout_s)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=_auth(api_key)
    ) as session:

        async def send_one(request: BenchRequest) -> RequestResult:
            payload = build_payload(endpoint, target.model, request, ignore_eos)
            result = await send(session, url, payload, endpoint)
            _fill_token_counts(result, request, count_tokens)
            progress.advance(result)
            return result

        if warmup_requests:
            progress.start(target, level, True, len(warmup_requests))
            await closed_loop(send_one, warmup_requests, level.warmup_concurrency)
        progress.start(target, level, False, len(requests))
        started = time.perf_counter()
        if level.rate is None:
            assert level.concurrency is not None
            results = await closed_loop(send_one, requests, level.concurrency)
        else:
            rng = random.Random(seed)
            results = await open_loop(send_one, requests, level.rate, level.max_concurrency, rng)
        return LevelRun(results=results, duration_s=time.perf_counter() - started)


def _fill_token_counts(
    result: RequestResult, request: BenchRequest, count_tokens: Callable[[str], int] | None
) -> None:
    """Servers without usage in the stream (the legacy /vllm) get counted with the tokenizer."""
    if result.text and count_tokens is not None:
        result.output_tokens = count_tokens("".join(result.text))
    if not result.prompt_tokens:
        if request.prompt_len is not None:
            result.prompt_tokens = request.prompt_len
        elif count_tokens is not None:
            result.prompt_tokens = count_tokens(request.prompt)
