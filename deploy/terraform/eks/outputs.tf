# What a person (or the render step) needs after `terraform apply`.
# The render step reads ray_head_env: `terraform output -json ray_head_env`.

output "configure_kubectl" {
  description = "Command that writes a kubeconfig entry for this cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}

output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = module.eks.cluster_endpoint
}

output "cluster_endpoint_public_access" {
  description = "Whether the API server has a public endpoint (false: reach it from inside the VPC only)."
  value       = var.cluster_endpoint_public_access
}

output "region" {
  description = "AWS region of the cluster."
  value       = var.region
}

output "vpc_id" {
  description = "ID of the VPC the cluster runs in."
  value       = module.vpc.vpc_id
}

output "private_subnet_ids" {
  description = "Private subnets (tagged karpenter.sh/discovery) where nodes and pods run."
  value       = module.vpc.private_subnets
}

output "grafana_url" {
  description = "In-cluster URL of Grafana (reachable from pods, e.g. the Ray head)."
  value       = local.grafana_in_cluster_url
}

output "prometheus_url" {
  description = "In-cluster URL of Prometheus (reachable from pods, e.g. the Ray head)."
  value       = local.prometheus_in_cluster_url
}

output "grafana_port_forward" {
  description = "Command that makes Grafana reachable at http://localhost:3000 (the default grafana_iframe_host)."
  value       = "kubectl -n ${var.monitoring_namespace} port-forward svc/${local.kube_prometheus_stack_release}-grafana 3000:80"
}

output "grafana_admin_password_command" {
  description = "Command that prints Grafana's admin password (the value itself is never an output)."
  value       = "kubectl -n ${var.monitoring_namespace} get secret ${local.grafana_admin_secret} -o jsonpath='{.data.admin-password}' | base64 -d"
}

output "ray_head_env" {
  description = "Environment variables for the Ray head container (RAY_GRAFANA_HOST, RAY_PROMETHEUS_HOST, RAY_GRAFANA_IFRAME_HOST, RAY_PROMETHEUS_NAME)."
  value       = local.ray_head_env
}

output "grafana_dashboard_label" {
  description = "Label (key and value) a ConfigMap needs for Grafana's sidecar to load the dashboard JSON it holds, from any namespace."
  value       = { grafana_dashboard = "1" }
}

output "gpu_toleration" {
  description = "Toleration a pod needs to run on the GPU NodePool's nodes."
  value       = { key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }
}

output "karpenter_node_pools" {
  description = "Karpenter NodePools and the node label (rayvllm.io/pool) that selects each."
  value       = { gpu = "gpu", cpu = "cpu" }
}

output "kuberay_operator_version" {
  description = "KubeRay operator chart version installed; RayService manifests must validate against this CRD version."
  value       = helm_release.kuberay_operator.version
}
