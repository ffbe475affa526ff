"""Every manifest `rayvllm render` writes, in apply order, one YAML file per kind of object:
`kubectl apply -f DIR` reads the files in name order, so the Namespace comes first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rayvllm.config import ServeConfig
from rayvllm.render.alerts import render_prometheus_rule
from rayvllm.render.monitoring import render_dashboards, render_pod_monitor, render_service_monitor
from rayvllm.render.network import (
    render_disruption_budgets,
    render_metrics_service,
    render_namespace,
    render_network_policy,
)
from rayvllm.render.options import RenderOptions
from rayvllm.render.rayservice import render_rayservice

HEADER = (
    "# Rendered by `rayvllm render` from a ServeConfig. Do not edit: change the config or the\n"
    "# render flags and render again.\n"
)
FILE_PATTERN = "[0-9][0-9]-*.yaml"


Manifests = dict[str, list[dict[str, Any]]]


def render_manifests(config: ServeConfig, options: RenderOptions) -> Manifests:
    """File name -> the objects it holds."""
    name = options.rayservice_name(config.app_name)
    return {
        "00-namespace.yaml": [render_namespace(name, options)],
        "10-rayservice.yaml": [render_rayservice(config, options)],
        "20-service.yaml": [render_metrics_service(config, options)],
        "30-networkpolicy.yaml": [render_network_policy(config, options)],
        "40-poddisruptionbudget.yaml": render_disruption_budgets(config, options),
        "50-monitors.yaml": [
            render_service_monitor(config, options),
            render_pod_monitor(config, options),
        ],
        "60-prometheusrule.yaml": [render_prometheus_rule(config, options)],
        "70-grafana-dashboards.yaml": render_dashboards(config, options),
    }


def to_yaml(docs: list[dict[str, Any]]) -> str:
    return HEADER + yaml.dump_all(docs, Dumper=_BlockDumper, sort_keys=False, width=100)


def write_manifests(config: ServeConfig, options: RenderOptions, out: Path) -> list[Path]:
    """Write the files under `out`, replacing what an earlier render left there."""
    files = render_manifests(config, options)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(FILE_PATTERN):
        if stale.name not in files:
            stale.unlink()
    written = []
    for file_name, docs in files.items():
        path = out / file_name
        path.write_text(to_yaml(docs))
        written.append(path)
    return written


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (serveConfigV2) as `|` blocks, so the config reads as YAML."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)
