"""Pick the engine a ServeConfig asks for; the vLLM module is imported only when used."""

from __future__ import annotations

from rayvllm.config import EngineKind, ModelConfig, ServeConfig
from rayvllm.engine.base import Engine


def make_engine(config: ServeConfig, model: ModelConfig) -> Engine:
    if config.engine is EngineKind.fake:
        from rayvllm.engine.fake import FakeEngine

        return FakeEngine(model.name, config.fake)
    from rayvllm.engine.vllm_engine import VLLMEngine
    from rayvllm.models.embedded import resolve_source

    return VLLMEngine(model.name, resolve_source(model.source), model.engine_args)
