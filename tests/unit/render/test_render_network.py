"""Who reaches the pods: clients the Serve port only, Prometheus the metrics ports, KubeRay the
dashboard, Ray its own pods. And what may evict them: one worker at a time, never the head
unless GCS is fault tolerant."""

from __future__ import annotations

from typing import Any

from render_cases import of_kind

from rayvllm.render.labels import selector

DASHBOARD, CLIENT, SERVE, METRICS = 8265, 10001, 8000, 8080


def rules() -> list[dict[str, Any]]:
    (policy,) = of_kind("gpu", "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["podSelector"]["matchLabels"] == selector("mistral")
    ingress: list[dict[str, Any]] = policy["spec"]["ingress"]
    return ingress


def ports(rule: dict[str, Any]) -> set[int]:
    return {p["port"] for p in rule.get("ports", [])}


def test_anyone_reaches_the_serve_port_and_nothing_else() -> None:
    open_to_all = [r for r in rules() if "from" not in r]
    assert [ports(r) for r in open_to_all] == [{SERVE}]


def test_dashboard_and_ray_client_are_closed_to_clients_and_monitoring() -> None:
    for rule in rules():
        peers = rule.get("from", [])
        from_own_pods = any("podSelector" in p and "namespaceSelector" not in p for p in peers)
        if from_own_pods:
            continue
        assert CLIENT not in ports(rule)
        namespaces = {
            p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers
        }
        if DASHBOARD in ports(rule):
            assert namespaces == {"kuberay-system"}  # the operator deploys Serve through it


def test_metrics_are_open_to_the_monitoring_namespace() -> None:
    (rule,) = [r for r in rules() if METRICS in ports(r)]
    (peer,) = rule["from"]
    assert peer == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }


def test_ray_pods_talk_to_each_other_on_any_port() -> None:
    own = [
        r
        for r in rules()
        if r.get("from") == [{"podSelector": {"matchLabels": selector("mistral")}}]
    ]
    assert len(own) == 1 and "ports" not in own[0]


def test_disruption_budgets_keep_the_head_and_drain_workers_one_by_one() -> None:
    budgets = {b["metadata"]["name"]: b["spec"] for b in of_kind("gpu", "PodDisruptionBudget")}
    assert budgets["mistral-head"]["minAvailable"] == 1
    assert budgets["mistral-worker"]["maxUnavailable"] == 1
    assert budgets["mistral-worker"]["selector"]["matchLabels"]["ray.io/node-type"] == "worker"
    ha = of_kind("gpu-ha", "PodDisruptionBudget")
    with_redis = {b["metadata"]["name"]: b["spec"] for b in ha}
    assert with_redis["mistral-head"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {**selector("mistral"), "ray.io/node-type": "head"}},
    }


def test_metrics_service_selects_the_head_on_the_ports_the_monitor_scrapes() -> None:
    (service,) = of_kind("gpu", "Service")
    assert service["spec"]["selector"]["ray.io/node-type"] == "head"
    (monitor,) = of_kind("gpu", "ServiceMonitor")
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == {
        p["name"] for p in service["spec"]["ports"]
    }
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
