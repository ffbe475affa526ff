"""`rayvllm build` writes a Ray Serve config whose app builder rebuilds the same ServeConfig."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray")


def build(tmp_path: Path, *flags: str) -> dict[str, object]:
    out = tmp_path / "serve.yaml"
    subprocess.run(
        [sys.executable, "-m", "rayvllm.cli.main", "build", "-o", str(out), *flags], check=True
    )
    data: dict[str, object] = yaml.safe_load(out.read_text())
    return data


def test_build_output_is_a_serve_config_ray_can_build(tmp_path: Path) -> None:
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
    from ray.serve.deployment import Application

    from rayvllm.config import ServeConfig

    doc = build(tmp_path, "--config", "examples/mistral-7b-gpu.yaml", "--max-num-seqs", "32")
    (app,) = doc["applications"]  # type: ignore[misc]
    assert app["route_prefix"] == "/"
    module, attr = app["import_path"].split(":")
    builder = getattr(importlib.import_module(module), attr)
    built = call_user_app_builder_with_args_if_necessary(builder, app["args"])
    assert isinstance(built, Application)
    config = ServeConfig.model_validate(app["args"])
    assert config.models[0].engine_args["max_num_seqs"] == 32  # the flag reached the app
    assert config == ServeConfig.from_yaml("examples/mistral-7b-gpu.yaml").with_overrides(
        max_num_seqs=32
    )


def test_one_model_is_its_own_ingress_several_get_a_router(tmp_path: Path) -> None:
    from rayvllm.config import ServeConfig
    from rayvllm.deployment.app import build_app

    one = build_app(ServeConfig(engine="fake"))
    assert one._bound_deployment.name == "model-smollm2-135m-instruct"
    two = build_app(
        ServeConfig.model_validate({"engine": "fake", "models": [{"name": "a"}, {"name": "b"}]})
    )
    assert two._bound_deployment.name == "router"


def test_deployment_options_come_from_the_config() -> None:
    from rayvllm.config import ServeConfig
    from rayvllm.deployment.app import deployment_options

    cfg = ServeConfig.from_yaml("examples/mistral-7b-gpu.yaml")
    opts = deployment_options(cfg.models[0], cfg.limits)
    assert opts["autoscaling_config"]["min_replicas"] == 1
    assert opts["autoscaling_config"]["max_replicas"] == 4
    assert opts["ray_actor_options"]["num_gpus"] == 1
    assert "num_replicas" not in opts


def test_engine_replicas_run_at_normal_priority_with_their_resources() -> None:
    """Ray starts workers at nice 15; an engine replica (and the vLLM processes it spawns) must
    not, or any busy process on the node takes its cores (`vllm serve` runs at nice 0)."""
    from rayvllm.config import RayActorOptions, ServeConfig
    from rayvllm.deployment.app import deployment_options

    cfg = ServeConfig()
    cfg.models[0].deployment.ray_actor_options = RayActorOptions(num_cpus=2, num_gpus=1)
    actor = deployment_options(cfg.models[0], cfg.limits)["ray_actor_options"]
    assert actor["runtime_env"]["env_vars"]["RAY_worker_niceness"] == "0"
    assert actor["num_cpus"] == 2
    assert actor["num_gpus"] == 1
