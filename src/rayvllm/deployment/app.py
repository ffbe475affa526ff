"""The Ray Serve application: one deployment per model behind one ingress. The only module that
imports ray, with shared_limits.py. With a single model its deployment is the ingress itself, so
tokens cross no extra Ray hop; with several, a router ingress forwards each request to its model's
deployment."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, cast

from pydantic import BaseModel
from ray import serve
from ray.serve import Application
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle

from rayvllm.config import LimitsConfig, ModelConfig, ServeConfig
from rayvllm.deployment.shared_limits import buckets_actor, shared_authority, uses_shared_limits
from rayvllm.engine.factory import make_engine
from rayvllm.errors import OverloadedError, RayVLLMError, error_body
from rayvllm.server import metrics
from rayvllm.server.admission import admitted, serve_max_ongoing
from rayvllm.server.app import create_app
from rayvllm.server.services import LocalService, ModelService, Route
from rayvllm.server.serving import JSONReply, Reply, StreamReply


class _RayMetricSink:
    """One rayvllm metric through Ray's per-node exporter: in a KubeRay cluster that exporter is
    what Prometheus scrapes, while a replica's own /metrics is one replica behind a balancer."""

    def __init__(self, spec: metrics.MetricSpec) -> None:
        from ray.util import metrics as ray_metrics

        self._kind = spec.kind
        self._gauge: dict[tuple[str, ...], float] = {}
        self._metric: Any
        if spec.kind == "counter":
            self._metric = ray_metrics.Counter(spec.name, spec.doc, spec.labelnames)
        elif spec.kind == "gauge":
            self._metric = ray_metrics.Gauge(spec.name, spec.doc, spec.labelnames)
        else:
            self._metric = ray_metrics.Histogram(
                spec.name, spec.doc, list(spec.buckets), spec.labelnames
            )

    def record(self, op: str, value: float, labels: dict[str, str]) -> None:
        if self._kind == "counter":
            self._metric.inc(value, labels)
        elif self._kind == "histogram":
            self._metric.observe(value, labels)
        else:
            key = tuple(labels.values())
            if op == "set":
                level = value
            else:
                level = self._gauge.get(key, 0.0) + (value if op == "inc" else -value)
            self._gauge[key] = level
            self._metric.set(level, labels)


_ray_sink_installed = False


def _export_metrics_to_ray() -> None:
    global _ray_sink_installed
    if not _ray_sink_installed:
        metrics.install_sink(_RayMetricSink)
        _ray_sink_installed = True


class ModelServer:
    """A replica of one model behind the router: its engine, called through its handle."""

    async def __init__(self, config: ServeConfig, model_name: str) -> None:  # type: ignore[misc]
        _export_metrics_to_ray()
        self._config = config
        engine = make_engine(config, config.model(model_name))
        await engine.start()  # returns after a warm-up generation: the replica is ready
        self._service = LocalService(engine, request_timeout_s=config.http.request_timeout_s)
        model = config.model(model_name)
        self._admitted = admitted(self._service, model.deployment, config.limits)

    async def check_health(self) -> None:
        await self._service.engine.check_health()

    def __del__(self) -> None:
        # Ray Serve calls __del__ when it stops a replica (scale-down, redeploy, shutdown).
        service = getattr(self, "_service", None)
        if service is not None:
            service.engine.close()

    async def ready(self) -> bool:
        return await self._service.ready()

    async def call_remote(self, route: Route, body: BaseModel) -> AsyncIterator[Any]:
        """For the router: a reply header tuple first, then the stream's chunks, if any."""
        try:
            reply = await self._admitted.call(route, body, time.monotonic())
        except RayVLLMError as exc:
            status, err, headers = error_body(exc)
            yield ("json", status, err, headers)
            return
        if isinstance(reply, JSONReply):
            yield ("json", reply.status, reply.body, reply.headers)
            return
        yield ("stream", reply.media_type, reply.headers)
        async for chunk in reply.chunks:
            yield chunk


@serve.ingress()
class IngressModelServer(ModelServer):
    """A replica of the only model, serving HTTP itself: tokens cross no Ray hop of ours."""

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(
            {self._service.name: self._service},
            self._config,
            limits_authority=shared_authority(self._config),
            replica_id=_replica_id(),
        )


def _replica_id() -> str:
    """This replica's id as Serve's controller log names it."""
    return serve.get_replica_context().replica_id.unique_id


class RemoteService:
    """A model served by another deployment, reached through its handle."""

    def __init__(self, name: str, handle: DeploymentHandle[Any]) -> None:
        self.name = name
        self._handle = handle.options(stream=True)
        self._ready_handle = handle

    async def call(self, route: Route, body: BaseModel, arrival: float) -> Reply:
        stream: Any = self._handle.call_remote.remote(route, body)
        try:
            head = await stream.__anext__()
        except BackPressureError as exc:  # Serve's last-resort bound: answer in OpenAI's shape
            err = OverloadedError(
                f"The model '{self.name}' is overloaded. Retry shortly.",
                retry_after_s=exc.retry_after_s,
            )
            err.status_code = exc.status_code
            raise err from None
        if head[0] == "json":
            return JSONReply(body=head[2], status=head[1], headers=head[3])
        return StreamReply(chunks=_rest(stream), media_type=head[1], headers=head[2])

    async def ready(self) -> bool:
        return bool(await self._ready_handle.ready.remote())


async def _rest(stream: Any) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk


@serve.ingress()
class Router:
    """The ingress when several models are served: routes each request by its `model`."""

    def __init__(self, config: ServeConfig, handles: dict[str, DeploymentHandle[Any]]) -> None:
        _export_metrics_to_ray()
        self._services: dict[str, ModelService] = {
            name: RemoteService(name, handle) for name, handle in handles.items()
        }
        self._config = config

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(
            self._services,
            self._config,
            admission=False,
            limits_authority=shared_authority(self._config),
            replica_id=_replica_id(),
        )


# Ray starts its workers at nice 15, and a replica's vLLM EngineCore and worker processes inherit
# that: on a busy node the engine then yields its cores to any normal process (a client, a
# sidecar, another server). `vllm serve` runs at nice 0, and so do our engines.
ENGINE_REPLICA_ENV = {"RAY_worker_niceness": "0"}


def deployment_options(model: ModelConfig, limits: LimitsConfig | None = None) -> dict[str, Any]:
    d = model.deployment
    limits = limits or LimitsConfig()
    options: dict[str, Any] = {
        "name": _deployment_name(model.name),
        "max_ongoing_requests": serve_max_ongoing(d),
        # Our admission bounds the queue; Serve's own bound would refuse bursts in plain text
        # (see serve_max_ongoing).
        "max_queued_requests": -1,
        "backpressure_config": {
            "status_code": limits.overload_status,
            "retry_after_s": limits.overload_retry_after_s,
        },
        "ray_actor_options": {
            **d.ray_actor_options.model_dump(exclude_none=True),
            "runtime_env": {"env_vars": dict(ENGINE_REPLICA_ENV)},
        },
        "graceful_shutdown_timeout_s": d.graceful_shutdown_timeout_s,
        "graceful_shutdown_wait_loop_s": d.graceful_shutdown_wait_loop_s,
        "health_check_period_s": d.health_check_period_s,
        "health_check_timeout_s": d.health_check_timeout_s,
    }
    if d.autoscaling is not None:
        a = d.autoscaling
        options["autoscaling_config"] = {
            "min_replicas": a.min_replicas,
            "max_replicas": a.max_replicas,
            "initial_replicas": a.initial_replicas,
            "target_ongoing_requests": a.target_ongoing_requests,
            "upscale_delay_s": a.upscale_delay_s,
            "downscale_delay_s": a.downscale_delay_s,
        }
    else:
        options["num_replicas"] = d.num_replicas
    return options


def _deployment_name(model_name: str) -> str:
    return "model-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in model_name)


def build_app(args: ServeConfig | dict[str, Any]) -> Application:
    """The app builder `import_path` points at; `args` is the ServeConfig, as a dict in YAML."""
    config = args if isinstance(args, ServeConfig) else ServeConfig.model_validate(args)
    if uses_shared_limits(config):
        buckets_actor(config)  # created here, before any replica looks it up by name
    if len(config.models) == 1:
        only = config.models[0]
        ingress = _deployment(IngressModelServer).options(**deployment_options(only, config.limits))
        return cast(Application, ingress.bind(config, only.name))
    bound = {
        m.name: _deployment(ModelServer)
        .options(**deployment_options(m, config.limits))
        .bind(config, m.name)
        for m in config.models
    }
    router = _deployment(Router).options(name="router", num_replicas=1)
    return cast(Application, router.bind(config, bound))


def _deployment(cls: type) -> Any:
    # serve.deployment's overloads type a bare class argument as the decorator-factory form.
    return serve.deployment(cls)
