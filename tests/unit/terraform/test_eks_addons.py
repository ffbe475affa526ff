"""Add-ons, observability wiring, variables and outputs of deploy/terraform/eks."""

from __future__ import annotations

import re

import pytest
from eks_stack import KARPENTER_TEMPLATES, REPO_ROOT, Stack, render_template

SHARED_KUBERAY = REPO_ROOT / "tests" / "data" / "kuberay"


def test_nvidia_device_plugin_runs_on_every_gpu_pool_node(stack: Stack) -> None:
    release = stack.resource("helm_release", "nvidia_device_plugin")
    assert release["chart"] == "nvidia-device-plugin"
    values = stack.locals["nvidia_device_plugin_values"]
    gpu_pool = render_template(
        KARPENTER_TEMPLATES / "nodepool-gpu.yaml.tftpl",
        {
            "node_class_name": "gpu",
            "gpu_instance_families": ["g5"],
            "capacity_types": ["on-demand"],
            "gpu_limit": 1,
            "cpu_limit": 4,
        },
    )
    node_labels = gpu_pool["spec"]["template"]["metadata"]["labels"]
    assert values["nodeSelector"].items() <= node_labels.items()
    tolerated = {(t["key"], t.get("effect")) for t in values["tolerations"]}
    for taint in gpu_pool["spec"]["template"]["spec"]["taints"]:
        assert (taint["key"], taint["effect"]) in tolerated


def test_kuberay_operator_is_1_7_0_from_the_kuberay_chart_repo(stack: Stack) -> None:
    release = stack.resource("helm_release", "kuberay_operator")
    assert release["chart"] == "kuberay-operator"
    assert release["version"] == "1.7.0"
    assert release["repository"].startswith("https://ray-project.github.io/kuberay-helm")


@pytest.mark.skipif(not SHARED_KUBERAY.is_dir(), reason="tests/data/kuberay is missing")
def test_kuberay_operator_matches_the_rayservice_crd_we_validate_against(stack: Stack) -> None:
    crd_versions = {
        m.group(1)
        for path in SHARED_KUBERAY.glob("ray.io_rayservices.v*.yaml")
        if (m := re.search(r"\.v(\d+\.\d+\.\d+)\.yaml$", path.name))
    }
    assert stack.resource("helm_release", "kuberay_operator")["version"] in crd_versions


def test_grafana_loads_labelled_dashboards_from_every_namespace(stack: Stack) -> None:
    release = stack.resource("helm_release", "kube_prometheus_stack")
    assert release["chart"] == "kube-prometheus-stack"
    assert release["values"] == ["${yamlencode(local.kube_prometheus_stack_values)}"]
    dashboards = stack.locals["kube_prometheus_stack_values"]["grafana"]["sidecar"]["dashboards"]
    assert dashboards["enabled"] is True
    assert dashboards["label"] == "grafana_dashboard"
    assert dashboards["searchNamespace"] == "ALL"
    assert stack.outputs["grafana_dashboard_label"]["value"] == {
        dashboards["label"]: dashboards["labelValue"]
    }


@pytest.mark.parametrize(
    "selector",
    [
        "serviceMonitorSelectorNilUsesHelmValues",
        "podMonitorSelectorNilUsesHelmValues",
        "ruleSelectorNilUsesHelmValues",
        "probeSelectorNilUsesHelmValues",
        "scrapeConfigSelectorNilUsesHelmValues",
    ],
)
def test_prometheus_picks_up_monitors_and_rules_without_its_release_label(
    stack: Stack, selector: str
) -> None:
    spec = stack.locals["kube_prometheus_stack_values"]["prometheus"]["prometheusSpec"]
    assert spec[selector] is False


def test_grafana_never_uses_the_charts_default_admin_password(stack: Stack) -> None:
    grafana = stack.locals["kube_prometheus_stack_values"]["grafana"]
    assert "adminPassword" not in grafana
    assert grafana["admin"]["existingSecret"] == "${local.grafana_admin_secret}"
    secret = stack.resource("kubernetes_secret_v1", "grafana_admin")
    assert secret["data"]["admin-password"] == "${random_password.grafana_admin.result}"


def test_grafana_can_be_embedded_in_the_ray_dashboard(stack: Stack) -> None:
    ini = stack.locals["kube_prometheus_stack_values"]["grafana"]["grafana.ini"]
    assert ini["security"]["allow_embedding"] is True


def test_ray_head_env_points_at_the_in_cluster_grafana_and_prometheus(stack: Stack) -> None:
    env = stack.locals["ray_head_env"]
    assert env["RAY_GRAFANA_HOST"] == "${local.grafana_in_cluster_url}"
    assert env["RAY_PROMETHEUS_HOST"] == "${local.prometheus_in_cluster_url}"
    assert set(env) >= {"RAY_GRAFANA_IFRAME_HOST", "RAY_PROMETHEUS_NAME"}
    release = "${local.kube_prometheus_stack_release}"
    namespace = "${var.monitoring_namespace}"
    assert stack.locals["grafana_in_cluster_url"] == (
        f"http://{release}-grafana.{namespace}.svc.cluster.local:80"
    )
    assert stack.locals["prometheus_in_cluster_url"] == (
        f"http://{release}-prometheus.{namespace}.svc.cluster.local:9090"
    )
    # The service names above assume the chart's names are pinned to the release name.
    values = stack.locals["kube_prometheus_stack_values"]
    assert values["fullnameOverride"] == release
    assert stack.resource("helm_release", "kube_prometheus_stack")["name"] == release
    assert stack.outputs["ray_head_env"]["value"] == "${local.ray_head_env}"


def test_ebs_csi_driver_is_an_addon_with_pod_identity(stack: Stack) -> None:
    addon = stack.modules["eks"]["cluster_addons"]["aws-ebs-csi-driver"]
    association = addon["pod_identity_association"][0]
    assert association["role_arn"] == "${module.ebs_csi_pod_identity.iam_role_arn}"
    assert stack.locals["ebs_csi_service_account"] == "ebs-csi-controller-sa"
    assert stack.modules["ebs_csi_pod_identity"]["attach_aws_ebs_csi_policy"] is True
    assert "eks-pod-identity-agent" in stack.modules["eks"]["cluster_addons"]


def test_default_storage_class_is_encrypted_gp3_on_the_ebs_csi_driver(stack: Stack) -> None:
    storage_class = stack.resource("kubernetes_storage_class_v1", "gp3")
    assert storage_class["storage_provisioner"] == "ebs.csi.aws.com"
    assert storage_class["parameters"]["encrypted"] == "true"
    annotations = storage_class["metadata"][0]["annotations"]
    assert annotations["storageclass.kubernetes.io/is-default-class"] == "true"


def test_every_variable_has_a_type_and_a_description(stack: Stack) -> None:
    assert stack.variables
    for name, variable in stack.variables.items():
        assert variable.get("type"), f"variable {name} has no type"
        assert len(str(variable.get("description", ""))) > 10, f"variable {name} undescribed"


def test_every_output_has_a_description(stack: Stack) -> None:
    for name, output in stack.outputs.items():
        assert output.get("description"), f"output {name} undescribed"


def test_outputs_give_the_kubectl_command_and_the_cluster_coordinates(stack: Stack) -> None:
    command = stack.outputs["configure_kubectl"]["value"]
    assert command == (
        "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
    )
    assert stack.outputs["cluster_name"]["value"] == "${module.eks.cluster_name}"
    assert stack.outputs["cluster_endpoint"]["value"] == "${module.eks.cluster_endpoint}"
    assert stack.outputs["grafana_url"]["value"] == "${local.grafana_in_cluster_url}"
    assert stack.outputs["prometheus_url"]["value"] == "${local.prometheus_in_cluster_url}"
