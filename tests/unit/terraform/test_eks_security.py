"""Security and reproducibility properties of deploy/terraform/eks, read from its HCL."""

from __future__ import annotations

from eks_stack import EXACT_VERSION, Stack

ALL_CONTROL_PLANE_LOGS = {"api", "audit", "authenticator", "controllerManager", "scheduler"}


def test_every_provider_is_pinned_to_one_exact_release(stack: Stack) -> None:
    assert {"aws", "helm", "kubernetes", "kubectl"} <= set(stack.providers_required)
    loose = {
        name: spec.get("version")
        for name, spec in stack.providers_required.items()
        if not EXACT_VERSION.match(str(spec.get("version", "")))
    }
    assert loose == {}, f"providers without an exact version: {loose}"


def test_every_module_is_a_registry_module_pinned_to_one_exact_release(stack: Stack) -> None:
    assert {"vpc", "eks", "karpenter", "ebs_csi_pod_identity"} <= set(stack.modules)
    for name, module in stack.modules.items():
        assert module["source"].startswith("terraform-aws-modules/"), name
        assert EXACT_VERSION.match(str(module.get("version", ""))), f"module {name} is not pinned"


def test_every_helm_chart_is_pinned_to_one_exact_release(stack: Stack) -> None:
    releases = stack.resources["helm_release"]
    assert releases
    for name, release in releases.items():
        assert EXACT_VERSION.match(str(release.get("version", ""))), f"chart {name} not pinned"


def test_control_plane_logs_every_type(stack: Stack) -> None:
    assert set(stack.modules["eks"]["cluster_enabled_log_types"]) == ALL_CONTROL_PLANE_LOGS


def test_kubernetes_secrets_are_encrypted_with_a_rotating_kms_key(stack: Stack) -> None:
    eks = stack.modules["eks"]
    assert eks["create_kms_key"] is True
    assert eks["enable_kms_key_rotation"] is True
    assert eks["cluster_encryption_config"]["resources"] == ["secrets"]


def test_public_endpoint_is_a_boolean_variable_and_the_private_one_is_always_on(
    stack: Stack,
) -> None:
    eks = stack.modules["eks"]
    assert eks["cluster_endpoint_public_access"] == "${var.cluster_endpoint_public_access}"
    assert eks["cluster_endpoint_private_access"] is True
    assert stack.variables["cluster_endpoint_public_access"]["type"] == "bool"
    cidrs = eks["cluster_endpoint_public_access_cidrs"]
    assert cidrs == "${var.cluster_endpoint_public_access_cidrs}"


def test_every_managed_node_group_requires_imdsv2_with_a_small_hop_limit(stack: Stack) -> None:
    groups = stack.modules["eks"]["eks_managed_node_groups"]
    assert groups, "the system node group is missing"
    for name, group in groups.items():
        metadata = group["metadata_options"]
        assert metadata["http_tokens"] == "required", name
        assert metadata["http_put_response_hop_limit"] in (1, 2), name


def test_node_group_disks_are_encrypted(stack: Stack) -> None:
    for name, group in stack.modules["eks"]["eks_managed_node_groups"].items():
        for device in group["block_device_mappings"].values():
            assert device["ebs"]["encrypted"] is True, name


def test_private_subnets_and_node_security_group_are_tagged_for_karpenter(stack: Stack) -> None:
    discovery = "${var.cluster_name}"
    assert stack.modules["vpc"]["private_subnet_tags"]["karpenter.sh/discovery"] == discovery
    node_sg_tags = stack.modules["eks"]["node_security_group_tags"]
    assert node_sg_tags["karpenter.sh/discovery"] == discovery


def test_nodes_and_control_plane_live_in_private_subnets(stack: Stack) -> None:
    eks = stack.modules["eks"]
    assert eks["subnet_ids"] == "${module.vpc.private_subnets}"
    assert eks["control_plane_subnet_ids"] == "${module.vpc.intra_subnets}"


def test_availability_zones_are_named_not_discovered(stack: Stack) -> None:
    # A discovered AZ list grows when AWS opens a zone and the next plan moves subnets.
    zones = stack.data["aws_availability_zones"]["selected"]
    assert zones["filter"][0]["name"] == "zone-name"
    assert zones["filter"][0]["values"] == "${var.availability_zones}"


def test_grafana_admin_password_is_generated_and_never_an_output(stack: Stack) -> None:
    assert stack.resources["random_password"]["grafana_admin"]["length"] >= 20
    for output in stack.outputs.values():
        assert "random_password" not in str(output["value"])
