"""The SLO alerts load in Prometheus (`promtool check rules`) and fire when, and only when, their
condition holds (`promtool test rules` on alerts_test.yaml, a case for every alert)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from render_cases import load_example, of_kind

from rayvllm.render import RenderOptions
from rayvllm.render.alerts import rule_groups, serve_deployment_name

HERE = Path(__file__).parent
INSTALL_HINT = "apt-get install -y prometheus (Debian's package brings promtool)"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"promtool is missing in CI: {INSTALL_HINT}")
        pytest.skip(f"promtool is not installed: {INSTALL_HINT}")
    return path


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (rule,) = of_kind("gpu", "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    shutil.copy(HERE / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    return tmp_path


def test_rules_pass_promtool_check(promtool: str, rules_dir: Path) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_dir / "rules.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout + result.stderr


def test_every_alert_fires_as_its_unit_test_expects(promtool: str, rules_dir: Path) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=rules_dir,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rendered_alert_has_a_unit_test() -> None:
    (rule,) = of_kind("gpu", "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    tests = yaml.safe_load((HERE / "alerts_test.yaml").read_text())["tests"]
    tested = {case["alertname"] for t in tests for case in t["alert_rule_test"]}
    assert alerts == tested


def test_targets_are_parameters_and_must_be_bucket_bounds() -> None:
    config = load_example("mistral-7b-gpu.yaml")
    groups = rule_groups(config, RenderOptions(ttft_target_s=5.0, tpot_target_s=0.05))
    exprs = " ".join(r["expr"] for r in groups[0]["rules"])
    assert 'le="5.0"' in exprs and 'le="0.05"' in exprs
    with pytest.raises(ValueError, match="not a histogram bucket bound: pick one of"):
        RenderOptions(ttft_target_s=2.0)


def test_replica_alert_names_the_deployment_the_ray_app_creates() -> None:
    app = pytest.importorskip("rayvllm.deployment.app", reason="needs ray")
    for name in ("mistral-7b-instruct", "org/Model.v2:q4"):
        assert (
            serve_deployment_name(name)
            == app.deployment_options(
                load_example("mistral-7b-gpu.yaml").models[0].model_copy(update={"name": name})
            )["name"]
        )


def test_a_model_scaled_to_zero_has_no_minimum_to_alert_on() -> None:
    config = load_example("mistral-7b-gpu.yaml")
    autoscaling = config.models[0].deployment.autoscaling
    assert autoscaling is not None
    autoscaling.min_replicas = 0
    names = [r["alert"] for r in rule_groups(config, RenderOptions())[0]["rules"]]
    assert "RayvllmReplicasBelowMinimum" not in names
