"""The Ray Serve config document (`serve deploy`, RayService `serveConfigV2`) for a ServeConfig.

Pure data, no `ray` import: `rayvllm build` and the Kubernetes renderer both call this."""

from __future__ import annotations

from typing import Any

from rayvllm.config import ServeConfig

APP_BUILDER = "rayvllm.deployment.app:build_app"


def serve_config_document(config: ServeConfig, *, host: str | None = None) -> dict[str, Any]:
    """Return the Ray Serve config whose single application is built from `config` itself."""
    return {
        "proxy_location": "EveryNode",
        "http_options": {
            "host": host or config.http.host,
            "port": config.http.port,
            "request_timeout_s": config.http.request_timeout_s,
        },
        "applications": [
            {
                "name": config.app_name,
                "route_prefix": "/",
                "import_path": APP_BUILDER,
                "args": config.model_dump(mode="json", exclude_none=True),
            }
        ],
    }


def ray_env_vars(config: ServeConfig) -> dict[str, str]:
    """Environment every Ray process (head and workers) needs for this config.

    Set on the Ray cluster, not on the driver alone: Serve's controller and replicas read them
    when they import."""
    env = {"RAY_USAGE_STATS_ENABLED": "0", "VLLM_NO_USAGE_STATS": "1"}
    if config.http.ingress == "haproxy":
        # Ray 2.60: HAProxy in place of the Python proxy, and each ingress replica serving HTTP
        # itself on a port of 30000-31000 (direct ingress); HAProxy balances across them.
        env["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
        # Ray's throughput profile: user code on the replica's own event loop (no thread hop
        # per streamed chunk), the router in the caller's loop, gRPC between deployments,
        # buffered access logs. Without HAProxy it would also switch the proxy off, so it is
        # tied to this mode.
        env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1"
    return env
