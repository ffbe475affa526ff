"""rayvllm's own Prometheus metrics: request counts and the per-request latency breakdown
(ingress -> queued before the engine -> prefill to first token -> decode). vLLM's engine metrics
(`vllm:*`) live in the same default registry and are exported beside these on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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

REQUESTS = Counter(
    "rayvllm_requests",
    "HTTP requests answered, by route, model and status code.",
    ["route", "model", "status"],
)
IN_FLIGHT = Gauge(
    "rayvllm_requests_in_flight",
    "Requests admitted and not yet finished.",
    ["model"],
    multiprocess_mode="livesum",
)
REQUEST_SECONDS = Histogram(
    "rayvllm_request_duration_seconds",
    "End-to-end request latency inside the server.",
    ["route", "model"],
    buckets=LATENCY_BUCKETS,
)
INGRESS_SECONDS = Histogram(
    "rayvllm_ingress_seconds",
    "From request arrival to hand-off to the engine (parsing, validation, routing, tokenization).",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_SECONDS = Histogram(
    "rayvllm_queue_seconds",
    "Time a request waited in the engine's queue before its prefill.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
PREFILL_SECONDS = Histogram(
    "rayvllm_prefill_seconds",
    "From the engine scheduling a request to its first token.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
DECODE_SECONDS = Histogram(
    "rayvllm_decode_seconds",
    "From the first token to the last.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
TTFT_SECONDS = Histogram(
    "rayvllm_time_to_first_token_seconds",
    "From request arrival to the first generated token.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
TPOT_SECONDS = Histogram(
    "rayvllm_time_per_output_token_seconds",
    "Mean gap between output tokens of one request.",
    ["model"],
    buckets=TOKEN_LATENCY_BUCKETS,
)
TOKENS = Counter(
    "rayvllm_tokens",
    "Tokens processed, by model and kind (prompt or generation).",
    ["model", "kind"],
)
ENGINE_ABORTS = Counter(
    "rayvllm_engine_aborts",
    "Engine requests aborted (client gone, timeout or error).",
    ["model", "reason"],
)
