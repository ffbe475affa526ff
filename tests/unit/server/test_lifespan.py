"""The standalone server's lifespan: engines start in the background, and once they have, the
startup heap is frozen out of the garbage collector's scans, as bare vLLM's server does."""

from __future__ import annotations

import asyncio
import gc

from fastapi import FastAPI

from rayvllm.config import FakeEngineConfig
from rayvllm.engine.fake import FakeEngine
from rayvllm.server.app import engine_lifespan


class SlowStart(FakeEngine):
    def __init__(self) -> None:
        super().__init__("m", FakeEngineConfig())
        self.release = asyncio.Event()
        self.stopped = False

    async def start(self) -> None:
        await self.release.wait()
        await super().start()

    async def shutdown(self) -> None:
        self.stopped = True


async def test_the_heap_is_frozen_once_the_engines_have_started() -> None:
    gc.unfreeze()
    engine = SlowStart()
    try:
        async with engine_lifespan([engine])(FastAPI()):
            await asyncio.sleep(0.05)
            assert not engine.ready  # serving /health meanwhile: the start is not awaited
            assert gc.get_freeze_count() == 0  # nothing frozen before the engines are up
            engine.release.set()
            for _ in range(100):
                if gc.get_freeze_count():
                    break
                await asyncio.sleep(0.01)
            assert engine.ready
            assert gc.get_freeze_count() > 0
        assert engine.stopped
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
