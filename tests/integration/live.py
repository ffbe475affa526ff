"""A real uvicorn server in a thread, over the fake engine: for what ASGITransport cannot show
(it buffers whole responses, so no disconnects and no real streaming)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from rayvllm.config import ServeConfig
from rayvllm.engine.fake import FakeEngine
from rayvllm.server.app import create_app, engine_lifespan
from rayvllm.server.services import LocalService


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_fake_server(config: ServeConfig) -> Iterator[tuple[str, FakeEngine]]:
    engine = FakeEngine(config.models[0].name, config.fake)
    service = LocalService(engine, request_timeout_s=config.http.request_timeout_s)
    app = create_app({engine.model_name: service}, config, lifespan=engine_lifespan([engine]))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (server.started and engine.ready):
        if time.monotonic() > deadline:
            raise RuntimeError("fake server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", engine
    finally:
        server.should_exit = True
        thread.join(10)
