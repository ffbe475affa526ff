"""The engine interface the HTTP layer talks to, and the plain data that crosses it."""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SamplingOptions:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: int | None = None  # None: no logprobs; k >= 0: chosen token plus k alternatives
    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    ignore_eos: bool = False
    min_tokens: int = 0


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    request_id: str
    prompt_token_ids: list[int]
    options: SamplingOptions


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(slots=True)
class ChoiceDelta:
    index: int
    text: str
    num_tokens: int
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None


@dataclass(frozen=True, slots=True)
class StageTimings:
    """Seconds spent in the engine: queued before scheduling, prefill, decode."""

    queue_s: float
    prefill_s: float
    decode_s: float


@dataclass(slots=True)
class EngineOutput:
    """What one engine step produced for one request; deltas of choices that advanced."""

    choices: list[ChoiceDelta]
    finished: bool
    timings: StageTimings | None = field(default=None)


class EngineDeadError(RuntimeError):
    """The engine can no longer generate; the replica must be replaced."""


class Engine(abc.ABC):
    """An async text-generation engine for one model."""

    model_name: str
    max_model_len: int

    @abc.abstractmethod
    async def start(self) -> None:
        """Load the model; return once a generation has succeeded."""

    @property
    @abc.abstractmethod
    def ready(self) -> bool:
        """True once `start` has finished and the engine is alive."""

    @abc.abstractmethod
    def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]: ...

    @abc.abstractmethod
    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """Apply the model's chat template, ending with the assistant's turn."""

    @abc.abstractmethod
    def generate(self, request: GenerationRequest) -> AsyncGenerator[EngineOutput, None]:
        """Stream outputs; closing the iterator early aborts the engine request."""

    @abc.abstractmethod
    async def abort(self, request_id: str) -> None: ...

    @abc.abstractmethod
    async def check_health(self) -> None:
        """Raise EngineDeadError when the engine cannot generate any more."""

    @abc.abstractmethod
    async def shutdown(self) -> None: ...

    def close(self) -> None:  # noqa: B027 (optional hook: engines without subprocesses skip it)
        """Synchronous last-resort stop (object finalizers); stops engine subprocesses."""

    def num_unfinished_requests(self) -> int:
        return 0
