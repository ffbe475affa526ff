"""Back-pressure next to the engine: each model in this process runs at most max_ongoing_requests
at once and holds at most max_queued_requests waiting; past that a request is refused at once with
OpenAI's error body (503, or 429 if configured) and a Retry-After."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from prometheus_client import Gauge
from pydantic import BaseModel

from rayvllm.config import DeploymentConfig, LimitsConfig
from rayvllm.errors import OverloadedError
from rayvllm.server.services import ModelService, Route
from rayvllm.server.serving import Reply, StreamReply

QUEUED = Gauge(
    "rayvllm_requests_queued",
    "Requests waiting for a free slot of their model in this process.",
    ["model"],
    multiprocess_mode="livesum",
)
# On Ray, Serve's own bounds are widened by this much so requests reach our admission (and get
# our error body); the refused ones hold a Serve slot only for the microseconds of the refusal.
RAY_REFUSAL_HEADROOM = 16


def overloaded(model: str, limits: LimitsConfig) -> OverloadedError:
    err = OverloadedError(
        f"The model '{model}' is serving all the requests it can and its queue is full. "
        "Retry shortly.",
        retry_after_s=limits.overload_retry_after_s,
    )
    if limits.overload_status == 429:
        err.status_code = 429
        err.error_type = "rate_limit_error"
    return err


class AdmissionController:
    """In-flight slots and a bounded FIFO queue for one model."""

    def __init__(self, model: str, max_ongoing: int, max_queued: int, limits: LimitsConfig) -> None:
        self.model = model
        self.max_queued = max_queued  # -1: unbounded
        self._slots = asyncio.Semaphore(max_ongoing)
        self._limits = limits
        self.waiting = 0

    async def acquire(self) -> Callable[[], None]:
        """Wait for a slot (or refuse at once); returns the idempotent release."""
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns without suspending
        elif 0 <= self.max_queued <= self.waiting:
            raise overloaded(self.model, self._limits)
        else:
            self.waiting += 1
            QUEUED.labels(self.model).inc()
            try:
                await self._slots.acquire()
            finally:
                self.waiting -= 1
                QUEUED.labels(self.model).dec()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._slots.release()

        return release


class _Held:
    """A stream that runs a callback (once) when it ends, fails, is closed or is dropped."""

    def __init__(self, chunks: AsyncIterator[bytes], callback: Callable[[], None]) -> None:
        self._chunks = chunks
        self._release: Callable[[], None] | None = callback
        self._loop = asyncio.get_running_loop()

    def _done(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release()

    def __aiter__(self) -> _Held:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._chunks)
        except BaseException:
            self._done()
            raise

    async def aclose(self) -> None:
        self._done()
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()

    def __del__(self) -> None:
        # A reply dropped before its last chunk (the client left first) must not leak a slot.
        if self._release is not None:
            with contextlib.suppress(RuntimeError):  # loop closed: nothing left to release to
                self._loop.call_soon_threadsafe(self._done)


def when_done(reply: Reply, callback: Callable[[], None]) -> Reply:
    """Call `callback` now for a whole reply; at the stream's end for a streamed one."""
    if isinstance(reply, StreamReply):
        reply.chunks = _Held(reply.chunks, callback)
    else:
        callback()
    return reply


class AdmittedService:
    """A ModelService behind an AdmissionController: the slot is held until the reply ends."""

    def __init__(self, inner: ModelService, controller: AdmissionController) -> None:
        self.name = inner.name
        self.inner = inner
        self.controller = controller

    async def call(self, route: Route, body: BaseModel, arrival: float) -> Reply:
        release = await self.controller.acquire()
        try:
            reply = await self.inner.call(route, body, arrival)
        except BaseException:
            release()
            raise
        return when_done(reply, release)

    async def ready(self) -> bool:
        return await self.inner.ready()


def admitted(
    service: ModelService, deployment: DeploymentConfig, limits: LimitsConfig
) -> AdmittedService:
    controller = AdmissionController(
        service.name, deployment.max_ongoing_requests, deployment.max_queued_requests, limits
    )
    return AdmittedService(service, controller)


def serve_max_ongoing(deployment: DeploymentConfig) -> int:
    """Serve's max_ongoing_requests for a replica that runs our admission.

    With a bounded queue, Serve lets in our in-flight plus our queue plus headroom, so the
    replica's own admission refuses the excess with OpenAI's body and `Retry-After`. Unbounded,
    Serve's bound is ours.

    Serve's own max_queued_requests is always -1 (`deployment/app.py`): on HAProxy's direct
    ingress a replica counts every request as queued from arrival until it takes a slot, across
    an await, so a burst of simultaneous arrivals overflows a small bound while slots are free,
    and Serve refuses them in plain text (measured: 6 of 14 at once, with 36 slots free). Our
    admission answers every request in microseconds, so what waits in Serve's queue never waits
    long."""
    if deployment.max_queued_requests < 0:
        return deployment.max_ongoing_requests
    return deployment.max_ongoing_requests + deployment.max_queued_requests + RAY_REFUSAL_HEADROOM
