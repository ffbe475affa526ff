"""rayvllm's own Prometheus metrics: request counts and the per-request latency breakdown
(ingress -> queued before the engine -> prefill to first token -> decode). vLLM's engine metrics
(`vllm:*`) live in the same default registry and are exported beside these on /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram


@dataclass(frozen=True)
class MetricSpec:
    kind: str  # counter | gauge | histogram
    name: str
    doc: str
    labelnames: tuple[str, ...]
    buckets: tuple[float, ...] = ()


class Sink(Protocol):
    """Somewhere else the same observations go (on Ray: the node's metrics exporter)."""

    def record(self, op: str, value: float, labels: dict[str, str]) -> None: ...


class _Child:
    __slots__ = ("_labels", "_prom", "_sinks")

    def __init__(self, prom: Any, sinks: list[Sink], labels: dict[str, str]) -> None:
        self._prom, self._sinks, self._labels = prom, sinks, labels

    def _send(self, op: str, value: float) -> None:
        for sink in self._sinks:
            sink.record(op, value, self._labels)

    def inc(self, amount: float = 1) -> None:
        self._prom.inc(amount)
        if self._sinks:
            self._send("inc", amount)

    def dec(self, amount: float = 1) -> None:
        self._prom.dec(amount)
        if self._sinks:
            self._send("dec", amount)

    def observe(self, value: float) -> None:
        self._prom.observe(value)
        if self._sinks:
            self._send("observe", value)

    def set(self, value: float) -> None:
        self._prom.set(value)
        if self._sinks:
            self._send("set", value)


class Metric:
    """A prometheus_client metric whose observations can also go to extra sinks."""

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec
        cls = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}[spec.kind]
        extra: dict[str, Any] = {"buckets": spec.buckets} if spec.buckets else {}
        self._prom = cls(spec.name, spec.doc, list(spec.labelnames), **extra)
        self._sinks: list[Sink] = []
        self._children: dict[tuple[str, ...], _Child] = {}

    def labels(self, *values: str) -> _Child:
        child = self._children.get(values)
        if child is None:
            labels = dict(zip(self.spec.labelnames, values, strict=True))
            child = _Child(self._prom.labels(*values), self._sinks, labels)
            self._children[values] = child
        return child

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)


ALL: list[Metric] = []


def _metric(
    kind: str, name: str, doc: str, labelnames: Sequence[str], buckets: Sequence[float] = ()
) -> Metric:
    metric = Metric(MetricSpec(kind, name, doc, tuple(labelnames), tuple(buckets)))
    ALL.append(metric)
    return metric


def install_sink(factory: Callable[[MetricSpec], Sink]) -> None:
    """Send every rayvllm metric to one more place as well (idempotent per process)."""
    for metric in ALL:
        metric.add_sink(factory(metric.spec))


# Buckets from 1 ms to 10 min: wide enough for a CPU prefill and a long decode.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
TOKEN_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
)

REQUESTS = _metric(
    "counter",
    "rayvllm_requests",
    "HTTP requests answered, by route, model and status code.",
    ["route", "model", "status"],
)
IN_FLIGHT = _metric(
    "gauge",
    "rayvllm_requests_in_flight",
    "Requests admitted and not yet finished.",
    ["model"],
)
REQUEST_SECONDS = _metric(
    "histogram",
    "rayvllm_request_duration_seconds",
    "End-to-end request latency inside the server.",
    ["route", "model"],
    buckets=LATENCY_BUCKETS,
)
INGRESS_SECONDS = _metric(
    "histogram",
    "rayvllm_ingress_seconds",
    "From request arrival to hand-off to the engine (parsing, validation, routing, tokenization).",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_SECONDS = _metric(
    "histogram",
    "rayvllm_queue_seconds",
    "Time a request waited in the engine's queue before its prefill.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
PREFILL_SECONDS = _metric(
    "histogram",
    "rayvllm_prefill_seconds",
    "From the engine scheduling a request to its first token.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
DECODE_SECONDS = _metric(
    "histogram",
    "rayvllm_decode_seconds",
    "From the first token to the last.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
TTFT_SECONDS = _metric(
    "histogram",
    "rayvllm_time_to_first_token_seconds",
    "From request arrival to the first generated token.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
TPOT_SECONDS = _metric(
    "histogram",
    "rayvllm_time_per_output_token_seconds",
    "Mean gap between output tokens of one request.",
    ["model"],
    buckets=TOKEN_LATENCY_BUCKETS,
)
TOKENS = _metric(
    "counter",
    "rayvllm_tokens",
    "Tokens processed, by model and kind (prompt or generation).",
    ["model", "kind"],
)
ENGINE_ABORTS = _metric(
    "counter",
    "rayvllm_engine_aborts",
    "Engine requests aborted (client gone, timeout or error).",
    ["model", "reason"],
)
ENGINE_LAST_ABORT = _metric(
    "gauge",
    "rayvllm_engine_last_abort_timestamp_seconds",
    "Unix time at which the latest engine request was aborted, by model and reason: with the "
    "time a client left, it tells how long the engine kept working for nobody.",
    ["model", "reason"],
)


def count_abort(model: str, reason: str) -> None:
    """One engine request aborted now: `reason` is `closed` (client gone) or `timeout`."""
    ENGINE_ABORTS.labels(model, reason).inc()
    ENGINE_LAST_ABORT.labels(model, reason).set(time.time())
