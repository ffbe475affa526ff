"""Every rendered object is one the API server would accept: built-in kinds against Kubernetes'
own schemas (strict: no unknown field), the RayService against KubeRay v1.7.0's CRD, the
prometheus-operator kinds against models generated from its CRDs."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from render_cases import CASES, all_docs, of_kind, validate_builtin, validate_rayservice

BUILTIN = {"Namespace", "Service", "NetworkPolicy", "PodDisruptionBudget", "ConfigMap"}
MONITORING = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


@pytest.mark.parametrize("case", CASES)
def test_every_kind_is_covered_by_a_schema(case: str) -> None:
    kinds = {doc["kind"] for doc in all_docs(case)}
    assert kinds == BUILTIN | MONITORING | {"RayService"}


@pytest.mark.parametrize("case", CASES)
def test_builtin_kinds_pass_kubernetes_validate_strict(case: str) -> None:
    for doc in all_docs(case):
        if doc["kind"] in BUILTIN:
            validate_builtin(doc)


def test_kubernetes_validate_would_catch_a_typo() -> None:
    service = copy.deepcopy(of_kind("gpu", "Service")[0])
    service["spec"]["ports"][0]["targetport"] = 8080
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_builtin(service)


@pytest.mark.parametrize("case", CASES)
def test_rayservice_passes_the_kuberay_crd_schema(case: str) -> None:
    (rayservice,) = of_kind(case, "RayService")
    validate_rayservice(rayservice)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda rs: rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0].pop("groupName"),
        lambda rs: rs["spec"]["rayClusterConfig"].update(enableInTreeAutoscaling="yes"),
        lambda rs: rs["spec"]["rayClusterConfig"]["headGroupSpec"].update(rayStartParam={}),
        lambda rs: rs["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"][
            "containers"
        ][0]["securityContext"].update(runAsNonroot=True),
    ],
    ids=["missing-group-name", "wrong-type", "unknown-field", "typo-in-pod-template"],
)
def test_crd_schema_would_catch_a_broken_rayservice(break_it: Any) -> None:
    rayservice = copy.deepcopy(of_kind("gpu", "RayService")[0])
    break_it(rayservice)
    with pytest.raises(jsonschema.ValidationError):
        validate_rayservice(rayservice)


@pytest.mark.parametrize("case", CASES)
def test_monitoring_kinds_have_their_required_fields(case: str) -> None:
    (service_monitor,) = of_kind(case, "ServiceMonitor")
    assert service_monitor["spec"]["selector"]["matchLabels"]
    assert all(e["port"] for e in service_monitor["spec"]["endpoints"])
    (pod_monitor,) = of_kind(case, "PodMonitor")
    assert pod_monitor["spec"]["selector"]["matchLabels"]
    assert all(e["port"] for e in pod_monitor["spec"]["podMetricsEndpoints"])
    (rule,) = of_kind(case, "PrometheusRule")
    for group in rule["spec"]["groups"]:
        assert group["name"]
        assert all(r["alert"] and r["expr"] for r in group["rules"])
    for doc in (service_monitor, pod_monitor, rule):
        assert doc["apiVersion"] == "monitoring.coreos.com/v1"
        validate_builtin({"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]})


@pytest.mark.parametrize("case", CASES)
def test_monitoring_kinds_match_prometheus_operator_models(case: str) -> None:
    # Pydantic models generated from prometheus-operator v0.80's CRDs. They type-check every
    # field but ignore unknown ones, so a round trip that loses a field means a typo.
    v1 = pytest.importorskip(
        "cloudcoil.models.prometheus_operator.v1",
        reason="pip install cloudcoil==0.6.0 cloudcoil-models-prometheus-operator==0.80.1.0",
    )
    models = {
        "ServiceMonitor": v1.ServiceMonitor,
        "PodMonitor": v1.PodMonitor,
        "PrometheusRule": v1.PrometheusRule,
    }
    for doc in all_docs(case):
        if doc["kind"] in models:
            parsed = models[doc["kind"]].model_validate(doc)
            again = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
            assert again["spec"] == doc["spec"], f"{doc['kind']} lost or changed a field"


def test_prometheus_operator_round_trip_would_catch_a_typo() -> None:
    v1 = pytest.importorskip("cloudcoil.models.prometheus_operator.v1")
    monitor = copy.deepcopy(of_kind("gpu", "ServiceMonitor")[0])
    monitor["spec"]["endpoints"][0]["intervall"] = "1s"
    parsed = v1.ServiceMonitor.model_validate(monitor)
    again = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert again["spec"] != monitor["spec"]
