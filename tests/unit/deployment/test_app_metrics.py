"""rayvllm's metrics through Ray's node exporter: a gauge's level is kept per label set, moved
by inc/dec and replaced by set (the last-abort timestamp)."""

from __future__ import annotations

from typing import Any

import pytest

from rayvllm.server import metrics

pytest.importorskip("ray")
from ray.util import metrics as ray_metrics

from rayvllm.deployment import app


class RecordingGauge:
    def __init__(self, name: str, description: str, tag_keys: tuple[str, ...]) -> None:
        self.levels: list[tuple[float, dict[str, str]]] = []

    def set(self, value: float, tags: dict[str, str]) -> None:
        self.levels.append((value, tags))


def test_gauge_levels_follow_inc_dec_and_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_metrics, "Gauge", RecordingGauge)
    sink = app._RayMetricSink(metrics.ENGINE_LAST_ABORT.spec)
    gauge: Any = sink._metric
    a = {"model": "m", "reason": "closed"}
    b = {"model": "m", "reason": "timeout"}
    sink.record("inc", 1, a)
    sink.record("inc", 1, a)
    sink.record("dec", 1, a)
    sink.record("set", 1700000000.5, b)
    sink.record("inc", 1, a)
    assert [v for v, _ in gauge.levels] == [1, 2, 1, 1700000000.5, 2]
    assert gauge.levels[3][1] == b
