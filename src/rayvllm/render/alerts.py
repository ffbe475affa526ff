"""The PrometheusRule of SLO alerts: p99 TTFT and TPOT error-budget burn (multi-window, as in
the Google SRE workbook), engine queue and KV-cache saturation, 5xx and 503 ratios, and Serve
replicas below the configured minimum. Targets come from RenderOptions."""

from __future__ import annotations

from typing import Any

from rayvllm.config import ServeConfig
from rayvllm.render import labels
from rayvllm.render.options import RenderOptions, bucket_label
from rayvllm.render.sizing import replica_bounds

SLO_OBJECTIVE = 0.99  # "p99 below target" = 99 % of requests faster than the target
# (long window, short window, burn rate, for, severity): a fast burn pages, a slow one warns.
BURN_WINDOWS = (
    ("1h", "5m", 14.4, "2m", "critical"),
    ("6h", "30m", 6.0, "15m", "warning"),
)


def serve_deployment_name(model_name: str) -> str:
    """The Ray Serve deployment name of a model; mirrors rayvllm.deployment.app."""
    return "model-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in model_name)


def render_prometheus_rule(config: ServeConfig, options: RenderOptions) -> dict[str, Any]:
    name = options.rayservice_name(config.app_name)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": labels.metadata(
            name, options.namespace, f"{name}-slo", release=options.prometheus_release
        ),
        "spec": {"groups": rule_groups(config, options)},
    }


def rule_groups(config: ServeConfig, options: RenderOptions) -> list[dict[str, Any]]:
    ns = f'namespace="{options.namespace}"'
    rules = [
        *_latency_burn(
            "TTFT",
            "time to first token",
            "rayvllm_time_to_first_token_seconds",
            options.ttft_target_s,
            ns,
        ),
        *_latency_burn(
            "TPOT",
            "time per output token",
            "rayvllm_time_per_output_token_seconds",
            options.tpot_target_s,
            ns,
        ),
        _alert(
            "RayvllmEngineQueueSaturated",
            f"max by (namespace, model_name) (vllm:num_requests_waiting{{{ns}}}) "
            f"> {options.waiting_requests_max}",
            "5m",
            "warning",
            "vLLM queue of {{ $labels.model_name }} is backing up",
            f"An engine of {{{{ $labels.model_name }}}} in {{{{ $labels.namespace }}}} has had "
            f"more than {options.waiting_requests_max} requests waiting for 5 minutes: add "
            "replicas (raise max_replicas) or lower max_ongoing_requests.",
        ),
        _alert(
            "RayvllmKVCacheNearlyFull",
            f"max by (namespace, model_name) (vllm:kv_cache_usage_perc{{{ns}}}) "
            f"> {options.kv_cache_usage_max}",
            "10m",
            "warning",
            "KV cache of {{ $labels.model_name }} is nearly full",
            f"An engine of {{{{ $labels.model_name }}}} in {{{{ $labels.namespace }}}} has used "
            f"more than {options.kv_cache_usage_max:.0%} of its KV cache for 10 minutes: "
            "requests will be preempted. Add replicas or lower max_num_seqs.",
        ),
        _alert(
            "RayvllmServerErrors",
            _status_ratio(ns, 'status=~"5..",status!="503"') + f" > {options.error_ratio_max}",
            "5m",
            "critical",
            "{{ $labels.model }} answers with server errors",
            f"More than {options.error_ratio_max:.0%} of requests to {{{{ $labels.model }}}} in "
            "{{ $labels.namespace }} got a 5xx other than 503 over 5 minutes: see the replica "
            "logs (`kubectl logs` on the worker pods).",
        ),
        _alert(
            "RayvllmOverloaded",
            _status_ratio(ns, 'status="503"') + f" > {options.overload_ratio_max}",
            "5m",
            "warning",
            "{{ $labels.model }} sheds load with 503s",
            f"More than {options.overload_ratio_max:.0%} of requests to {{{{ $labels.model }}}} "
            "in {{ $labels.namespace }} were refused with 503 over 5 minutes: the replicas' "
            "queues are full. Raise max_replicas or max_queued_requests.",
        ),
        *_replicas_below_minimum(config, options),
    ]
    name = options.rayservice_name(config.app_name)
    return [{"name": f"rayvllm-{name}-slo", "rules": rules}]


def _latency_burn(
    short: str, what: str, metric: str, target_s: float, ns: str
) -> list[dict[str, Any]]:
    budget = 1 - SLO_OBJECTIVE
    le = bucket_label(target_s)
    alerts = []
    for long_w, short_w, burn, for_, severity in BURN_WINDOWS:
        threshold = round(burn * budget, 6)
        slow = " and ".join(
            f"{_slow_share(metric, le, ns, window)} > {threshold}" for window in (long_w, short_w)
        )
        speed = "fast" if severity == "critical" else "slow"
        alerts.append(
            _alert(
                f"Rayvllm{short}BudgetBurn{speed.capitalize()}",
                slow,
                for_,
                severity,
                f"p99 {what} of {{{{ $labels.model }}}} is above {le}s",
                f"More than {budget:.0%} of requests to {{{{ $labels.model }}}} in "
                f"{{{{ $labels.namespace }}}} took longer than {le}s ({short}) over the last "
                f"{long_w} and {short_w}: the error budget burns {burn:g}x too fast.",
            )
        )
    return alerts


def _slow_share(metric: str, le: str, ns: str, window: str) -> str:
    total = f"sum by (namespace, model) (rate({metric}_count{{{ns}}}[{window}]))"
    fast = f'sum by (namespace, model) (rate({metric}_bucket{{{ns},le="{le}"}}[{window}]))'
    return f"(({total} - {fast}) / {total})"


def _status_ratio(ns: str, matcher: str) -> str:
    part = f"sum by (namespace, model) (rate(rayvllm_requests_total{{{ns},{matcher}}}[5m]))"
    whole = f"sum by (namespace, model) (rate(rayvllm_requests_total{{{ns}}}[5m]))"
    return f"({part} / {whole})"


def _replicas_below_minimum(config: ServeConfig, options: RenderOptions) -> list[dict[str, Any]]:
    ns = f'namespace="{options.namespace}"'
    alerts = []
    for model in config.models:
        minimum = replica_bounds(model)[0]
        if minimum == 0:
            continue
        series = (
            f'ray_serve_deployment_replica_healthy{{{ns},application="{config.app_name}",'
            f'deployment="{serve_deployment_name(model.name)}"}}'
        )
        rule = _alert(
            "RayvllmReplicasBelowMinimum",
            # `or vector(0)`: a deployment with no series at all has no healthy replica either.
            f"(sum({series}) or vector(0)) < {minimum}",
            "5m",
            "critical",
            f"{model.name} has fewer healthy replicas than its minimum of {minimum}",
            f"Ray Serve in {options.namespace} has had fewer than {minimum} healthy replicas of "
            f"{model.name} for 5 minutes: check `kubectl get pods` for pending GPU workers and "
            "the Serve controller log on the head.",
        )
        rule["labels"]["model"] = model.name
        rule["labels"]["namespace"] = options.namespace
        alerts.append(rule)
    return alerts


def _alert(
    name: str, expr: str, for_: str, severity: str, summary: str, description: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }
