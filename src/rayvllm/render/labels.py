"""The labels every rendered object carries, and the pod selectors built from them: the
NetworkPolicy, the PodDisruptionBudgets, the metrics Service and the monitors all select the
RayService's pods the same way."""

from __future__ import annotations

# KubeRay labels every pod it creates with its role in the Ray cluster.
NODE_TYPE = "ray.io/node-type"
HEAD = "head"
WORKER = "worker"


def common_labels(name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "rayvllm",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "rayvllm-render",
    }


def pod_labels(name: str, component: str) -> dict[str, str]:
    """Set on the pod templates; KubeRay copies them onto every head and worker pod."""
    return {**selector(name), "app.kubernetes.io/component": component}


def selector(name: str) -> dict[str, str]:
    """Every pod of this RayService, across the RayClusters an upgrade may run side by side."""
    return {"app.kubernetes.io/name": "rayvllm", "app.kubernetes.io/instance": name}


def metadata(name: str, namespace: str, object_name: str, **extra: str) -> dict[str, object]:
    return {
        "name": object_name,
        "namespace": namespace,
        "labels": {**common_labels(name), **extra},
    }
