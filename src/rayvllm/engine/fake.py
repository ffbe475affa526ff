"""A deterministic engine with no model: words from a fixed list, a configurable time to first
token and inter-token delay. Like a real engine it advances every running request once per step
and merges deltas a slow consumer has not read yet, so it also serves serving-layer benchmarks."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from rayvllm.config import FakeEngineConfig
from rayvllm.engine.base import (
    ChoiceDelta,
    Engine,
    EngineDeadError,
    EngineOutput,
    GenerationRequest,
    StageTimings,
    TokenLogprob,
)

WORDS = (
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "ray",
    "serves",
    "tokens",
    "from",
    "vllm",
    "to",
    "every",
    "client",
    "that",
    "asks",
    "politely",
    "and",
    "waits",
    "for",
    "its",
    "answer",
)
VOCAB_SIZE = 50_000


@dataclass(slots=True)
class _Choice:
    index: int
    text: str = ""
    sent: int = 0  # characters of `text` already handed out
    tokens: int = 0
    unsent_tokens: int = 0
    finish_reason: str | None = None
    finish_sent: bool = False
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass(slots=True)
class _Running:
    request: GenerationRequest
    arrival: float
    first_token_at: float
    choices: list[_Choice]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    first_token_ts: float = 0.0
    error: BaseException | None = None

    @property
    def finished(self) -> bool:
        return all(c.finish_reason is not None for c in self.choices)


class FakeEngine(Engine):
    def __init__(self, model_name: str, config: FakeEngineConfig) -> None:
        self.model_name = model_name
        self.max_model_len = config.max_model_len
        self._config = config
        self._running: dict[str, _Running] = {}
        self._stepper: asyncio.Task[None] | None = None
        self._ready = False
        self._dead = False
        self.aborted: list[str] = []

    async def start(self) -> None:
        self._ready = True

    @property
    def ready(self) -> bool:
        return self._ready and not self._dead

    def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        ids = [zlib.crc32(w.encode()) % VOCAB_SIZE for w in text.split()]
        return [1, *ids] if add_special_tokens else ids

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        turns = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
        return "".join(turns) + "<|im_start|>assistant\n"

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[EngineOutput, None]:
        if self._dead:
            raise EngineDeadError("fake engine is dead")
        now = time.monotonic()
        run = _Running(
            request=request,
            arrival=now,
            first_token_at=now + self._config.ttft_ms / 1000,
            choices=[_Choice(i) for i in range(request.options.n)],
        )
        self._running[request.request_id] = run
        if self._stepper is None or self._stepper.done():
            self._stepper = asyncio.create_task(self._step_loop())
        finished = False
        try:
            while not finished:
                await run.wake.wait()
                run.wake.clear()
                if run.error is not None:
                    raise run.error
                finished = run.finished
                yield self._collect(run, finished)
        finally:
            if self._running.pop(request.request_id, None) is not None and not finished:
                self.aborted.append(request.request_id)

    def _collect(self, run: _Running, finished: bool) -> EngineOutput:
        deltas = []
        for c in run.choices:
            if c.sent < len(c.text) or c.unsent_tokens or (c.finish_reason and not c.finish_sent):
                c.finish_sent = c.finish_reason is not None
                deltas.append(
                    ChoiceDelta(
                        index=c.index,
                        text=c.text[c.sent :],
                        num_tokens=c.unsent_tokens,
                        finish_reason=c.finish_reason,
                        logprobs=c.logprobs or None,
                    )
                )
                c.sent, c.unsent_tokens, c.logprobs = len(c.text), 0, []
        timings = None
        if finished:
            now = time.monotonic()
            timings = StageTimings(
                queue_s=0.0,
                prefill_s=run.first_token_ts - run.arrival,
                decode_s=now - run.first_token_ts,
            )
        return EngineOutput(choices=deltas, finished=finished, timings=timings)

    async def _step_loop(self) -> None:
        tick = max(self._config.itl_ms / 1000, 0.0005)
        while self._running:
            now = time.monotonic()
            for run in list(self._running.values()):
                if now < run.first_token_at or run.finished:
                    continue
                if not run.first_token_ts:
                    run.first_token_ts = now
                for choice in run.choices:
                    if choice.finish_reason is None:
                        self._advance(run.request, choice)
                run.wake.set()
            await asyncio.sleep(tick)

    def _advance(self, request: GenerationRequest, choice: _Choice) -> None:
        opts = request.options
        seed = (sum(request.prompt_token_ids) + (opts.seed or 0) + choice.index) % len(WORDS)
        word = WORDS[(seed + 7 * choice.tokens) % len(WORDS)]
        piece = " " + word
        choice.tokens += 1
        choice.unsent_tokens += 1
        choice.text += piece
        if opts.logprobs is not None:
            alts = tuple((w, -1.5 - i) for i, w in enumerate(WORDS[: opts.logprobs]))
            choice.logprobs.append(TokenLogprob(token=piece, logprob=-0.5, top=alts))
        for stop in opts.stop:
            cut = choice.text.find(stop, max(0, choice.sent - len(stop)))
            if cut >= 0:
                choice.text = choice.text[:cut]
                choice.finish_reason = "stop"
                return
        if choice.tokens >= opts.max_tokens:
            choice.finish_reason = "length"

    async def abort(self, request_id: str) -> None:
        if self._running.pop(request_id, None) is not None:
            self.aborted.append(request_id)

    def kill(self) -> None:
        """Simulate engine death: every running request fails, health checks fail."""
        self._dead = True
        for run in self._running.values():
            run.error = EngineDeadError("fake engine died")
            run.wake.set()

    async def check_health(self) -> None:
        if self._dead:
            raise EngineDeadError("fake engine is dead")

    async def shutdown(self) -> None:
        self._ready = False
        if self._stepper is not None:
            self._stepper.cancel()

    def num_unfinished_requests(self) -> int:
        return len(self._running)
