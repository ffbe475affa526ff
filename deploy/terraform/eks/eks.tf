# The EKS control plane (all five log types on, Secrets encrypted with a KMS key this stack owns),
# the small managed node group for cluster add-ons, the EKS add-ons (EBS CSI with Pod Identity)
# and the default encrypted gp3 StorageClass.

locals {
  # The service account the EBS CSI controller runs as; its Pod Identity association targets it.
  ebs_csi_service_account = "ebs-csi-controller-sa"
}

module "eks" {
  #checkov:skip=CKV_TF_1:Registry module pinned to one exact version (which Renovate can track); a commit hash needs a git source. Accepted risk: the upstream tag being moved
  source  = "terraform-aws-modules/eks/aws"
  version = "20.37.2"

  cluster_name    = var.cluster_name
  cluster_version = var.kubernetes_version

  # The private endpoint is always on so nodes reach the API without leaving the VPC. The public
  # one is a choice: off means kubectl/helm/terraform must run from inside the VPC.
  cluster_endpoint_private_access      = true
  cluster_endpoint_public_access       = var.cluster_endpoint_public_access
  cluster_endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs

  # Every control-plane log type: audit answers "who did what", the others debug scheduling,
  # controller and authentication problems after the fact.
  cluster_enabled_log_types              = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  cloudwatch_log_group_retention_in_days = var.cloudwatch_log_retention_days

  # Envelope-encrypt Kubernetes Secrets (Hugging Face tokens, API keys) with a customer-managed
  # KMS key that rotates yearly.
  create_kms_key                  = true
  enable_kms_key_rotation         = true
  kms_key_deletion_window_in_days = 30
  cluster_encryption_config = {
    resources = ["secrets"]
  }

  # Access entries only (no aws-auth ConfigMap); the identity running terraform becomes cluster
  # admin so it can install the charts below.
  authentication_mode                      = "API"
  enable_cluster_creator_admin_permissions = true

  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.private_subnets
  control_plane_subnet_ids = module.vpc.intra_subnets

  cluster_addons = {
    # Networking and Pod Identity must be up before the first node joins.
    vpc-cni = {
      before_compute = true
      addon_version  = lookup(var.eks_addon_versions, "vpc-cni", null)
    }
    eks-pod-identity-agent = {
      before_compute = true
      addon_version  = lookup(var.eks_addon_versions, "eks-pod-identity-agent", null)
    }
    kube-proxy = {
      addon_version = lookup(var.eks_addon_versions, "kube-proxy", null)
    }
    coredns = {
      addon_version = lookup(var.eks_addon_versions, "coredns", null)
    }
    aws-ebs-csi-driver = {
      addon_version = lookup(var.eks_addon_versions, "aws-ebs-csi-driver", null)
      pod_identity_association = [{
        role_arn        = module.ebs_csi_pod_identity.iam_role_arn
        service_account = local.ebs_csi_service_account
      }]
    }
  }

  eks_managed_node_groups = {
    # Cluster add-ons only. Model servers and Ray pods land on Karpenter nodes (karpenter.tf).
    system = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.system_node_instance_types
      capacity_type  = "ON_DEMAND"

      min_size     = var.system_node_count.min
      desired_size = var.system_node_count.desired
      max_size     = var.system_node_count.max

      labels = {
        "rayvllm.io/node-role" = "system"
      }

      # IMDSv2 only. Hop limit 2 (not 1) on this group alone: the add-ons it hosts (Karpenter
      # controller, EBS CSI controller) read region and instance identity from IMDS from inside
      # their containers, one network hop further than the host. Workload nodes use 1.
      metadata_options = {
        http_endpoint               = "enabled"
        http_tokens                 = "required"
        http_put_response_hop_limit = 2
        instance_metadata_tags      = "disabled"
      }

      ebs_optimized     = true
      enable_monitoring = true
      block_device_mappings = {
        root = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = 50
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }

      # Shell access through SSM Session Manager instead of SSH keys and open port 22.
      iam_role_additional_policies = {
        AmazonSSMManagedInstanceCore = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
      }
    }
  }

  # EC2NodeClass securityGroupSelectorTerms select on this tag. Only the node security group
  # carries it: Karpenter attaches every security group that matches.
  node_security_group_tags = {
    "karpenter.sh/discovery" = var.cluster_name
  }

  # Also applied to the node group's launch template, so EC2 instances carry the stack's tags.
  tags = local.tags
}

module "ebs_csi_pod_identity" {
  #checkov:skip=CKV_TF_1:Registry module pinned to one exact version (which Renovate can track); a commit hash needs a git source. Accepted risk: the upstream tag being moved
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "1.12.1"

  name = "${var.cluster_name}-ebs-csi"

  attach_aws_ebs_csi_policy = true
}

# Default StorageClass: gp3, encrypted at rest, bound where the pod lands (so the volume's AZ
# matches the node Karpenter picked).
resource "kubernetes_storage_class_v1" "gp3" {
  metadata {
    name = "gp3"
    annotations = {
      "storageclass.kubernetes.io/is-default-class" = "true"
    }
  }

  storage_provisioner    = "ebs.csi.aws.com"
  reclaim_policy         = "Delete"
  volume_binding_mode    = "WaitForFirstConsumer"
  allow_volume_expansion = true

  parameters = {
    type      = "gp3"
    encrypted = "true"
    fsType    = "ext4"
  }

  depends_on = [module.eks]
}
