"""A dead vLLM engine fails each request as EngineDeadError (a 503 to the client), whatever
exception type AsyncLLM surfaces, so no request ends as a bare 500 or a cut stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("vllm")

from rayvllm.engine.base import EngineDeadError, GenerationRequest, SamplingOptions
from rayvllm.engine.vllm_engine import VLLMEngine

pytestmark = pytest.mark.vllm
REQUEST = GenerationRequest("r1", [1, 2, 3], SamplingOptions(max_tokens=4))


class BrokenLLM:
    """What AsyncLLM looks like once its EngineCore is gone (or not): generate() raises."""

    def __init__(self, *, errored: bool) -> None:
        self.errored = errored

    async def generate(self, *_: Any) -> AsyncIterator[Any]:
        raise RuntimeError("Socket operation on non-socket")
        yield  # pragma: no cover


def engine_with(llm: Any) -> VLLMEngine:
    engine = VLLMEngine("m", "/nowhere", {})
    engine._llm = llm
    return engine


async def drain(engine: VLLMEngine) -> None:
    async for _ in engine.generate(REQUEST):
        pass


async def test_any_error_from_a_dead_engine_is_engine_dead() -> None:
    with pytest.raises(EngineDeadError, match="RuntimeError"):
        await drain(engine_with(BrokenLLM(errored=True)))


async def test_a_request_after_shutdown_is_engine_dead() -> None:
    with pytest.raises(EngineDeadError, match="stopped"):
        await drain(engine_with(None))


async def test_errors_of_a_live_engine_keep_their_type() -> None:
    with pytest.raises(RuntimeError):
        await drain(engine_with(BrokenLLM(errored=False)))
