"""ServeConfig: the one description of a deployment, read by the local server, the Ray Serve app
builder and the Kubernetes renderer alike. YAML file < CLI flags; secrets come from `settings`."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

EMBEDDED_SMOLLM2 = "embedded:smollm2-135m-instruct"
# The embedded model's engine arguments on a laptop CPU: an explicit KV-cache size, because on
# the CPU backend gpu_memory_utilization reserves that fraction of *system* memory (0.92 by
# default, which fails on any machine doing something else); 512 MiB holds ~23k tokens here.
# float32 because vLLM's CPU bf16 path (oneDNN falling back to torch linear) garbles this model's
# answers, while transformers gives the same answer in bf16 and fp32.
EMBEDDED_ENGINE_ARGS: dict[str, Any] = {
    "dtype": "float32",
    "max_model_len": 2048,
    "kv_cache_memory_bytes": 512 * 1024 * 1024,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EngineKind(StrEnum):
    vllm = "vllm"
    fake = "fake"


class FakeEngineConfig(_Strict):
    """The deterministic engine for tests and serving-layer benchmarks: no model, no weights."""

    ttft_ms: float = Field(20.0, ge=0, description="Delay before the first token, in milliseconds.")
    itl_ms: float = Field(5.0, ge=0, description="Delay between two tokens, in milliseconds.")
    max_model_len: int = Field(2048, gt=0, description="Context length the fake engine reports.")
    default_max_tokens: int = Field(
        16, gt=0, description="Tokens generated when a request does not set max_tokens."
    )


class AutoscalingConfig(_Strict):
    """Ray Serve autoscaling for one model's deployment."""

    min_replicas: int = Field(1, ge=0, description="Fewest replicas kept running.")
    max_replicas: int = Field(1, ge=1, description="Most replicas started under load.")
    initial_replicas: int | None = Field(
        None, ge=0, description="Replicas started at deploy time; defaults to min_replicas."
    )
    target_ongoing_requests: float = Field(
        32.0, gt=0, description="In-flight requests per replica that the autoscaler aims for."
    )
    upscale_delay_s: float = Field(
        30.0, ge=0, description="Seconds load must stay high before a replica is added."
    )
    downscale_delay_s: float = Field(
        600.0, ge=0, description="Seconds load must stay low before a replica is removed."
    )

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"autoscaling.min_replicas ({self.min_replicas}) exceeds "
                f"max_replicas ({self.max_replicas})"
            )
        return self


class RayActorOptions(_Strict):
    """Resources each replica reserves from Ray."""

    num_cpus: float = Field(1.0, ge=0, description="CPUs reserved per replica.")
    num_gpus: float = Field(0.0, ge=0, description="GPUs reserved per replica.")
    memory: int | None = Field(None, ge=0, description="Bytes of memory reserved per replica.")
    resources: dict[str, float] = Field(
        default_factory=dict, description="Custom Ray resources reserved per replica."
    )
    accelerator_type: str | None = Field(
        None, description="Ray accelerator type to pin replicas to (e.g. A10G, H100)."
    )


class DeploymentConfig(_Strict):
    """How Ray Serve runs one model: replicas, limits and shutdown."""

    num_replicas: int | None = Field(
        1, ge=1, description="Fixed replica count; ignored when `autoscaling` is set."
    )
    autoscaling: AutoscalingConfig | None = Field(
        None, description="Autoscaling bounds; when set, replaces num_replicas."
    )
    max_ongoing_requests: int = Field(
        256, gt=0, description="Requests a replica runs at once; more wait in its queue."
    )
    max_queued_requests: int = Field(
        -1,
        ge=-1,
        description=(
            "Requests a replica holds waiting beyond max_ongoing_requests; past that it answers "
            "at once with `limits.overload_status`. -1 means unbounded."
        ),
    )
    ray_actor_options: RayActorOptions = Field(
        default_factory=RayActorOptions, description="Resources each replica reserves."
    )
    graceful_shutdown_timeout_s: float = Field(
        30.0, ge=0, description="Seconds a stopping replica lets in-flight requests finish."
    )
    graceful_shutdown_wait_loop_s: float = Field(
        2.0, gt=0, description="Seconds between checks for in-flight requests while draining."
    )
    health_check_period_s: float = Field(
        10.0, gt=0, description="Seconds between replica health checks."
    )
    health_check_timeout_s: float = Field(
        30.0, gt=0, description="Seconds a health check may take before the replica is failed."
    )


class ModelConfig(_Strict):
    """One served model."""

    name: str = Field(
        "smollm2-135m-instruct",
        min_length=1,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:-]*$",
        description="Public model name clients send in `model`.",
    )
    source: str = Field(
        EMBEDDED_SMOLLM2,
        min_length=1,
        description=(
            "Where the weights come from: a local path, a Hugging Face repo id, "
            f"or `{EMBEDDED_SMOLLM2}`."
        ),
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Passed unchanged to vLLM's AsyncEngineArgs (max_model_len, dtype, ...).",
    )
    deployment: DeploymentConfig = Field(
        default_factory=DeploymentConfig, description="Ray Serve settings for this model."
    )

    @model_validator(mode="after")
    def _no_model_in_engine_args(self) -> ModelConfig:
        if "model" in self.engine_args:
            raise ValueError("engine_args.model is not allowed: set `source` instead")
        return self

    @property
    def is_embedded(self) -> bool:
        return self.source.startswith("embedded:")

    @property
    def max_model_len(self) -> int | None:
        value = self.engine_args.get("max_model_len")
        return int(value) if value is not None else None


class HTTPConfig(_Strict):
    """The HTTP listener."""

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    request_timeout_s: float = Field(
        600.0, gt=0, description="Seconds a request may run before it is aborted with a 408."
    )
    max_body_bytes: int = Field(
        2 * 1024 * 1024, gt=0, description="Largest request body accepted; larger gets a 413."
    )
    ingress: Literal["haproxy", "ray-proxy"] = Field(
        "haproxy",
        description=(
            "`haproxy`: Ray Serve's HAProxy forwards each connection straight to a replica's "
            "own HTTP server (direct ingress), so streamed tokens skip Ray's Python proxy. "
            "`ray-proxy`: Ray Serve's default Python proxy."
        ),
    )


class AuthConfig(_Strict):
    """Bearer API keys. The keys never travel in the config: each replica reads them itself."""

    enabled: bool = Field(
        False, description="Require `Authorization: Bearer <key>` on all routes but open_routes."
    )
    keys_file: str | None = Field(
        None,
        description=(
            "File with one key a line, read by each replica (mount a Secret there). Without it: "
            "the file named by RAYVLLM_API_KEYS_FILE, else RAYVLLM_API_KEYS (comma-separated)."
        ),
    )
    open_routes: list[str] = Field(
        default_factory=lambda: ["/health", "/ready", "/metrics"],
        description="Paths answered without a key.",
    )


class LimitsConfig(_Strict):
    """Rate limits per API key, and the answer a full replica gives."""

    requests_per_minute: int | None = Field(
        None, gt=0, description="Requests per key per minute; unset means unlimited."
    )
    tokens_per_minute: int | None = Field(
        None,
        gt=0,
        description=(
            "Prompt plus completion tokens per key per minute: max_tokens is reserved at "
            "admission and corrected with the actual usage at the end. Unset means unlimited."
        ),
    )
    store: Literal["ray", "memory"] = Field(
        "ray",
        description=(
            "Where the counts live on Ray: `ray`, one named actor shared by every replica; "
            "`memory`, each replica its own (a limit then holds per replica). Standalone "
            "servers always count in memory."
        ),
    )
    overload_status: Literal[503, 429] = Field(
        503, description="Status of a request refused because a replica's queue is full."
    )
    overload_retry_after_s: float = Field(
        1.0, ge=0, description="Retry-After sent with that refusal, in seconds."
    )


class LogConfig(_Strict):
    """What the server writes about each request."""

    log_prompts: bool = Field(
        False, description="Log each request's prompt (at INFO), cut to max_logged_chars."
    )
    max_logged_chars: int = Field(
        200, ge=0, description="Characters of a prompt kept when prompts are logged."
    )


class LocalRayConfig(_Strict):
    """The Ray that `rayvllm serve` starts on this machine when it is not given --address.
    Ignored when joining a cluster (KubeRay configures its own head)."""

    dashboard: bool = Field(
        False,
        description=(
            "Start Ray's dashboard (http://127.0.0.1:8265). Off by default: its seven head "
            "processes cost about 0.9 GiB resident (0.2 GiB proportional) on a laptop, and "
            "`rayvllm serve` deploys through Serve's Python API, not the dashboard's REST API."
        ),
    )


class ServeConfig(_Strict):
    """Everything `rayvllm serve`, `rayvllm build` and `rayvllm render` need."""

    models: list[ModelConfig] = Field(
        default_factory=lambda: [ModelConfig(engine_args=dict(EMBEDDED_ENGINE_ARGS))],
        min_length=1,
        description="The models to serve; each becomes its own Ray Serve deployment.",
    )
    http: HTTPConfig = Field(default_factory=HTTPConfig, description="HTTP listener settings.")
    engine: EngineKind = Field(
        EngineKind.vllm, description="`vllm` runs the real engine; `fake` runs no model."
    )
    fake: FakeEngineConfig = Field(
        default_factory=FakeEngineConfig, description="Settings of the fake engine."
    )
    app_name: str = Field("rayvllm", min_length=1, description="Ray Serve application name.")
    auth: AuthConfig = Field(default_factory=AuthConfig, description="API keys.")
    limits: LimitsConfig = Field(
        default_factory=LimitsConfig, description="Rate limits and overload answers."
    )
    logging: LogConfig = Field(default_factory=LogConfig, description="Request logging.")
    local_ray: LocalRayConfig = Field(
        default_factory=LocalRayConfig, description="The local Ray of `rayvllm serve`."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> ServeConfig:
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {', '.join(dupes)}")
        return self

    def model(self, name: str) -> ModelConfig:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    @classmethod
    def from_yaml(cls, path: str | Path) -> ServeConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the top level must be a mapping")
        return cls.model_validate(data)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)

    def with_overrides(self, **overrides: Any) -> ServeConfig:
        """Apply CLI flags (None means "not given"). Model flags apply to the first model."""
        data = self.model_dump(mode="json")
        first = data["models"][0]
        # `source` first: changing it may reset engine_args that later flags then fill in.
        for key, value in sorted(overrides.items(), key=lambda kv: kv[0] != "source"):
            if value is None:
                continue
            if key in {"host", "port", "request_timeout_s"}:
                data["http"][key] = value
            elif key == "engine":
                data["engine"] = value
            elif key in BLUEPRINT_ENGINE_ARGS.values():
                first["engine_args"][key] = value
            elif key == "source":
                if first["engine_args"] == EMBEDDED_ENGINE_ARGS and value != first["source"]:
                    first["engine_args"] = {}  # the laptop defaults do not fit another model
                first["source"] = value
            elif key == "model_name":
                first["name"] = value
            else:
                raise KeyError(f"unknown override {key!r}")
        return ServeConfig.model_validate(data)


# The blueprint's environment knobs, each a CLI flag of `serve` and `build` now:
# MODEL_ID -> --source; the rest -> the first model's engine_args.
BLUEPRINT_ENGINE_ARGS: dict[str, str] = {
    "GPU_MEMORY_UTILIZATION": "gpu_memory_utilization",
    "MAX_MODEL_LEN": "max_model_len",
    "MAX_NUM_SEQ": "max_num_seqs",
    "MAX_NUM_BATCHED_TOKENS": "max_num_batched_tokens",
}
BLUEPRINT_SOURCE = "MODEL_ID"


def json_schema() -> str:
    return json.dumps(ServeConfig.model_json_schema(), indent=2, sort_keys=True) + "\n"


ConfigFormat = Literal["yaml", "json"]
