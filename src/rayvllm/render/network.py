"""What reaches the RayService's pods and what may take them away: the Namespace, the head's
metrics Service, the NetworkPolicy and the PodDisruptionBudgets."""

from __future__ import annotations

from typing import Any

from rayvllm.config import ServeConfig
from rayvllm.render import labels
from rayvllm.render.options import RenderOptions
from rayvllm.render.rayservice import DASHBOARD_AGENT_PORT, DASHBOARD_PORT, METRICS_PORT
from rayvllm.render.sizing import plan_workers

AUTOSCALER_METRICS_PORT = 44217  # the KubeRay autoscaler sidecar's exporter
DASHBOARD_METRICS_PORT = 44227  # the Ray dashboard's own exporter


def metrics_ports(config: ServeConfig, options: RenderOptions) -> dict[str, int]:
    """The head's Prometheus endpoints, by Service port name."""
    ports = {"metrics": METRICS_PORT, "dash-metrics": DASHBOARD_METRICS_PORT}
    if plan_workers(config, options).autoscaling:
        ports["as-metrics"] = AUTOSCALER_METRICS_PORT
    return ports


def render_namespace(name: str, options: RenderOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": options.namespace,
            "labels": {
                **labels.common_labels(name),
                # KubeRay injects containers we do not template (init, autoscaler), so enforce
                # the baseline profile and report, not reject, what falls short of restricted.
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
            },
        },
    }


def render_metrics_service(config: ServeConfig, options: RenderOptions) -> dict[str, Any]:
    name = options.rayservice_name(config.app_name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": labels.metadata(
            name,
            options.namespace,
            f"{name}-head-metrics",
            **{"app.kubernetes.io/component": "head-metrics"},
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": {**labels.selector(name), labels.NODE_TYPE: labels.HEAD},
            "ports": [
                {"name": port_name, "port": port, "targetPort": port, "protocol": "TCP"}
                for port_name, port in metrics_ports(config, options).items()
            ],
        },
    }


def render_network_policy(config: ServeConfig, options: RenderOptions) -> dict[str, Any]:
    """Clients reach the Serve port only; Prometheus the metrics ports; the KubeRay operator the
    dashboard it deploys through. Ray's own traffic (GCS, raylets, object transfer on dynamic
    ports) flows between this RayService's pods only. Dashboard and Ray client stay closed."""
    name = options.rayservice_name(config.app_name)
    ours = {"podSelector": {"matchLabels": labels.selector(name)}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": labels.metadata(name, options.namespace, name),
        "spec": {
            "podSelector": {"matchLabels": labels.selector(name)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": [_tcp(config.http.port)]},
                {
                    "from": [_namespace(options.monitoring_namespace)],
                    "ports": [_tcp(p) for p in metrics_ports(config, options).values()],
                },
                {
                    "from": [_namespace(options.kuberay_namespace)],
                    "ports": [_tcp(DASHBOARD_PORT), _tcp(DASHBOARD_AGENT_PORT)],
                },
                {"from": [ours]},
            ],
        },
    }


def render_disruption_budgets(config: ServeConfig, options: RenderOptions) -> list[dict[str, Any]]:
    name = options.rayservice_name(config.app_name)
    # Without GCS fault tolerance an evicted head takes every replica with it, so a drain
    # has to be a deliberate delete; with it, the head comes back and Serve keeps serving.
    head_budget = {"maxUnavailable": 1} if options.redis_address else {"minAvailable": 1}
    return [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": labels.metadata(name, options.namespace, f"{name}-{role}"),
            "spec": {
                **budget,
                "selector": {"matchLabels": {**labels.selector(name), labels.NODE_TYPE: role}},
            },
        }
        for role, budget in ((labels.HEAD, head_budget), (labels.WORKER, {"maxUnavailable": 1}))
    ]


def _tcp(port: int) -> dict[str, Any]:
    return {"port": port, "protocol": "TCP"}


def _namespace(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
