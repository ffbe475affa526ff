"""Karpenter node classes and pools: the templates rendered as karpenter.tf renders them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from eks_stack import (
    KARPENTER_TEMPLATES,
    Stack,
    placeholders,
    render_template,
    variable_name,
)

NODE_CLASS_TEMPLATE = KARPENTER_TEMPLATES / "ec2nodeclass.yaml.tftpl"
GPU_POOL_TEMPLATE = KARPENTER_TEMPLATES / "nodepool-gpu.yaml.tftpl"
CPU_POOL_TEMPLATE = KARPENTER_TEMPLATES / "nodepool-cpu.yaml.tftpl"


def node_class(stack: Stack, name: str) -> dict[str, Any]:
    size_variable = stack.locals["karpenter_node_classes"][name]["volume_size_gib"]
    return render_template(
        NODE_CLASS_TEMPLATE,
        {
            "name": name,
            "node_role_name": "rayvllm-karpenter-node",
            "cluster_name": stack.default("cluster_name"),
            "ami_alias": stack.default("node_ami_alias"),
            "volume_size_gib": stack.default(variable_name(size_variable)),
        },
    )


def gpu_pool(stack: Stack) -> dict[str, Any]:
    return render_template(
        GPU_POOL_TEMPLATE,
        {
            "node_class_name": "gpu",
            "gpu_instance_families": stack.default("gpu_instance_families"),
            "capacity_types": stack.default("gpu_capacity_types"),
            "gpu_limit": stack.default("gpu_node_pool_gpu_limit"),
            "cpu_limit": stack.default("gpu_node_pool_cpu_limit"),
        },
    )


def cpu_pool(stack: Stack) -> dict[str, Any]:
    return render_template(
        CPU_POOL_TEMPLATE,
        {"node_class_name": "default", "cpu_limit": stack.default("cpu_node_pool_cpu_limit")},
    )


def requirement(pool: dict[str, Any], key: str) -> dict[str, Any]:
    matches = [r for r in pool["spec"]["template"]["spec"]["requirements"] if r["key"] == key]
    assert len(matches) == 1, f"expected one requirement on {key}"
    return matches[0]


@pytest.mark.parametrize("resource", ["karpenter_gpu_node_pool", "karpenter_cpu_node_pool"])
def test_templatefile_calls_pass_exactly_the_placeholders_each_template_uses(
    stack: Stack, resource: str
) -> None:
    call = stack.resource("kubectl_manifest", resource)["yaml_body"]
    template_name = re.search(r"/([\w.-]+\.tftpl)", call)
    assert template_name, call
    passed = set(re.findall(r"[{,]\s*(\w+)\s*=", call))
    assert passed == placeholders((KARPENTER_TEMPLATES / template_name.group(1)).read_text())


def test_node_class_call_passes_exactly_the_placeholders_the_template_uses(stack: Stack) -> None:
    call = stack.resource("kubectl_manifest", "karpenter_node_class")["yaml_body"]
    passed = set(re.findall(r"[{,]\s*(\w+)\s*=", call))
    assert passed == placeholders(NODE_CLASS_TEMPLATE.read_text())


def test_there_is_a_node_class_for_gpu_and_one_for_cpu_nodes(stack: Stack) -> None:
    assert set(stack.locals["karpenter_node_classes"]) == {"default", "gpu"}


@pytest.mark.parametrize("name", ["default", "gpu"])
def test_every_node_class_requires_imdsv2_with_hop_limit_one(stack: Stack, name: str) -> None:
    metadata = node_class(stack, name)["spec"]["metadataOptions"]
    assert metadata["httpTokens"] == "required"
    assert metadata["httpPutResponseHopLimit"] == 1


@pytest.mark.parametrize("name", ["default", "gpu"])
def test_every_node_class_encrypts_its_ebs_volumes(stack: Stack, name: str) -> None:
    mappings = node_class(stack, name)["spec"]["blockDeviceMappings"]
    assert mappings
    assert all(m["ebs"]["encrypted"] is True for m in mappings)


def test_gpu_nodes_get_room_for_images_and_model_weights(stack: Stack) -> None:
    gpu_disk = node_class(stack, "gpu")["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"]
    assert int(gpu_disk.removesuffix("Gi")) >= 200


@pytest.mark.parametrize("name", ["default", "gpu"])
def test_node_classes_discover_the_tagged_subnets_and_security_group(
    stack: Stack, name: str
) -> None:
    spec = node_class(stack, name)["spec"]
    discovery = {"karpenter.sh/discovery": stack.default("cluster_name")}
    assert spec["subnetSelectorTerms"] == [{"tags": discovery}]
    assert spec["securityGroupSelectorTerms"] == [{"tags": discovery}]


def test_gpu_pool_launches_g5_g6_and_p5(stack: Stack) -> None:
    families = requirement(gpu_pool(stack), "karpenter.k8s.aws/instance-family")
    assert families["operator"] == "In"
    assert set(families["values"]) == {"g5", "g6", "p5"}


def test_gpu_pool_taints_its_nodes_for_gpu_pods_only(stack: Stack) -> None:
    taints = gpu_pool(stack)["spec"]["template"]["spec"]["taints"]
    assert {"key": "nvidia.com/gpu", "effect": "NoSchedule"} in taints


def test_gpu_pool_has_a_gpu_and_cpu_spending_ceiling(stack: Stack) -> None:
    limits = gpu_pool(stack)["spec"]["limits"]
    assert limits["nvidia.com/gpu"] == stack.default("gpu_node_pool_gpu_limit")
    assert limits["cpu"] == stack.default("gpu_node_pool_cpu_limit")


def test_gpu_pool_never_consolidates_a_busy_gpu_node(stack: Stack) -> None:
    assert gpu_pool(stack)["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"


def test_cpu_pool_has_no_gpu_taint_and_a_cpu_ceiling(stack: Stack) -> None:
    pool = cpu_pool(stack)
    assert "taints" not in pool["spec"]["template"]["spec"]
    assert pool["spec"]["limits"]["cpu"] == stack.default("cpu_node_pool_cpu_limit")
    assert requirement(pool, "karpenter.k8s.aws/instance-category")["values"] == ["c", "m", "r"]


def test_each_pool_uses_an_existing_node_class(stack: Stack) -> None:
    classes = set(stack.locals["karpenter_node_classes"])
    for pool in (gpu_pool(stack), cpu_pool(stack)):
        ref = pool["spec"]["template"]["spec"]["nodeClassRef"]
        assert ref["kind"] == "EC2NodeClass"
        assert ref["name"] in classes


def test_pool_names_match_the_outputs_the_renderer_reads(stack: Stack) -> None:
    assert stack.outputs["karpenter_node_pools"]["value"] == {
        "gpu": gpu_pool(stack)["metadata"]["name"],
        "cpu": cpu_pool(stack)["metadata"]["name"],
    }


def test_karpenter_runs_with_pod_identity_and_v1_permissions(stack: Stack) -> None:
    karpenter = stack.modules["karpenter"]
    assert karpenter["enable_v1_permissions"] is True
    assert karpenter["enable_pod_identity"] is True
    assert karpenter["create_pod_identity_association"] is True
    # The chart's service account is the one the Pod Identity association grants the role to.
    chart_account = stack.locals["karpenter_values"]["serviceAccount"]["name"]
    assert karpenter["service_account"] == chart_account
    chart = stack.resource("helm_release", "karpenter")
    assert chart["repository"] == "oci://public.ecr.aws/karpenter"
    assert stack.locals["karpenter_values"]["settings"]["interruptionQueue"] == (
        "${module.karpenter.queue_name}"
    )
