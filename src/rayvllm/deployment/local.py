"""Running a ServeConfig from the command line: on Ray Serve (local or joined cluster), or
standalone under uvicorn. Embedded checkpoints are prepared here first, so their conversion
progress shows in the user's terminal rather than in a replica's log."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from rich.console import Console

from rayvllm.config import EngineKind, ServeConfig
from rayvllm.deployment.serve_config import ray_env_vars

console = Console(stderr=True)
log = logging.getLogger("rayvllm")


def prepare_models(config: ServeConfig) -> None:
    if config.engine is not EngineKind.vllm:
        return
    from rayvllm.models.embedded import resolve_source

    for model in config.models:
        if model.is_embedded:
            resolve_source(model.source)


def run_standalone(config: ServeConfig) -> None:
    import uvicorn

    from rayvllm.engine.factory import make_engine
    from rayvllm.server.app import create_app, engine_lifespan
    from rayvllm.server.services import LocalService

    engines = [make_engine(config, m) for m in config.models]
    services = {
        e.model_name: LocalService(e, request_timeout_s=config.http.request_timeout_s)
        for e in engines
    }
    app = create_app(services, config, lifespan=engine_lifespan(engines))
    console.print(f"rayvllm (standalone) on http://{config.http.host}:{config.http.port}")
    uvicorn.run(
        app,
        host=config.http.host,
        port=config.http.port,
        log_level="warning",
        timeout_graceful_shutdown=int(config.models[0].deployment.graceful_shutdown_timeout_s),
    )


def run_ray(config: ServeConfig, *, address: str | None) -> None:
    for key, value in ray_env_vars(config).items():
        os.environ.setdefault(key, value)  # local Ray processes inherit the driver's env
    import ray
    from ray import serve

    from rayvllm.deployment.app import build_app

    ray.init(
        address=address,
        namespace="rayvllm",
        log_to_driver=True,
        # None (Ray's default) when joining: the cluster's head already decided.
        include_dashboard=None if address else config.local_ray.dashboard,
    )
    serve.start(
        http_options={
            "host": config.http.host,
            "port": config.http.port,
            "request_timeout_s": config.http.request_timeout_s,
        }
    )
    url = f"http://{config.http.host}:{config.http.port}"
    with console.status(f"Starting {', '.join(m.name for m in config.models)} ..."):
        started = time.monotonic()
        serve.run(build_app(config), name=config.app_name, route_prefix="/", blocking=False)
    console.print(
        f"[green]ready[/] in {time.monotonic() - started:.0f} s: {url}/v1 "
        f"(models: {', '.join(m.name for m in config.models)}). Ctrl-C stops."
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    console.print("stopping: in-flight requests may finish ...")
    # serve.shutdown() alone stops the proxies (HAProxy) at once and cuts every open stream.
    # Deleting the app first drains its replicas (up to graceful_shutdown_timeout_s) while the
    # proxies still carry their streams; new requests meanwhile get a clean refusal.
    try:
        serve.delete(config.app_name)
    except Exception:  # a broken Serve must not keep us from stopping Ray
        log.exception("draining %s failed; shutting down anyway", config.app_name)
    serve.shutdown()  # type: ignore[no-untyped-call]
    ray.shutdown()
