"""Runs StubServers on real sockets in their own thread and event loop, so both async tests and
the `rayvllm bench` CLI (which runs its own loop) can load them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from bench_stub import StubServer


@pytest.fixture
def stub_factory() -> Iterator[Any]:
    """Starts StubServers on free ports in one background loop; stops them all afterwards."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners: list[web.AppRunner] = []

    async def start(server: StubServer) -> None:
        runner = web.AppRunner(server.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        server.url = f"http://127.0.0.1:{port}"

    def make(**options: Any) -> StubServer:
        server = StubServer(**options)
        asyncio.run_coroutine_threadsafe(start(server), loop).result(timeout=10)
        return server

    yield make

    async def stop() -> None:
        for runner in runners:
            await runner.cleanup()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


@pytest.fixture
def stub(stub_factory: Any) -> StubServer:
    server: StubServer = stub_factory()
    return server
