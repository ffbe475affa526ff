"""One engine request from admission to its last token: context-length checks, timeout, abort
on early close, and the latency-breakdown metrics. The per-token path lives here; keep it short."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from rayvllm.engine.base import (
    Engine,
    EngineDeadError,
    EngineOutput,
    GenerationRequest,
    SamplingOptions,
)
from rayvllm.errors import ContextLengthError, EngineUnavailableError, RequestTimeoutError
from rayvllm.server import metrics
from rayvllm.server.ratelimit import usage_recorder


def new_request_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def resolve_max_tokens(
    engine: Engine, prompt_len: int, requested: int | None, *, prompt_param: str
) -> int:
    """Reject, never clamp: a prompt or a request that does not fit the context is a 400."""
    limit = engine.max_model_len
    if prompt_len >= limit:
        raise ContextLengthError(
            f"This model's maximum context length is {limit} tokens, but the prompt has "
            f"{prompt_len} tokens. Shorten the prompt.",
            param=prompt_param,
        )
    if requested is None:
        return limit - prompt_len
    if prompt_len + requested > limit:
        raise ContextLengthError(
            f"This model's maximum context length is {limit} tokens, but you requested "
            f"{prompt_len + requested} tokens ({prompt_len} in the prompt, {requested} for the "
            "completion). Lower max_tokens or shorten the prompt.",
            param="max_tokens",
        )
    return requested


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


class Generation:
    """Iterate engine outputs for one request; counts tokens into `usage` as they arrive."""

    def __init__(
        self,
        engine: Engine,
        request_id: str,
        prompt_token_ids: list[int],
        options: SamplingOptions,
        *,
        arrival: float,
        timeout_s: float,
    ) -> None:
        self.engine = engine
        self.request = GenerationRequest(request_id, prompt_token_ids, options)
        self.usage = Usage(prompt_tokens=len(prompt_token_ids))
        self.arrival = arrival
        self.deadline = arrival + timeout_s
        self.timeout_s = timeout_s

    async def outputs(self) -> AsyncIterator[EngineOutput]:
        model = self.engine.model_name
        metrics.INGRESS_SECONDS.labels(model).observe(time.monotonic() - self.arrival)
        metrics.IN_FLIGHT.labels(model).inc()
        stream = self.engine.generate(self.request)
        record_usage = usage_recorder()  # for rate limits: charge what is really used
        first_token_at = 0.0
        finished = False
        try:
            while True:
                try:
                    # time.monotonic() is the clock asyncio's loops (and uvloop) schedule on.
                    async with asyncio.timeout_at(self.deadline):
                        out = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    metrics.count_abort(model, "timeout")
                    raise RequestTimeoutError(
                        f"The request took longer than {self.timeout_s:g} s and was aborted."
                    ) from None
                except EngineDeadError as exc:
                    raise EngineUnavailableError(
                        "The engine stopped; retry the request.", internal=str(exc)
                    ) from exc
                produced = 0
                for choice in out.choices:
                    produced += choice.num_tokens
                if produced and not first_token_at:
                    first_token_at = time.monotonic()
                    metrics.TTFT_SECONDS.labels(model).observe(first_token_at - self.arrival)
                self.usage.completion_tokens += produced
                finished = out.finished
                if finished:
                    self._record_finish(out, first_token_at)
                yield out
        finally:
            metrics.IN_FLIGHT.labels(model).dec()
            record_usage(self.usage.prompt_tokens + self.usage.completion_tokens)
            if not finished:
                # Client gone, timeout or error: make sure the engine stops working on it.
                metrics.count_abort(model, "closed")
                await stream.aclose()
                with contextlib.suppress(Exception):
                    await self.engine.abort(self.request.request_id)

    def _record_finish(self, out: EngineOutput, first_token_at: float) -> None:
        model = self.engine.model_name
        u = self.usage
        metrics.TOKENS.labels(model, "prompt").inc(u.prompt_tokens)
        metrics.TOKENS.labels(model, "generation").inc(u.completion_tokens)
        if first_token_at and u.completion_tokens > 1:
            tpot = (time.monotonic() - first_token_at) / (u.completion_tokens - 1)
            metrics.TPOT_SECONDS.labels(model).observe(tpot)
        if out.timings is not None:
            metrics.QUEUE_SECONDS.labels(model).observe(out.timings.queue_s)
            metrics.PREFILL_SECONDS.labels(model).observe(out.timings.prefill_s)
            metrics.DECODE_SECONDS.labels(model).observe(out.timings.decode_s)
