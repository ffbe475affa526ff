"""The FastAPI app: thin routes over ModelService objects. The same app runs in-process in
tests, under plain uvicorn (`rayvllm serve --standalone`) and as a Ray Serve ingress."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import rayvllm
from rayvllm.config import DeploymentConfig, EngineKind, ServeConfig
from rayvllm.errors import (
    BadRequestError,
    ModelNotFoundError,
    PayloadTooLargeError,
    RayVLLMError,
    RequestError,
    error_body,
)
from rayvllm.server import metrics, request_log
from rayvllm.server.admission import admitted, when_done
from rayvllm.server.auth import APIKeyMiddleware, caller_id, keyring_for
from rayvllm.server.openapi_schemas import request_body
from rayvllm.server.ratelimit import Authority, RateLimiter, open_ledger, reserved_tokens
from rayvllm.server.services import REQUEST_MODELS, ModelService, Route
from rayvllm.server.serving import JSONReply, Reply, StreamReply

log = logging.getLogger("rayvllm.server")

REPLICA_HEADER = "x-rayvllm-replica"


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "body"}


def _param(loc: tuple[Any, ...]) -> str | None:
    """`('messages', 0, 'content')` -> `messages[0].content`, dropping pydantic's union tags."""
    parts = [
        p
        for p in loc
        if not (isinstance(p, str) and (p in _TYPE_TAGS or any(c in p for c in "[-(")))
    ]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or None


def parse_body(raw: bytes, model: type[BaseModel]) -> BaseModel:
    """Validate a request body; every failure is a 400 naming the offending parameter."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        if err["type"] == "json_invalid":
            raise BadRequestError("The request body is not valid JSON.") from None
        if err["type"] == "model_type" and not err["loc"]:
            raise BadRequestError("The request body must be a JSON object.") from None
        param = _param(tuple(err["loc"]))
        if err["type"] == "missing":
            message = f"Missing required parameter: '{param}'."
        else:
            message = f"Invalid value for '{param}': {err['msg']}."
        raise BadRequestError(message, param=param) from None


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"The request body exceeds the limit of {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"The request body exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def until_disconnect(request: Request, work: Awaitable[Reply]) -> Reply | None:
    """Run `work`, cancelling it (and so aborting the engine request) if the client leaves."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    return task.result() if not task.cancelled() else None


def _error_response(exc: BaseException) -> JSONResponse:
    status, body, headers = error_body(exc)
    if isinstance(exc, RayVLLMError) and exc.internal:
        log.warning("%s: %s", type(exc).__name__, exc.internal)
    elif not isinstance(exc, RayVLLMError):
        log.exception("unhandled error", exc_info=exc)
    return JSONResponse(body, status_code=status, headers=headers)


class ReplicaHeaderMiddleware:
    """Names the replica that served each response, so load tests and operators can see how
    requests spread. Plain ASGI: it touches the response start only, never the streamed body."""

    def __init__(self, app: ASGIApp, replica_id: str) -> None:
        self.app = app
        self.replica_id = replica_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REPLICA_HEADER, self.replica_id)
            await send(message)

        await self.app(scope, receive, send_named)


def _deployment(config: ServeConfig, name: str) -> DeploymentConfig:
    return next((m.deployment for m in config.models if m.name == name), DeploymentConfig())


def _context_len(config: ServeConfig, name: str) -> int | None:
    model = next((m for m in config.models if m.name == name), None)
    if model is not None and model.max_model_len is not None:
        return model.max_model_len
    return config.fake.max_model_len if config.engine is EngineKind.fake else None


def create_app(
    services: Mapping[str, ModelService],
    config: ServeConfig,
    *,
    lifespan: Callable[[FastAPI], Any] | None = None,
    admission: bool = True,
    limits_authority: Authority | None = None,
    replica_id: str | None = None,
) -> FastAPI:
    """`admission`: bound each model's in-flight and queued requests here (False where the
    services are remote and bound themselves). `limits_authority`: where rate-limit buckets
    live (default: this process's memory). `replica_id`: sent in the x-rayvllm-replica header
    (default: hostname-pid)."""
    default_model = config.models[0].name
    if admission:
        services = {
            name: admitted(s, _deployment(config, name), config.limits)
            for name, s in services.items()
        }
    limiter = RateLimiter(config.limits, limits_authority)
    keyring = keyring_for(config.auth)
    request_log.enable(config.logging)
    app = FastAPI(title="rayvllm", version=rayvllm.__version__, lifespan=lifespan)
    app.add_middleware(
        ReplicaHeaderMiddleware, replica_id=replica_id or f"{socket.gethostname()}-{os.getpid()}"
    )
    if keyring is not None:
        app.add_middleware(APIKeyMiddleware, keyring=keyring, open_routes=config.auth.open_routes)

    @app.exception_handler(RayVLLMError)
    async def _rayvllm_error(_: Request, exc: RayVLLMError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        err = RequestError(str(exc.detail))
        err.status_code = exc.status_code
        return _error_response(err)

    @app.exception_handler(Exception)
    async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
        return _error_response(exc)

    def _service(name: str | None) -> ModelService:
        service = services.get(name or default_model)
        if service is None:
            served = ", ".join(sorted(services))
            raise ModelNotFoundError(
                f"The model '{name}' does not exist. Served models: {served}.", param="model"
            )
        return service

    async def handle(request: Request, route: Route) -> Response:
        arrival = time.monotonic()
        model_label, status = "", 500
        caller = caller_id(request.state)
        body: BaseModel | None = None
        ledger = None
        streaming = False
        try:
            raw = await read_body(request, config.http.max_body_bytes)
            body = parse_body(raw, REQUEST_MODELS[route])
            service = _service(getattr(body, "model", None))
            model_label = service.name
            if limiter.active:
                tokens = reserved_tokens(body, _context_len(config, service.name))
                ledger = limiter.ledger(await limiter.admit(caller, tokens))
            open_ledger(ledger)  # the generation records its real usage in it
            if getattr(body, "stream", False):
                reply = await service.call(route, body, arrival)
            else:
                maybe = await until_disconnect(request, service.call(route, body, arrival))
                if maybe is None:
                    status = 499
                    return Response(status_code=499)
                reply = maybe
            status = reply.status if isinstance(reply, JSONReply) else 200
            if isinstance(reply, JSONReply):
                return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)
            if ledger is not None:
                streaming = True
                when_done(reply, lambda: ledger.close(200))
            assert isinstance(reply, StreamReply)
            return StreamingResponse(
                reply.chunks, media_type=reply.media_type, headers=reply.headers
            )
        except Exception as exc:
            status = error_body(exc)[0]
            return _error_response(exc)
        finally:
            if ledger is not None and not streaming:
                ledger.close(status)
            seconds = time.monotonic() - arrival
            metrics.REQUESTS.labels(route.value, model_label, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(route.value, model_label).observe(seconds)
            request_log.log_request(
                config.logging,
                route=route.value,
                model=model_label,
                status=status,
                seconds=seconds,
                caller=caller,
                body=body,
            )

    @app.post(Route.chat.value, openapi_extra=request_body(REQUEST_MODELS[Route.chat]))
    async def chat_completions(request: Request) -> Response:
        return await handle(request, Route.chat)

    @app.post(
        Route.completions.value, openapi_extra=request_body(REQUEST_MODELS[Route.completions])
    )
    async def completions(request: Request) -> Response:
        return await handle(request, Route.completions)

    @app.post(Route.legacy.value, openapi_extra=request_body(REQUEST_MODELS[Route.legacy]))
    async def legacy_vllm(request: Request) -> Response:
        return await handle(request, Route.legacy)

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "rayvllm"}
            for name in services
        ]
        return {"object": "list", "data": data}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        states = {name: await s.ready() for name, s in services.items()}
        ok = all(states.values())
        return JSONResponse({"ready": ok, "models": states}, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/version")
    async def version() -> dict[str, str]:
        return {"version": rayvllm.__version__}

    return app


def engine_lifespan(engines: list[Any]) -> Callable[[FastAPI], Any]:
    """Start engines when a standalone server starts and stop them when it stops."""

    def _log_start_failure(task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("engine failed to start", exc_info=task.exception())

    async def start_all() -> None:
        await asyncio.gather(*(e.start() for e in engines))
        # What bare vLLM's server and Ray Serve's replicas do once started: the startup heap
        # (vLLM, torch, transformers: ~600k objects) lives as long as the server, and a full
        # collection that scans it stalled this event loop for 0.3 s (measured here).
        gc.collect()
        gc.freeze()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Start in the background so /health answers and /ready says 503 while models load.
        starting = asyncio.ensure_future(start_all())
        starting.add_done_callback(_log_start_failure)
        try:
            yield
        finally:
            starting.cancel()
            for engine in engines:
                await engine.shutdown()

    return lifespan
