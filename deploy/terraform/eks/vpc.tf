# The network: one VPC over var.availability_zones with private subnets for nodes and pods (tagged for
# Karpenter discovery and internal load balancers), small public subnets for NAT and internet-facing
# load balancers, and intra subnets (no internet route) for the EKS control-plane ENIs.

locals {
  # Carve the VPC CIDR so the three subnet tiers can never overlap, for up to four AZs:
  # private: the first four 1/16ths; public and intra: 1/256ths starting right after them.
  private_subnets = [for index, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, index)]
  public_subnets  = [for index, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 64 + index)]
  intra_subnets   = [for index, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 68 + index)]
}

module "vpc" {
  #checkov:skip=CKV_TF_1:Registry module pinned to one exact version (which Renovate can track); a commit hash needs a git source. Accepted risk: the upstream tag being moved
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.21.0"

  name = var.cluster_name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets = local.private_subnets
  public_subnets  = local.public_subnets
  intra_subnets   = local.intra_subnets

  enable_nat_gateway = true
  single_nat_gateway = var.single_nat_gateway
  enable_dns_support = true
  # EKS private endpoint resolution and SSM need DNS hostnames in the VPC.
  enable_dns_hostnames = true

  # The default security group of a new VPC allows all traffic between its members; strip it so
  # nothing can use it by accident.
  manage_default_security_group  = true
  default_security_group_ingress = []
  default_security_group_egress  = []

  enable_flow_log                                 = var.enable_vpc_flow_logs
  create_flow_log_cloudwatch_log_group            = var.enable_vpc_flow_logs
  create_flow_log_cloudwatch_iam_role             = var.enable_vpc_flow_logs
  flow_log_cloudwatch_log_group_retention_in_days = var.cloudwatch_log_retention_days

  public_subnet_tags = {
    "kubernetes.io/role/elb" = 1
  }

  private_subnet_tags = {
    "kubernetes.io/role/internal-elb" = 1
    # EC2NodeClass subnetSelectorTerms select on this tag: Karpenter launches nodes here only.
    "karpenter.sh/discovery" = var.cluster_name
  }
}
