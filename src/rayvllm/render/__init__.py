"""Kubernetes manifests from a ServeConfig: the RayService, its network and disruption policy,
monitors, SLO alerts and Grafana dashboards. Pure data: no cluster, no ray import."""

from rayvllm.render.manifests import render_manifests, to_yaml, write_manifests
from rayvllm.render.options import RenderOptions

__all__ = ["RenderOptions", "render_manifests", "to_yaml", "write_manifests"]
