"""Scraping and dashboards for kube-prometheus-stack: a ServiceMonitor for the head, a PodMonitor
for the workers, and Grafana dashboards as ConfigMaps its sidecar loads by label."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from rayvllm.config import ServeConfig
from rayvllm.render import labels
from rayvllm.render.network import metrics_ports
from rayvllm.render.options import RenderOptions

# ConfigMap name suffix -> dashboard file under rayvllm/dashboards/.
DASHBOARDS: dict[str, str] = {
    "rayvllm": "rayvllm.json",
    "ray-serve": "ray/serve_grafana_dashboard.json",
    "ray-serve-deployment": "ray/serve_deployment_grafana_dashboard.json",
    "ray-default": "ray/default_grafana_dashboard.json",
}

# Under Ray, metrics recorded through ray.util.metrics (vLLM's RayPrometheusStatLogger, say)
# leave the node's exporter as ray_<name>, with ':' turned into '_'. Renaming them back at scrape
# time lets one dashboard and one rule file serve standalone and Ray deployments alike.
METRIC_RENAMES: tuple[tuple[str, str], ...] = (
    ("ray_vllm_(.+)", "vllm:$1"),
    ("ray_(rayvllm_.+)", "$1"),
)


def dashboard_json(file: str) -> dict[str, Any]:
    text = resources.files("rayvllm").joinpath("dashboards", file).read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def render_service_monitor(config: ServeConfig, options: RenderOptions) -> dict[str, Any]:
    name = options.rayservice_name(config.app_name)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": labels.metadata(
            name, options.namespace, f"{name}-head", release=options.prometheus_release
        ),
        "spec": {
            "jobLabel": "app.kubernetes.io/component",
            "namespaceSelector": {"matchNames": [options.namespace]},
            "selector": {
                "matchLabels": {
                    **labels.selector(name),
                    "app.kubernetes.io/component": "head-metrics",
                }
            },
            "endpoints": [_endpoint(port) for port in metrics_ports(config, options)],
            "targetLabels": ["app.kubernetes.io/instance"],
        },
    }


def render_pod_monitor(config: ServeConfig, options: RenderOptions) -> dict[str, Any]:
    name = options.rayservice_name(config.app_name)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": labels.metadata(
            name, options.namespace, f"{name}-workers", release=options.prometheus_release
        ),
        "spec": {
            "jobLabel": "app.kubernetes.io/component",
            "namespaceSelector": {"matchNames": [options.namespace]},
            "selector": {"matchLabels": {**labels.selector(name), labels.NODE_TYPE: labels.WORKER}},
            "podMetricsEndpoints": [_endpoint("metrics")],
            "podTargetLabels": ["app.kubernetes.io/instance"],
        },
    }


def render_dashboards(config: ServeConfig, options: RenderOptions) -> list[dict[str, Any]]:
    """One ConfigMap per dashboard, shared by every RayService (same names, same content)."""
    maps = []
    for suffix, file in DASHBOARDS.items():
        # Compact JSON: Ray's default dashboard is 220 kB indented, and client-side
        # `kubectl apply` copies the object into a 256 kB annotation.
        body = json.dumps(dashboard_json(file), separators=(",", ":"), sort_keys=True)
        common = labels.common_labels("")
        del common["app.kubernetes.io/instance"]
        maps.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"rayvllm-dashboard-{suffix}",
                    "namespace": options.monitoring_namespace,
                    "labels": {**common, "grafana_dashboard": "1"},
                },
                "data": {f"{suffix}.json": body},
            }
        )
    return maps


def _endpoint(port: str) -> dict[str, Any]:
    return {
        "port": port,
        "interval": "15s",
        "relabelings": [
            # Ray's dashboards filter by cluster on this label (KubeRay's own monitor does it).
            {
                "action": "replace",
                "sourceLabels": ["__meta_kubernetes_pod_label_ray_io_cluster"],
                "targetLabel": "ray_io_cluster",
            }
        ],
        "metricRelabelings": [
            {
                "action": "replace",
                "sourceLabels": ["__name__"],
                "regex": regex,
                "targetLabel": "__name__",
                "replacement": replacement,
            }
            for regex, replacement in METRIC_RENAMES
        ],
    }
