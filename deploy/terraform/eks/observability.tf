# kube-prometheus-stack: Prometheus that scrapes every ServiceMonitor/PodMonitor/PrometheusRule in
# the cluster (ours included, whatever their labels), and Grafana that loads every ConfigMap
# labelled grafana_dashboard="1" from any namespace (the Ray and rayvllm dashboards).

locals {
  kube_prometheus_stack_release = "kube-prometheus-stack"
  grafana_admin_secret          = "grafana-admin"

  # In-cluster service URLs, derived from the release name (fullnameOverride pins them below).
  grafana_in_cluster_url    = "http://${local.kube_prometheus_stack_release}-grafana.${var.monitoring_namespace}.svc.cluster.local:80"
  prometheus_in_cluster_url = "http://${local.kube_prometheus_stack_release}-prometheus.${var.monitoring_namespace}.svc.cluster.local:9090"

  # Environment for the Ray head container: the Ray dashboard queries Prometheus and embeds
  # Grafana panels through these (https://docs.ray.io/en/latest/cluster/metrics.html).
  ray_head_env = {
    RAY_GRAFANA_HOST        = local.grafana_in_cluster_url
    RAY_PROMETHEUS_HOST     = local.prometheus_in_cluster_url
    RAY_GRAFANA_IFRAME_HOST = var.grafana_iframe_host
    # The Grafana data source name kube-prometheus-stack provisions; Ray's dashboards refer to it.
    RAY_PROMETHEUS_NAME = "Prometheus"
  }

  kube_prometheus_stack_values = {
    fullnameOverride = local.kube_prometheus_stack_release

    grafana = {
      # Never the chart's well-known default password: a random one, kept in a Secret.
      admin = {
        existingSecret = local.grafana_admin_secret
        userKey        = "admin-user"
        passwordKey    = "admin-password"
      }
      sidecar = {
        dashboards = {
          enabled         = true
          label           = "grafana_dashboard"
          labelValue      = "1"
          searchNamespace = "ALL"
          # ConfigMaps may name their folder with this annotation (e.g. "Ray", "rayvllm").
          folderAnnotation = "grafana_folder"
          provider = {
            foldersFromFilesStructure = true
          }
        }
        datasources = {
          enabled = true
        }
      }
      "grafana.ini" = {
        # The Ray dashboard shows Grafana panels in iframes.
        security = {
          allow_embedding = true
        }
        "auth.anonymous" = {
          enabled  = var.grafana_anonymous_viewer
          org_role = "Viewer"
        }
      }
      nodeSelector = {
        "rayvllm.io/node-role" = "system"
      }
    }

    prometheus = {
      prometheusSpec = {
        # Without these, Prometheus only selects objects labelled release=kube-prometheus-stack,
        # and silently ignores the ServiceMonitor/PodMonitor/PrometheusRule the renderer emits.
        serviceMonitorSelectorNilUsesHelmValues = false
        podMonitorSelectorNilUsesHelmValues     = false
        ruleSelectorNilUsesHelmValues           = false
        probeSelectorNilUsesHelmValues          = false
        scrapeConfigSelectorNilUsesHelmValues   = false

        retention = var.prometheus_retention
        storageSpec = {
          volumeClaimTemplate = {
            spec = {
              storageClassName = kubernetes_storage_class_v1.gp3.metadata[0].name
              accessModes      = ["ReadWriteOnce"]
              resources = {
                requests = { storage = "${var.prometheus_storage_size_gib}Gi" }
              }
            }
          }
        }
        nodeSelector = {
          "rayvllm.io/node-role" = "system"
        }
      }
    }

    alertmanager = {
      alertmanagerSpec = {
        nodeSelector = {
          "rayvllm.io/node-role" = "system"
        }
      }
    }
  }
}

resource "kubernetes_namespace_v1" "monitoring" {
  metadata {
    name = var.monitoring_namespace
  }

  depends_on = [module.eks]
}

resource "random_password" "grafana_admin" {
  length  = 32
  special = false
}

resource "kubernetes_secret_v1" "grafana_admin" {
  metadata {
    name      = local.grafana_admin_secret
    namespace = kubernetes_namespace_v1.monitoring.metadata[0].name
  }

  data = {
    "admin-user"     = "admin"
    "admin-password" = random_password.grafana_admin.result
  }
}

resource "helm_release" "kube_prometheus_stack" {
  name       = local.kube_prometheus_stack_release
  namespace  = kubernetes_namespace_v1.monitoring.metadata[0].name
  repository = "https://prometheus-community.github.io/helm-charts"
  chart      = "kube-prometheus-stack"
  version    = "88.2.0"
  # The chart's CRDs are large; give the first install time to register them.
  timeout = 900

  values = [yamlencode(local.kube_prometheus_stack_values)]

  depends_on = [kubernetes_secret_v1.grafana_admin, kubernetes_storage_class_v1.gp3]
}
