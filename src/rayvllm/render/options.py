"""RenderOptions: what `rayvllm render` needs beyond the ServeConfig (cluster placement, image,
secrets by reference, monitoring wiring, SLO targets). The ServeConfig stays the only description
of what is served; these say where and how it runs on Kubernetes."""

from __future__ import annotations

import re

from prometheus_client.utils import floatToGoString
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rayvllm.server.metrics import LATENCY_BUCKETS, TOKEN_LATENCY_BUCKETS

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
CPU = r"^[0-9]+(\.[0-9]+)?m?$"
MEMORY = r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$"


class RenderOptions(BaseModel):
    """Kubernetes-side settings; every one has a default that suits the EKS walk-through."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(
        None,
        max_length=40,
        pattern=DNS_LABEL,
        description="RayService name; defaults to the config's app_name.",
    )
    namespace: str = Field("rayvllm", pattern=DNS_LABEL, description="Namespace of every object.")
    image: str = Field(
        "rayvllm:0.1.0",
        min_length=1,
        description="Serving image (deploy/docker/Dockerfile); pin a digest for production.",
    )
    ray_version: str = Field("2.60.0", description="Ray version inside the image.")
    run_as_user: int = Field(
        10001, ge=1, description="UID the image's user has (the Dockerfile creates 10001)."
    )

    hf_token_secret: str | None = Field(
        None,
        pattern=DNS_LABEL,
        description="Existing Secret holding the Hugging Face token; mounted as a file.",
    )
    hf_token_key: str = Field("token", min_length=1, description="Key of the token in it.")

    redis_address: str | None = Field(
        None, description="host:port of an external Redis; enables GCS fault tolerance."
    )
    redis_password_secret: str | None = Field(
        None, pattern=DNS_LABEL, description="Existing Secret with the Redis password."
    )
    redis_password_key: str = Field("password", min_length=1, description="Key of the password.")

    gpu_instance_families: tuple[str, ...] = Field(
        ("g5", "g6", "g6e"),
        description="EC2 families Karpenter may launch for GPU workers "
        "(karpenter.k8s.aws/instance-family).",
    )
    gpu_node_pool: str | None = Field(
        None, description="Karpenter NodePool for GPU workers (karpenter.sh/nodepool), if pinned."
    )
    cpu_node_pool: str | None = Field(
        None, description="Karpenter NodePool for the head and CPU workers, if pinned."
    )
    gpus_per_worker: int | None = Field(
        None, ge=1, description="GPUs each worker pod takes; defaults to the largest replica's."
    )
    head_cpu: str = Field("2", pattern=CPU, description="Head pod CPU (request = limit).")
    head_memory: str = Field("8Gi", pattern=MEMORY, description="Head pod memory.")
    worker_cpu: str | None = Field(
        None, pattern=CPU, description="Worker pod CPU; defaults to 6 (GPU) or 4 (CPU)."
    )
    worker_memory: str | None = Field(
        None, pattern=MEMORY, description="Worker pod memory; defaults to 24Gi (GPU) or 8Gi."
    )
    model_cache_size: str = Field(
        "64Gi", pattern=MEMORY, description="Size limit of the emptyDir that caches weights."
    )

    monitoring_namespace: str = Field(
        "monitoring",
        pattern=DNS_LABEL,
        description="Namespace of Prometheus and Grafana (dashboards go there).",
    )
    prometheus_release: str = Field(
        "kube-prometheus-stack",
        description="`release` label kube-prometheus-stack selects monitors and rules by.",
    )
    kuberay_namespace: str = Field(
        "kuberay-system",
        pattern=DNS_LABEL,
        description="Namespace of the KubeRay operator, the only client of the dashboard port.",
    )

    grafana_iframe_host: str = Field(
        "http://localhost:3000",
        description="Grafana URL as the browser showing the Ray dashboard reaches it.",
    )

    ttft_target_s: float = Field(
        2.5, gt=0, description="p99 time-to-first-token objective, in seconds."
    )
    tpot_target_s: float = Field(
        0.1, gt=0, description="p99 time-per-output-token objective, in seconds."
    )
    waiting_requests_max: int = Field(
        16, ge=1, description="Requests waiting in one engine's queue before we alert."
    )
    kv_cache_usage_max: float = Field(
        0.9, gt=0, le=1, description="KV-cache usage fraction before we alert."
    )
    error_ratio_max: float = Field(
        0.01, gt=0, lt=1, description="Share of 5xx answers (503 aside) before we alert."
    )
    overload_ratio_max: float = Field(
        0.05, gt=0, lt=1, description="Share of 503 (overload) answers before we alert."
    )

    @field_validator("ttft_target_s")
    @classmethod
    def _ttft_on_a_bucket(cls, value: float) -> float:
        return _on_bucket(value, LATENCY_BUCKETS, "ttft_target_s")

    @field_validator("tpot_target_s")
    @classmethod
    def _tpot_on_a_bucket(cls, value: float) -> float:
        return _on_bucket(value, TOKEN_LATENCY_BUCKETS, "tpot_target_s")

    @field_validator("redis_address")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(rediss?://)?[A-Za-z0-9.-]+:[0-9]{1,5}", value):
            raise ValueError(f"redis_address must be host:port, got {value!r}")
        return value

    @model_validator(mode="after")
    def _password_needs_redis(self) -> RenderOptions:
        if self.redis_password_secret and not self.redis_address:
            raise ValueError("redis_password_secret is set but redis_address is not")
        return self

    def grafana_env(self) -> dict[str, str]:
        """Lets the Ray dashboard embed Grafana panels (kube-prometheus-stack's Services)."""
        base = f"{self.prometheus_release}-{{}}.{self.monitoring_namespace}.svc.cluster.local"
        return {
            "RAY_GRAFANA_HOST": "http://" + base.format("grafana") + ":80",
            "RAY_PROMETHEUS_HOST": "http://" + base.format("prometheus") + ":9090",
            "RAY_PROMETHEUS_NAME": "Prometheus",
            "RAY_GRAFANA_IFRAME_HOST": self.grafana_iframe_host,
        }

    def rayservice_name(self, app_name: str) -> str:
        if self.name:
            return self.name
        name = re.sub(r"[^a-z0-9-]+", "-", app_name.lower()).strip("-")[:40].strip("-")
        return name or "rayvllm"


def _on_bucket(value: float, buckets: tuple[float, ...], field: str) -> float:
    # The burn-rate alerts count requests slower than the target from one histogram bucket,
    # so the target has to be a bucket boundary or the alert would measure another objective.
    if value not in buckets:
        allowed = ", ".join(bucket_label(b) for b in buckets)
        raise ValueError(f"{field}={value} is not a histogram bucket bound: pick one of {allowed}")
    return value


def bucket_label(bound: float) -> str:
    """The `le` label value prometheus_client writes for a bucket bound."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]
