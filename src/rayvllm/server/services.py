"""What the HTTP layer needs from a served model, whether it runs in this process or in another
Ray Serve deployment: `call` a route with a validated body and get a Reply back."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel

from rayvllm.engine.base import Engine
from rayvllm.errors import EngineUnavailableError
from rayvllm.server.protocol import ChatCompletionRequest, CompletionRequest, LegacyVLLMRequest
from rayvllm.server.serving import ModelServing, Reply


class Route(StrEnum):
    chat = "/v1/chat/completions"
    completions = "/v1/completions"
    legacy = "/vllm"


REQUEST_MODELS: dict[Route, type[BaseModel]] = {
    Route.chat: ChatCompletionRequest,
    Route.completions: CompletionRequest,
    Route.legacy: LegacyVLLMRequest,
}


class ModelService(Protocol):
    name: str

    async def call(self, route: Route, body: BaseModel, arrival: float) -> Reply: ...

    async def ready(self) -> bool: ...


class LocalService:
    """A model whose engine lives in this process."""

    def __init__(self, engine: Engine, *, request_timeout_s: float) -> None:
        self.name = engine.model_name
        self.engine = engine
        self.serving = ModelServing(engine, request_timeout_s=request_timeout_s)

    async def call(self, route: Route, body: BaseModel, arrival: float) -> Reply:
        if not self.engine.ready:
            raise EngineUnavailableError(
                f"The model '{self.name}' is not ready yet.", retry_after_s=5
            )
        if route is Route.chat:
            assert isinstance(body, ChatCompletionRequest)
            return await self.serving.chat(body, arrival)
        if route is Route.completions:
            assert isinstance(body, CompletionRequest)
            return await self.serving.completion(body, arrival)
        assert isinstance(body, LegacyVLLMRequest)
        return await self.serving.legacy(body, arrival)

    async def ready(self) -> bool:
        return self.engine.ready
