# Every provider is pinned to one exact release so that two `terraform init` runs months apart
# install the same code. Bump deliberately, then regenerate .terraform.lock.hcl (see README.md).
terraform {
  # 1.9 is the first release whose variable validations may refer to other variables
  # (availability_zones is checked against region).
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    # 5.100.0 is the last 5.x release: terraform-aws-modules/eks 20.x and vpc 5.x refuse aws >= 6.
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "3.0.2"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "2.38.0"
    }
    # kubectl_manifest applies Karpenter's custom resources without needing their CRDs at plan
    # time (kubernetes_manifest does). alekc/kubectl is the maintained fork of gavinbunney/kubectl.
    kubectl = {
      source  = "alekc/kubectl"
      version = "2.1.3"
    }
    random = {
      source  = "hashicorp/random"
      version = "3.7.2"
    }
  }
}
