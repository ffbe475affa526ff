"""The work behind each route for one model: turn a validated request into an engine request
and its outputs into OpenAI's (or the blueprint's) reply, streamed or whole."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from rayvllm.engine.base import ChoiceDelta, Engine, EngineOutput, SamplingOptions
from rayvllm.errors import BadRequestError, RayVLLMError, error_body
from rayvllm.server import formatting as fmt
from rayvllm.server.generation import Generation, new_request_id, resolve_max_tokens
from rayvllm.server.legacy_prompt import legacy_prompt_ids
from rayvllm.server.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    LegacyVLLMRequest,
    ResponseFormat,
)

SSE_DONE = b"data: [DONE]\n\n"
COMPLETION_TOKENS_HEADER = "x-rayvllm-completion-tokens"


@dataclass(slots=True)
class JSONReply:
    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class StreamReply:
    chunks: AsyncIterator[bytes]
    media_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)


Reply = JSONReply | StreamReply


def _structured(fmt_: ResponseFormat | None) -> tuple[dict[str, Any] | None, bool]:
    if fmt_ is None or fmt_.type == "text":
        return None, False
    if fmt_.type == "json_object":
        return None, True
    if fmt_.json_schema is None or not fmt_.json_schema.schema_:
        raise BadRequestError(
            "response_format json_schema needs a `json_schema.schema` object",
            param="response_format",
        )
    return fmt_.json_schema.schema_, False


class ModelServing:
    def __init__(self, engine: Engine, *, request_timeout_s: float) -> None:
        self.engine = engine
        self.model = engine.model_name
        self.timeout_s = request_timeout_s

    def _generation(
        self, prefix: str, ids: list[int], opts: SamplingOptions, arrival: float
    ) -> Generation:
        return Generation(
            self.engine,
            new_request_id(prefix),
            ids,
            opts,
            arrival=arrival,
            timeout_s=self.timeout_s,
        )

    def _options(
        self,
        req: ChatCompletionRequest | CompletionRequest,
        prompt_tokens: int,
        prompt_param: str,
        *,
        logprobs: int | None,
    ) -> SamplingOptions:
        """The engine's sampling options for a chat or completion request (the two differ only
        in how logprobs are asked for and which field holds the prompt)."""
        schema, json_object = _structured(req.response_format)
        return SamplingOptions(
            max_tokens=resolve_max_tokens(
                self.engine, prompt_tokens, req.token_limit, prompt_param=prompt_param
            ),
            temperature=req.temperature,
            top_p=req.top_p,
            top_k=req.top_k,
            n=req.n,
            stop=req.stop_list(),
            seed=req.seed,
            presence_penalty=req.presence_penalty,
            frequency_penalty=req.frequency_penalty,
            logprobs=logprobs,
            json_schema=schema,
            json_object=json_object,
            ignore_eos=req.ignore_eos,
            min_tokens=req.min_tokens,
        )

    # -- chat ---------------------------------------------------------------------------------

    async def chat(self, req: ChatCompletionRequest, arrival: float) -> Reply:
        messages = [{"role": m.role, "content": m.text()} for m in req.messages]
        prompt = self.engine.render_chat(messages)
        ids = self.engine.tokenize(prompt, add_special_tokens=False)
        top = req.top_logprobs if req.top_logprobs is not None else 0
        opts = self._options(req, len(ids), "messages", logprobs=top if req.logprobs else None)
        gen = self._generation("chatcmpl", ids, opts, arrival)
        head = fmt.ChunkHead(gen.request.request_id, "chat.completion.chunk", self.model)
        if req.stream:
            opening = fmt.chat_opening(head, req.n)
            return StreamReply(_sse(gen, head, fmt.chat_chunk, req.include_usage, opening))
        choices = await _collect(gen, req.n)
        return JSONReply(fmt.chat_response(head, choices, gen.usage.as_dict()))

    # -- completions --------------------------------------------------------------------------

    async def completion(self, req: CompletionRequest, arrival: float) -> Reply:
        prompt_text = ""
        if isinstance(req.prompt, str) or isinstance(req.prompt[0], str):
            prompt_text = req.prompt if isinstance(req.prompt, str) else str(req.prompt[0])
            ids = self.engine.tokenize(prompt_text)
        else:
            ids = [int(t) for t in req.prompt]
        opts = self._options(req, len(ids), "prompt", logprobs=req.logprobs)
        gen = self._generation("cmpl", ids, opts, arrival)
        head = fmt.ChunkHead(gen.request.request_id, "text_completion", self.model)
        echo = prompt_text if req.echo else ""
        if req.stream:
            opening = None
            if echo:
                opening = fmt.completion_chunk(
                    head, [ChoiceDelta(i, echo, 0) for i in range(req.n)]
                )
            return StreamReply(_sse(gen, head, fmt.completion_chunk, req.include_usage, opening))
        choices = await _collect(gen, req.n)
        for c in choices:
            c.text = echo
        return JSONReply(fmt.completion_response(head, choices, gen.usage.as_dict()))

    # -- the blueprint's /vllm ----------------------------------------------------------------

    async def legacy(self, req: LegacyVLLMRequest, arrival: float) -> Reply:
        ids = legacy_prompt_ids(self.engine, req.prompt)
        opts = SamplingOptions(
            max_tokens=resolve_max_tokens(
                self.engine, len(ids), req.max_tokens, prompt_param="prompt"
            ),
            temperature=req.temperature,
            top_p=req.top_p,
            top_k=req.top_k,
            stop=req.stop_list(),
        )
        gen = self._generation("vllm", ids, opts, arrival)
        if req.stream:
            return StreamReply(_ndjson(gen), media_type="application/x-ndjson")
        choices = await _collect(gen, 1)
        return JSONReply(
            {"text": [req.prompt + c.full_text() for c in choices]},
            headers={COMPLETION_TOKENS_HEADER: str(gen.usage.completion_tokens)},
        )


async def _sse(
    gen: Generation,
    head: fmt.ChunkHead,
    chunk: Callable[[fmt.ChunkHead, list[ChoiceDelta]], bytes],
    include_usage: bool,
    opening: bytes | None,
) -> AsyncIterator[bytes]:
    """OpenAI's SSE stream; an error becomes one error event, and [DONE] always ends it."""
    try:
        if opening is not None:
            yield opening
        async for out in gen.outputs():
            if out.choices:
                yield chunk(head, out.choices)
        if include_usage:
            yield fmt.usage_chunk(head, gen.usage.as_dict())
    except RayVLLMError as exc:
        _, body, _ = error_body(exc)
        yield b"data: " + json.dumps(body).encode() + b"\n\n"
    yield SSE_DONE


async def _ndjson(gen: Generation) -> AsyncIterator[bytes]:
    try:
        async for out in gen.outputs():
            for c in out.choices:
                if c.text:
                    yield json.dumps({"text": c.text}).encode() + b"\n"
    except RayVLLMError as exc:
        _, body, _ = error_body(exc)
        yield json.dumps(body).encode() + b"\n"


async def _collect(gen: Generation, n: int) -> list[fmt.Choice]:
    choices = [fmt.Choice(i) for i in range(n)]
    out: EngineOutput
    async for out in gen.outputs():
        for delta in out.choices:
            choices[delta.index].add(delta)
    return choices
