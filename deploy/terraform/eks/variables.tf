# Inputs of the stack. Every variable is typed and described; validations reject values that
# would only fail minutes into an apply (or, worse, succeed and build the wrong thing).

# --- Where and what ---------------------------------------------------------------------------

variable "region" {
  description = "AWS region to build the cluster in, e.g. us-west-2. Pick one that offers the GPU families in gpu_instance_families."
  type        = string
  default     = "us-west-2"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like an AWS region name, e.g. us-west-2 or us-gov-west-1."
  }
}

variable "cluster_name" {
  description = "Name of the EKS cluster. Also used for the VPC, for IAM role names and as the karpenter.sh/discovery tag value."
  type        = string
  default     = "rayvllm"

  validation {
    # 38 characters leaves room for the suffixes IAM adds to role names (64-character limit).
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,37}$", var.cluster_name))
    error_message = "cluster_name must start with a letter, use only letters, digits and '-', and be at most 38 characters."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (minor, e.g. 1.34). Karpenter chart 1.11.1 supports 1.29 to 1.35."
  type        = string
  default     = "1.34"

  validation {
    condition     = can(regex("^1\\.(29|3[0-5])$", var.kubernetes_version))
    error_message = "kubernetes_version must be between 1.29 and 1.35 (the range the pinned Karpenter supports)."
  }
}

variable "tags" {
  description = "Tags added to every AWS resource this stack creates (through the provider's default_tags)."
  type        = map(string)
  default     = {}
}

# --- Network ----------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "IPv4 CIDR of the new VPC. A /16 leaves /20 private subnets (4k pod and node IPs per AZ)."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 16
    error_message = "vpc_cidr must be a valid IPv4 CIDR of size /16 or larger (the subnet layout carves /20s and /24s out of it)."
  }
}

variable "availability_zones" {
  description = "Availability zones (names, in var.region) to spread subnets over: 2 to 4. More zones give Karpenter more places to find scarce GPU capacity."
  type        = list(string)
  default     = ["us-west-2a", "us-west-2b", "us-west-2c"]

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 4 && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must list 2 to 4 distinct zones (EKS needs two; the subnet layout has room for four)."
  }

  validation {
    condition     = alltrue([for zone in var.availability_zones : can(regex("^${var.region}[a-z]$", zone))])
    error_message = "Every entry of availability_zones must be a zone of var.region, e.g. ${var.region}a."
  }
}

variable "single_nat_gateway" {
  description = "Use one NAT gateway for all AZs (cheaper) instead of one per AZ (survives the loss of an AZ). Set false for production."
  type        = bool
  default     = true
}

variable "enable_vpc_flow_logs" {
  description = "Send VPC flow logs to CloudWatch Logs (kept cloudwatch_log_retention_days days)."
  type        = bool
  default     = true
}

# --- Control plane ----------------------------------------------------------------------------

variable "cluster_endpoint_public_access" {
  description = "Expose the Kubernetes API on a public endpoint (restricted to cluster_endpoint_public_access_cidrs). Set false for a private-only endpoint: terraform, kubectl and helm must then run from inside the VPC (VPN, Direct Connect, bastion or SSM)."
  type        = bool
  default     = true
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint when cluster_endpoint_public_access is true. Narrow this to your office/VPN egress ranges."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.cluster_endpoint_public_access_cidrs) > 0 && alltrue([for cidr in var.cluster_endpoint_public_access_cidrs : can(cidrhost(cidr, 0))])
    error_message = "cluster_endpoint_public_access_cidrs must be a non-empty list of valid IPv4 CIDRs."
  }
}

variable "cloudwatch_log_retention_days" {
  description = "Days to keep EKS control-plane logs (api, audit, authenticator, controllerManager, scheduler) and VPC flow logs."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.cloudwatch_log_retention_days)
    error_message = "cloudwatch_log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "eks_addon_versions" {
  description = "Exact versions for EKS add-ons, keyed by add-on name (e.g. { aws-ebs-csi-driver = \"v1.45.0-eksbuild.2\" }). Add-ons not listed get the version EKS marks default for kubernetes_version."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for name in keys(var.eks_addon_versions) : contains(["coredns", "kube-proxy", "vpc-cni", "eks-pod-identity-agent", "aws-ebs-csi-driver"], name)])
    error_message = "eks_addon_versions keys must be among: coredns, kube-proxy, vpc-cni, eks-pod-identity-agent, aws-ebs-csi-driver."
  }
}

# --- System node group (cluster add-ons only; workloads go to Karpenter nodes) ----------------

variable "system_node_instance_types" {
  description = "Instance types of the managed node group that runs cluster add-ons (CoreDNS, Karpenter, operators, Prometheus, Grafana)."
  type        = list(string)
  default     = ["m6i.xlarge", "m5.xlarge"]

  validation {
    condition     = length(var.system_node_instance_types) > 0
    error_message = "system_node_instance_types needs at least one instance type."
  }
}

variable "system_node_count" {
  description = "Size of the system node group. Two nodes minimum so Karpenter's two replicas (and CoreDNS) survive a node loss."
  type = object({
    min     = number
    desired = number
    max     = number
  })
  default = {
    min     = 2
    desired = 2
    max     = 4
  }

  validation {
    condition     = var.system_node_count.min >= 2 && var.system_node_count.min <= var.system_node_count.desired && var.system_node_count.desired <= var.system_node_count.max
    error_message = "system_node_count must satisfy 2 <= min <= desired <= max."
  }
}

# --- Karpenter node pools ---------------------------------------------------------------------

variable "node_ami_alias" {
  description = "Karpenter amiSelectorTerms alias for workload nodes. al2023 resolves to the NVIDIA variant on GPU instances. Pin a release (e.g. al2023@v20251020) in production so nodes do not change AMI underneath a model."
  type        = string
  default     = "al2023@latest"

  validation {
    condition     = can(regex("^(al2023|bottlerocket)@(latest|v[0-9][0-9.]*)$", var.node_ami_alias))
    error_message = "node_ami_alias must be al2023@<version> or bottlerocket@<version>, with <version> 'latest' or a release like v20251020."
  }
}

variable "gpu_instance_families" {
  description = "EC2 instance families the GPU NodePool may launch. g5 (A10G), g6 (L4) and p5 (H100) by default."
  type        = list(string)
  default     = ["g5", "g6", "p5"]

  validation {
    condition     = length(var.gpu_instance_families) > 0 && alltrue([for family in var.gpu_instance_families : can(regex("^(g[4-9]|p[4-9])[a-z]*$", family))])
    error_message = "gpu_instance_families must list NVIDIA GPU families such as g5, g6, g6e, p4d, p5."
  }
}

variable "gpu_capacity_types" {
  description = "Capacity types for GPU nodes. on-demand by default: a spot reclaim stops a model replica mid-request."
  type        = list(string)
  default     = ["on-demand"]

  validation {
    condition     = length(var.gpu_capacity_types) > 0 && alltrue([for capacity in var.gpu_capacity_types : contains(["on-demand", "spot", "reserved"], capacity)])
    error_message = "gpu_capacity_types must be a non-empty subset of: on-demand, spot, reserved."
  }
}

variable "gpu_node_pool_gpu_limit" {
  description = "Most GPUs (nvidia.com/gpu) the GPU NodePool may hold at once: a spending ceiling. One p5.48xlarge has 8."
  type        = number
  default     = 16

  validation {
    condition     = var.gpu_node_pool_gpu_limit >= 1 && floor(var.gpu_node_pool_gpu_limit) == var.gpu_node_pool_gpu_limit
    error_message = "gpu_node_pool_gpu_limit must be a whole number >= 1."
  }
}

variable "gpu_node_pool_cpu_limit" {
  description = "Most vCPUs the GPU NodePool may hold at once (a second ceiling: GPU instances carry many vCPUs)."
  type        = number
  default     = 512

  validation {
    condition     = var.gpu_node_pool_cpu_limit >= 4
    error_message = "gpu_node_pool_cpu_limit must be at least 4."
  }
}

variable "cpu_node_pool_cpu_limit" {
  description = "Most vCPUs the CPU NodePool (Ray head, CPU workloads) may hold at once."
  type        = number
  default     = 256

  validation {
    condition     = var.cpu_node_pool_cpu_limit >= 4
    error_message = "cpu_node_pool_cpu_limit must be at least 4."
  }
}

variable "gpu_node_volume_size_gib" {
  description = "Root EBS volume of GPU nodes, in GiB. It holds container images (vLLM images are 10-20 GiB) and downloaded model weights."
  type        = number
  default     = 300

  validation {
    condition     = var.gpu_node_volume_size_gib >= 100 && var.gpu_node_volume_size_gib <= 16384
    error_message = "gpu_node_volume_size_gib must be between 100 and 16384."
  }
}

variable "cpu_node_volume_size_gib" {
  description = "Root EBS volume of CPU nodes, in GiB."
  type        = number
  default     = 100

  validation {
    condition     = var.cpu_node_volume_size_gib >= 20 && var.cpu_node_volume_size_gib <= 16384
    error_message = "cpu_node_volume_size_gib must be between 20 and 16384."
  }
}

# --- Observability ----------------------------------------------------------------------------

variable "monitoring_namespace" {
  description = "Namespace of kube-prometheus-stack (Prometheus, Grafana, Alertmanager)."
  type        = string
  default     = "monitoring"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.monitoring_namespace))
    error_message = "monitoring_namespace must be a valid Kubernetes namespace name."
  }
}

variable "prometheus_retention" {
  description = "How long Prometheus keeps samples, in Prometheus duration syntax (e.g. 15d, 720h)."
  type        = string
  default     = "15d"

  validation {
    condition     = can(regex("^[0-9]+(h|d|w|y)$", var.prometheus_retention))
    error_message = "prometheus_retention must be a number followed by h, d, w or y, e.g. 15d."
  }
}

variable "prometheus_storage_size_gib" {
  description = "Size of Prometheus' persistent volume (encrypted gp3), in GiB."
  type        = number
  default     = 50

  validation {
    condition     = var.prometheus_storage_size_gib >= 10
    error_message = "prometheus_storage_size_gib must be at least 10."
  }
}

variable "grafana_iframe_host" {
  description = "Grafana URL as the browser showing the Ray dashboard reaches it (RAY_GRAFANA_IFRAME_HOST). Defaults to a kubectl port-forward on localhost:3000."
  type        = string
  default     = "http://localhost:3000"

  validation {
    condition     = can(regex("^https?://[^/]+$", var.grafana_iframe_host))
    error_message = "grafana_iframe_host must be a scheme and host (and optional port) without a path, e.g. https://grafana.example.com."
  }
}

variable "grafana_anonymous_viewer" {
  description = "Let anonymous users view Grafana (role Viewer) so the panels embedded in the Ray dashboard render without a Grafana login. Only enable when Grafana is not reachable from untrusted networks."
  type        = bool
  default     = false
}
