# Provider wiring. The Kubernetes-facing providers authenticate with short-lived tokens from
# `aws eks get-token`, so no kubeconfig or long-lived credential is written anywhere.

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# Public ECR (where the Karpenter chart lives) only issues auth tokens in us-east-1.
provider "aws" {
  alias  = "virginia"
  region = "us-east-1"

  default_tags {
    tags = local.tags
  }
}

locals {
  # Exec arguments shared by every provider that talks to the cluster API.
  eks_token_args = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
}

provider "kubernetes" {
  host                   = module.eks.cluster_endpoint
  cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = local.eks_token_args
  }
}

provider "helm" {
  kubernetes = {
    host                   = module.eks.cluster_endpoint
    cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)

    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = local.eks_token_args
    }
  }
}

provider "kubectl" {
  host                   = module.eks.cluster_endpoint
  cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)
  load_config_file       = false
  # Karpenter's CRDs arrive with its chart; retry while the API server registers them.
  apply_retry_count = 10

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = local.eks_token_args
  }
}

data "aws_ecrpublic_authorization_token" "token" {
  provider = aws.virginia
}

# The AZs are named, not discovered: a discovered list grows when AWS opens a zone, and the next
# plan would then move subnets. The filter also proves each named zone exists in the region.
data "aws_availability_zones" "selected" {
  filter {
    name   = "zone-name"
    values = var.availability_zones
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == length(var.availability_zones)
      error_message = "Some of availability_zones do not exist (or are not opted in) in the region: found ${join(", ", self.names)}."
    }
  }
}

locals {
  azs = sort(data.aws_availability_zones.selected.names)

  tags = merge(var.tags, {
    "rayvllm.io/cluster" = var.cluster_name
    "rayvllm.io/managed" = "terraform"
  })
}
