# Karpenter: its AWS side (controller role with Pod Identity, node role, interruption queue), the
# controller chart, and the node classes and pools that decide what it may launch:
# a GPU pool (g5/g6/p5, tainted nvidia.com/gpu) and a CPU pool (Ray heads, CPU workloads).

locals {
  karpenter_namespace       = "kube-system"
  karpenter_service_account = "karpenter"
  manifests_dir             = "${path.module}/manifests/karpenter"

  # One EC2NodeClass per pool: GPU nodes need a much larger root volume for images and weights.
  karpenter_node_classes = {
    default = { volume_size_gib = var.cpu_node_volume_size_gib }
    gpu     = { volume_size_gib = var.gpu_node_volume_size_gib }
  }

  karpenter_values = {
    settings = {
      clusterName       = module.eks.cluster_name
      clusterEndpoint   = module.eks.cluster_endpoint
      interruptionQueue = module.karpenter.queue_name
    }
    serviceAccount = {
      name = local.karpenter_service_account
    }
    # Karpenter must never run on a node it could remove: keep it on the system node group.
    nodeSelector = {
      "rayvllm.io/node-role" = "system"
    }
    controller = {
      resources = {
        requests = { cpu = "500m", memory = "1Gi" }
        limits   = { cpu = "1", memory = "1Gi" }
      }
    }
    # Picked up by kube-prometheus-stack (serviceMonitorSelectorNilUsesHelmValues = false).
    serviceMonitor = {
      enabled = true
    }
  }
}

module "karpenter" {
  #checkov:skip=CKV_TF_1:Registry module pinned to one exact version (which Renovate can track); a commit hash needs a git source. Accepted risk: the upstream tag being moved
  source  = "terraform-aws-modules/eks/aws//modules/karpenter"
  version = "20.37.2"

  cluster_name    = module.eks.cluster_name
  namespace       = local.karpenter_namespace
  service_account = local.karpenter_service_account

  # Karpenter >= 1.0 API permissions, credentials through EKS Pod Identity (no OIDC trust policy).
  enable_v1_permissions           = true
  enable_pod_identity             = true
  create_pod_identity_association = true

  # A fixed node role name so the EC2NodeClass `role` never changes under running nodes.
  node_iam_role_use_name_prefix = false
  node_iam_role_name            = "${var.cluster_name}-karpenter-node"
  node_iam_role_additional_policies = {
    AmazonSSMManagedInstanceCore = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
  }

  iam_role_policies = {
    KarpenterControllerExtra = aws_iam_policy.karpenter_controller_extra.arn
  }
}

# Read-only actions that Karpenter releases after the module's policy was written call on start-up
# and for capacity reservations. Kept apart: the module's policy is close to IAM's 6,144-character
# limit for one managed policy.
data "aws_iam_policy_document" "karpenter_controller_extra" {
  statement {
    sid    = "KarpenterDescribeExtra"
    effect = "Allow"
    actions = [
      "ec2:DescribeCapacityReservations",
      "ec2:DescribeInstanceStatus",
      "ec2:DescribePlacementGroups",
      "iam:ListInstanceProfiles",
    ]
    # These List/Describe actions do not support resource-level permissions.
    resources = ["*"]
  }
}

resource "aws_iam_policy" "karpenter_controller_extra" {
  name_prefix = "${var.cluster_name}-karpenter-extra-"
  description = "Read-only EC2/IAM actions newer Karpenter releases need beyond the module's controller policy"
  policy      = data.aws_iam_policy_document.karpenter_controller_extra.json
}

resource "helm_release" "karpenter" {
  name                = "karpenter"
  namespace           = local.karpenter_namespace
  repository          = "oci://public.ecr.aws/karpenter"
  repository_username = data.aws_ecrpublic_authorization_token.token.user_name
  repository_password = data.aws_ecrpublic_authorization_token.token.password
  chart               = "karpenter"
  version             = "1.11.1"
  wait                = true

  values = [yamlencode(local.karpenter_values)]

  # The ServiceMonitor above needs the Prometheus Operator CRDs.
  depends_on = [module.eks, helm_release.kube_prometheus_stack]
}

resource "kubectl_manifest" "karpenter_node_class" {
  for_each = local.karpenter_node_classes

  yaml_body = templatefile("${local.manifests_dir}/ec2nodeclass.yaml.tftpl", {
    name            = each.key
    node_role_name  = module.karpenter.node_iam_role_name
    cluster_name    = module.eks.cluster_name
    ami_alias       = var.node_ami_alias
    volume_size_gib = each.value.volume_size_gib
  })

  depends_on = [helm_release.karpenter]
}

resource "kubectl_manifest" "karpenter_gpu_node_pool" {
  yaml_body = templatefile("${local.manifests_dir}/nodepool-gpu.yaml.tftpl", {
    node_class_name       = "gpu"
    gpu_instance_families = var.gpu_instance_families
    capacity_types        = var.gpu_capacity_types
    gpu_limit             = var.gpu_node_pool_gpu_limit
    cpu_limit             = var.gpu_node_pool_cpu_limit
  })

  depends_on = [kubectl_manifest.karpenter_node_class]
}

resource "kubectl_manifest" "karpenter_cpu_node_pool" {
  yaml_body = templatefile("${local.manifests_dir}/nodepool-cpu.yaml.tftpl", {
    node_class_name = "default"
    cpu_limit       = var.cpu_node_pool_cpu_limit
  })

  depends_on = [kubectl_manifest.karpenter_node_class]
}
