"""The RayService (ray.io/v1, KubeRay v1.7): serveConfigV2 is exactly what `rayvllm build` writes
for the same ServeConfig; a CPU-only head and one worker group sized by `sizing`."""

from __future__ import annotations

import math
from typing import Any

import yaml

from rayvllm.config import ServeConfig
from rayvllm.deployment.serve_config import ray_env_vars, serve_config_document
from rayvllm.render import labels
from rayvllm.render.options import RenderOptions
from rayvllm.render.sizing import WorkerPlan, plan_workers

HF_TOKEN_DIR = "/var/run/secrets/huggingface"
HF_HOME = "/cache/huggingface"
RAY_LOGS = "/tmp/ray"
METRICS_PORT = 8080
DASHBOARD_PORT = 8265
DASHBOARD_AGENT_PORT = 52365
GCS_PORT = 6379
CLIENT_PORT = 10001
PRESTOP_SLEEP_S = 5  # lets endpoints drop the pod before Ray starts to stop
SHUTDOWN_MARGIN_S = 30

READ_ONLY_ROOT_REASON = (
    "Ray, vLLM, torch.compile/Triton and Hugging Face write caches and sockets under HOME, "
    "/tmp and package dirs at run time; the big writers are on emptyDirs already"
)


def render_rayservice(config: ServeConfig, options: RenderOptions) -> dict[str, Any]:
    name = options.rayservice_name(config.app_name)
    plan = plan_workers(config, options)
    cluster: dict[str, Any] = {
        "rayVersion": options.ray_version,
        "headGroupSpec": {
            "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
            "template": _head_template(config, options, name, plan),
        },
        "workerGroupSpecs": [_worker_group(config, options, name, plan)],
    }
    if plan.autoscaling:
        cluster["enableInTreeAutoscaling"] = True
        cluster["autoscalerOptions"] = {
            "upscalingMode": "Default",
            "idleTimeoutSeconds": 300,
            "imagePullPolicy": "Always",
            "resources": _resources("500m", "1Gi"),
            "securityContext": _container_security(options),
        }
    if options.redis_address:
        cluster["gcsFaultToleranceOptions"] = _gcs_fault_tolerance(options)
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": labels.metadata(name, options.namespace, name),
        "spec": {
            "serveConfigV2": yaml.safe_dump(
                serve_config_document(config, host="0.0.0.0"), sort_keys=False
            ),
            # The head reserves no CPU, so it runs no replica: keep client traffic on workers.
            "excludeHeadPodFromServeSvc": True,
            "serveService": {
                "metadata": {"name": f"{name}-serve", "labels": labels.common_labels(name)},
                "spec": {
                    "type": "ClusterIP",
                    "ports": [_port("serve", config.http.port)],
                },
            },
            "rayClusterConfig": cluster,
        },
    }


def _head_template(
    config: ServeConfig, options: RenderOptions, name: str, plan: WorkerPlan
) -> dict[str, Any]:
    container = {
        "name": "ray-head",
        **_container_base(config, options),
        "ports": [
            _container_port("gcs-server", GCS_PORT),
            _container_port("dashboard", DASHBOARD_PORT),
            _container_port("client", CLIENT_PORT),
            _container_port("serve", config.http.port),
            _container_port("metrics", METRICS_PORT),
        ],
        "resources": _resources(options.head_cpu, options.head_memory),
        "env": _env(config, options, with_token=False, extra=options.grafana_env()),
        "volumeMounts": [{"name": "ray-logs", "mountPath": RAY_LOGS}],
        # GCS health covers the whole cluster: a head whose GCS is gone must restart.
        # 10 min for Ray to start on a busy node; models load in replicas after that.
        "startupProbe": _probe("/api/gcs_healthz", DASHBOARD_PORT, period=10, failures=60),
        # Lenient: restarting the head restarts every replica (unless GCS is fault tolerant).
        "livenessProbe": _probe("/api/gcs_healthz", DASHBOARD_PORT, period=10, failures=30),
        "readinessProbe": _probe(
            "/api/local_raylet_healthz", DASHBOARD_AGENT_PORT, period=10, failures=3
        ),
    }
    skips = _checkov_skips(options)
    if plan.autoscaling:
        skips.append(
            "CKV_K8S_38=the KubeRay autoscaler sidecar in the head pod scales workers "
            "through the Kubernetes API with this pod's service account token"
        )
    spec = _pod_spec(config, options, container, volumes=[_empty_dir("ray-logs", "10Gi")])
    spec["automountServiceAccountToken"] = plan.autoscaling
    spec["nodeSelector"] = _node_selector(options.cpu_node_pool)
    return _template(name, labels.HEAD, spec, skips)


def _worker_group(
    config: ServeConfig, options: RenderOptions, name: str, plan: WorkerPlan
) -> dict[str, Any]:
    resources = _resources(plan.cpu, plan.memory)
    if plan.uses_gpus:
        for part in ("requests", "limits"):
            resources[part]["nvidia.com/gpu"] = str(plan.gpus_per_worker)
    volumes = [
        _empty_dir("ray-logs", "10Gi"),
        _empty_dir("model-cache", options.model_cache_size),
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "ray-logs", "mountPath": RAY_LOGS},
        {"name": "model-cache", "mountPath": HF_HOME},
    ]
    if options.hf_token_secret:
        volumes.append(
            {
                "name": "hf-token",
                "secret": {
                    "secretName": options.hf_token_secret,
                    "items": [{"key": options.hf_token_key, "path": "token"}],
                    "defaultMode": 0o440,
                },
            }
        )
        mounts.append({"name": "hf-token", "mountPath": HF_TOKEN_DIR, "readOnly": True})
    container = {
        "name": "ray-worker",
        **_container_base(config, options),
        "ports": [
            _container_port("serve", config.http.port),
            _container_port("metrics", METRICS_PORT),
        ],
        "resources": resources,
        "env": _env(config, options, with_token=bool(options.hf_token_secret)),
        "volumeMounts": mounts,
        "startupProbe": _probe(
            "/api/local_raylet_healthz", DASHBOARD_AGENT_PORT, period=10, failures=60
        ),
        "livenessProbe": _probe(
            "/api/local_raylet_healthz", DASHBOARD_AGENT_PORT, period=10, failures=12
        ),
        # KubeRay's own default for RayService workers: ready once this node's Serve proxy is.
        "readinessProbe": _probe("/-/healthz", config.http.port, period=5, failures=2),
    }
    spec = _pod_spec(config, options, container, volumes=volumes)
    spec["automountServiceAccountToken"] = False
    if plan.uses_gpus:
        spec["nodeSelector"] = _node_selector(options.gpu_node_pool)
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "karpenter.k8s.aws/instance-family",
                                    "operator": "In",
                                    "values": list(options.gpu_instance_families),
                                }
                            ]
                        }
                    ]
                }
            }
        }
        spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    else:
        spec["nodeSelector"] = _node_selector(options.cpu_node_pool)
    return {
        "groupName": plan.group_name,
        "replicas": plan.min_workers,
        "minReplicas": plan.min_workers,
        "maxReplicas": plan.max_workers,
        "rayStartParams": {},  # KubeRay derives num-cpus/num-gpus from the limits
        "template": _template(name, labels.WORKER, spec, _checkov_skips(options)),
    }


def graceful_shutdown_s(config: ServeConfig) -> int:
    return math.ceil(max(m.deployment.graceful_shutdown_timeout_s for m in config.models))


def _container_base(config: ServeConfig, options: RenderOptions) -> dict[str, Any]:
    grace = graceful_shutdown_s(config)
    stop = f"sleep {PRESTOP_SLEEP_S} && ray stop --grace-period {grace}"
    return {
        "image": options.image,
        "imagePullPolicy": "Always",
        "securityContext": _container_security(options),
        "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", stop]}}},
    }


def _pod_spec(
    config: ServeConfig, options: RenderOptions, container: dict[str, Any], volumes: list[Any]
) -> dict[str, Any]:
    # Longer than Serve's graceful shutdown, so in-flight requests finish before SIGKILL.
    grace = PRESTOP_SLEEP_S + graceful_shutdown_s(config) + SHUTDOWN_MARGIN_S
    return {
        "containers": [container],
        "volumes": volumes,
        "terminationGracePeriodSeconds": grace,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": options.run_as_user,
            "runAsGroup": options.run_as_user,
            "fsGroup": options.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def _template(name: str, component: str, spec: dict[str, Any], skips: list[str]) -> dict[str, Any]:
    annotations = {
        # A node Karpenter consolidates away takes a loaded model with it.
        "karpenter.sh/do-not-disrupt": "true",
        **{f"checkov.io/skip{i}": skip for i, skip in enumerate(skips, start=1)},
    }
    return {
        "metadata": {"labels": labels.pod_labels(name, component), "annotations": annotations},
        "spec": spec,
    }


def _checkov_skips(options: RenderOptions) -> list[str]:
    skips = [f"CKV_K8S_22={READ_ONLY_ROOT_REASON}"]
    if "@sha256:" not in options.image:
        skips.append("CKV_K8S_43=the image is a parameter: pass --image repo@sha256:... to pin it")
    return skips


def _container_security(options: RenderOptions) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": options.run_as_user,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _env(
    config: ServeConfig,
    options: RenderOptions,
    *,
    with_token: bool,
    extra: dict[str, str] | None = None,
) -> list[dict[str, str]]:
    env = {**ray_env_vars(config), "HF_HOME": HF_HOME, **(extra or {})}
    if with_token:
        # A file path, never the token: huggingface_hub reads the file when it needs it.
        env["HF_TOKEN_PATH"] = f"{HF_TOKEN_DIR}/token"
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


def _gcs_fault_tolerance(options: RenderOptions) -> dict[str, Any]:
    ft: dict[str, Any] = {"redisAddress": options.redis_address}
    if options.redis_password_secret:
        ft["redisPassword"] = {
            "valueFrom": {
                "secretKeyRef": {
                    "name": options.redis_password_secret,
                    "key": options.redis_password_key,
                }
            }
        }
    return ft


def _node_selector(node_pool: str | None) -> dict[str, str]:
    selector = {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    if node_pool:
        selector["karpenter.sh/nodepool"] = node_pool
    return selector


def _probe(path: str, port: int, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _resources(cpu: str, memory: str) -> dict[str, dict[str, str]]:
    # requests == limits: Ray sizes itself from the limits, and a Guaranteed pod is evicted last.
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu, "memory": memory},
    }


def _empty_dir(name: str, size: str) -> dict[str, Any]:
    return {"name": name, "emptyDir": {"sizeLimit": size}}


def _container_port(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "containerPort": port, "protocol": "TCP"}


def _port(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "port": port, "targetPort": port, "protocol": "TCP"}
