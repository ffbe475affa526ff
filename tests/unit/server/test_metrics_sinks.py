"""Every rayvllm metric can also go to a second sink (Ray's node exporter on a Ray cluster)."""

from __future__ import annotations

import time

from prometheus_client import generate_latest

from rayvllm.server import metrics


class RecordingSink:
    def __init__(self, spec: metrics.MetricSpec) -> None:
        self.spec = spec
        self.calls: list[tuple[str, float, dict[str, str]]] = []

    def record(self, op: str, value: float, labels: dict[str, str]) -> None:
        self.calls.append((op, value, labels))


def test_observations_reach_both_prometheus_and_the_sink() -> None:
    sinks: dict[str, RecordingSink] = {}

    def factory(spec: metrics.MetricSpec) -> RecordingSink:
        sinks[spec.name] = RecordingSink(spec)
        return sinks[spec.name]

    metrics.install_sink(factory)
    try:
        assert set(sinks) == {m.spec.name for m in metrics.ALL}
        metrics.REQUESTS.labels("/vllm", "sink-model", "200").inc()
        metrics.TTFT_SECONDS.labels("sink-model").observe(0.25)
        metrics.IN_FLIGHT.labels("sink-model").inc()
        metrics.IN_FLIGHT.labels("sink-model").dec()
        assert sinks["rayvllm_requests"].calls == [
            ("inc", 1, {"route": "/vllm", "model": "sink-model", "status": "200"})
        ]
        assert sinks["rayvllm_time_to_first_token_seconds"].calls == [
            ("observe", 0.25, {"model": "sink-model"})
        ]
        assert [c[0] for c in sinks["rayvllm_requests_in_flight"].calls] == ["inc", "dec"]
        metrics.count_abort("sink-model", "closed")
        assert [c[0] for c in sinks["rayvllm_engine_aborts"].calls] == ["inc"]
        [(op, stamp, labels)] = sinks["rayvllm_engine_last_abort_timestamp_seconds"].calls
        assert op == "set" and labels == {"model": "sink-model", "reason": "closed"}
        assert abs(stamp - time.time()) < 5
        assert sinks["rayvllm_time_to_first_token_seconds"].spec.buckets == metrics.LATENCY_BUCKETS
        text = generate_latest().decode()
        assert 'rayvllm_requests_total{model="sink-model",route="/vllm",status="200"} 1.0' in text
    finally:
        for metric in metrics.ALL:
            metric._sinks.clear()
