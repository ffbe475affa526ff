"""Grafana gets our dashboard and Ray's Serve dashboards by themselves (ConfigMaps its sidecar
loads by label), and every series a panel or an alert asks for is one that is exported."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
from render_cases import of_kind

from rayvllm.render.monitoring import DASHBOARDS, dashboard_json
from rayvllm.server import metrics

METRIC = re.compile(r"\b(rayvllm_[a-z_]+|vllm:[a-z_]+)")


def exported_rayvllm_series() -> set[str]:
    names = set()
    for metric in metrics.ALL:
        spec = metric.spec
        if spec.kind == "counter":
            names.add(f"{spec.name}_total")
        elif spec.kind == "histogram":
            names |= {f"{spec.name}_{s}" for s in ("bucket", "sum", "count")}
        else:
            names.add(spec.name)
    return names


def exported_vllm_series() -> set[str]:
    spec = importlib.util.find_spec("vllm")
    if spec is None or spec.origin is None:
        pytest.skip("vllm is not installed: cannot list its metric names")
    source = (Path(spec.origin).parent / "v1" / "metrics" / "loggers.py").read_text()
    names = set()
    for name in re.findall(r'name="(vllm:[a-z_]+)"', source):
        names |= {name, f"{name}_total", f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def our_queries() -> list[str]:
    panels = dashboard_json("rayvllm.json")["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_dashboards_ship_as_configmaps_grafana_loads_by_label() -> None:
    maps = of_kind("gpu", "ConfigMap")
    assert len(maps) == len(DASHBOARDS)
    uids = set()
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["namespace"] == "monitoring"
        ((key, body),) = cm["data"].items()
        assert key.endswith(".json")
        # Client-side `kubectl apply` keeps a copy in a 256 KiB annotation.
        assert len(body.encode()) < 250_000, key
        uids.add(json.loads(body)["uid"])
    assert len(uids) == len(maps)


def test_every_series_our_dashboard_queries_is_exported() -> None:
    known = exported_rayvllm_series() | exported_vllm_series()
    used = {name for expr in our_queries() for name in METRIC.findall(expr)}
    assert used - known == set()
    assert {n for n in used if n.startswith("rayvllm_")} >= {
        "rayvllm_requests_total",
        "rayvllm_requests_in_flight",
        "rayvllm_tokens_total",
        "rayvllm_ingress_seconds_bucket",
        "rayvllm_queue_seconds_bucket",
        "rayvllm_prefill_seconds_bucket",
        "rayvllm_decode_seconds_bucket",
        "rayvllm_time_to_first_token_seconds_bucket",
        "rayvllm_time_per_output_token_seconds_bucket",
    }
    assert {n for n in used if n.startswith("vllm:")} >= {
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:inter_token_latency_seconds_bucket",
    }


def test_every_series_an_alert_uses_is_exported() -> None:
    (rule,) = of_kind("gpu", "PrometheusRule")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used - (exported_rayvllm_series() | exported_vllm_series()) == set()


def test_latency_panels_show_p50_and_p99() -> None:
    quantiles = re.compile(r"histogram_quantile\((0\.5|0\.99),")
    titles = {}
    for panel in dashboard_json("rayvllm.json")["panels"]:
        found = {q for t in panel.get("targets", []) for q in quantiles.findall(t["expr"])}
        titles[panel["title"]] = found
    for title in (
        "Time to first token (p50, p99)",
        "Time per output token (p50, p99)",
        "vLLM time to first token (p50, p99)",
        "vLLM inter-token latency (p50, p99)",
    ):
        assert titles[title] == {"0.5", "0.99"}


def test_our_dashboard_filters_by_namespace_and_model() -> None:
    for expr in our_queries():
        if "vector(0)" in expr and "rate(" not in expr:
            continue
        assert 'namespace=~"$namespace"' in expr, expr
        assert 'model=~"$model"' in expr or 'model_name=~"$model"' in expr, expr


def test_packaged_ray_dashboards_are_what_the_installed_ray_writes() -> None:
    # The files are what `ray start --head` writes under
    # /tmp/ray/session_latest/metrics/grafana/dashboards/ (same generator, no cluster needed).
    factory = pytest.importorskip("ray.dashboard.modules.metrics.grafana_dashboard_factory")
    generators: dict[str, Any] = {
        "ray/serve_grafana_dashboard.json": factory.generate_serve_grafana_dashboard,
        "ray/serve_deployment_grafana_dashboard.json": (
            factory.generate_serve_deployment_grafana_dashboard
        ),
        "ray/default_grafana_dashboard.json": factory.generate_default_grafana_dashboard,
    }
    assert set(generators) == {f for f in DASHBOARDS.values() if f.startswith("ray/")}
    for file, generate in generators.items():
        content, _uid = generate()
        assert dashboard_json(file) == json.loads(content), f"{file}: regenerate it from Ray"
