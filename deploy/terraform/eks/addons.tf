# In-cluster add-ons the serving stack needs: the NVIDIA device plugin (advertises nvidia.com/gpu
# so the scheduler can place model servers) and the KubeRay operator (runs RayService objects).

locals {
  nvidia_device_plugin_values = {
    # Run on GPU nodes only: the GPU NodePool labels its nodes nvidia.com/gpu.present=true.
    nodeSelector = {
      "nvidia.com/gpu.present" = "true"
    }
    # GPU nodes are tainted nvidia.com/gpu:NoSchedule; the plugin must run there regardless.
    tolerations = [
      { key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" },
      { key = "CriticalAddonsOnly", operator = "Exists" },
    ]
    priorityClassName = "system-node-critical"
  }

  kuberay_operator_values = {
    nodeSelector = {
      "rayvllm.io/node-role" = "system"
    }
    resources = {
      requests = { cpu = "100m", memory = "512Mi" }
      limits   = { cpu = "1", memory = "1Gi" }
    }
  }
}

resource "helm_release" "nvidia_device_plugin" {
  name             = "nvidia-device-plugin"
  namespace        = "nvidia-device-plugin"
  create_namespace = true
  repository       = "https://nvidia.github.io/k8s-device-plugin"
  chart            = "nvidia-device-plugin"
  version          = "0.19.0"

  values = [yamlencode(local.nvidia_device_plugin_values)]

  depends_on = [module.eks]
}

resource "helm_release" "kuberay_operator" {
  name             = "kuberay-operator"
  namespace        = "kuberay-system"
  create_namespace = true
  repository       = "https://ray-project.github.io/kuberay-helm/"
  chart            = "kuberay-operator"
  # Must match the RayService CRD our renderer validates against (ray.io_rayservices v1.7.0).
  version = "1.7.0"

  values = [yamlencode(local.kuberay_operator_values)]

  depends_on = [module.eks]
}
