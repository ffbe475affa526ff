from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from rayvllm.config import EMBEDDED_SMOLLM2, ServeConfig, json_schema


def test_default_config_serves_the_embedded_model_locally() -> None:
    cfg = ServeConfig()
    assert [m.source for m in cfg.models] == [EMBEDDED_SMOLLM2]
    assert (cfg.http.host, cfg.http.port) == ("127.0.0.1", 8000)
    assert cfg.engine.value == "vllm"


def test_yaml_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "models:\n- name: mistral\n  source: mistralai/Mistral-7B-Instruct-v0.2\n"
        "  engine_args: {max_model_len: 8192, gpu_memory_utilization: 0.9}\n"
        "  deployment:\n    autoscaling: {min_replicas: 1, max_replicas: 4}\n"
        "    ray_actor_options: {num_gpus: 1}\n"
    )
    cfg = ServeConfig.from_yaml(path)
    assert cfg.models[0].engine_args == {"max_model_len": 8192, "gpu_memory_utilization": 0.9}
    assert cfg.models[0].deployment.autoscaling is not None
    again = tmp_path / "again.yaml"
    again.write_text(cfg.to_yaml())
    assert ServeConfig.from_yaml(again) == cfg


def test_flags_override_the_file_and_map_blueprint_knobs() -> None:
    cfg = ServeConfig().with_overrides(
        port=9000,
        source="/models/m",
        max_model_len=4096,
        gpu_memory_utilization=0.8,
        max_num_seqs=64,
        max_num_batched_tokens=8192,
        host=None,
    )
    assert cfg.http.port == 9000 and cfg.http.host == "127.0.0.1"
    assert cfg.models[0].source == "/models/m"
    assert cfg.models[0].engine_args == {
        "max_model_len": 4096,
        "gpu_memory_utilization": 0.8,
        "max_num_seqs": 64,
        "max_num_batched_tokens": 8192,
    }


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"models": []}, "at least 1"),
        ({"models": [{"name": "a"}, {"name": "a"}]}, "repeated: a"),
        ({"http": {"port": 0}}, "port"),
        ({"models": [{"engine_args": {"model": "x"}}]}, "set `source`"),
        (
            {"models": [{"deployment": {"autoscaling": {"min_replicas": 3, "max_replicas": 2}}}]},
            "exceeds",
        ),
        ({"unknown_field": 1}, "unknown_field"),
        ({"engine": "tensorrt"}, "engine"),
    ],
)
def test_bad_config_is_rejected_with_a_reason(data: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as err:
        ServeConfig.model_validate(data)
    assert fragment in str(err.value)


def test_checked_in_schema_matches_the_model() -> None:
    checked_in = Path(__file__).parents[2] / "docs" / "config.schema.json"
    assert json.loads(checked_in.read_text()) == json.loads(json_schema()), (
        "docs/config.schema.json is stale: run `make schema`"
    )


def test_every_field_is_described() -> None:
    def walk(schema: dict[str, object], defs: dict[str, object], where: str) -> None:
        for name, prop in schema.get("properties", {}).items():  # type: ignore[attr-defined]
            assert "description" in prop, f"{where}.{name} has no description"

    full = ServeConfig.model_json_schema()
    defs = full.get("$defs", {})
    walk(full, defs, "ServeConfig")
    for name, sub in defs.items():
        if "properties" in sub:
            walk(sub, defs, name)
