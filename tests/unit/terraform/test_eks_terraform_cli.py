"""The real terraform binary on the stack, offline: formatting, variable validations, templates.

A full `terraform validate` needs the registry modules and the helm/kubernetes/kubectl providers,
which cannot be downloaded here; these checks need neither. Skipped where terraform is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from eks_stack import KARPENTER_TEMPLATES, STACK_DIR, render_template

TERRAFORM = shutil.which("terraform")
pytestmark = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")

# No CLI config: the machine's may point at mirrors this test does not need.
ENV = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": ""}


def terraform(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    return subprocess.run(
        [TERRAFORM, *args, "-no-color"],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def variables_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """variables.tf alone: no providers or modules, so init and plan work offline."""
    workdir = tmp_path_factory.mktemp("variables")
    shutil.copy(STACK_DIR / "variables.tf", workdir)
    init = terraform("init", "-backend=false", "-input=false", cwd=workdir)
    assert init.returncode == 0, init.stderr
    yield workdir


def plan_with(workdir: Path, **overrides: object) -> subprocess.CompletedProcess[str]:
    var_file = workdir / "overrides.tfvars.json"
    var_file.write_text(json.dumps(overrides))
    return terraform("plan", "-input=false", f"-var-file={var_file.name}", cwd=workdir)


def test_stack_is_formatted() -> None:
    result = terraform("fmt", "-check", "-recursive", "-diff", cwd=STACK_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_defaults_pass_every_validation(variables_only: Path) -> None:
    result = plan_with(variables_only)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"availability_zones": ["eu-west-1a", "eu-west-1b"]}, "must be a zone of var.region"),
        ({"availability_zones": ["us-west-2a"]}, "2 to 4 distinct zones"),
        ({"gpu_instance_families": ["m5"]}, "NVIDIA GPU families"),
        ({"gpu_capacity_types": ["preemptible"]}, "subset of: on-demand, spot, reserved"),
        ({"kubernetes_version": "1.25"}, "between 1.29 and 1.35"),
        ({"cluster_endpoint_public_access_cidrs": ["10.0.0.0/33"]}, "valid IPv4 CIDRs"),
        ({"node_ami_alias": "ubuntu@latest"}, "al2023@<version>"),
        ({"system_node_count": {"min": 1, "desired": 1, "max": 2}}, "2 <= min"),
        ({"cloudwatch_log_retention_days": 42}, "CloudWatch Logs accepts"),
    ],
)
def test_invalid_inputs_are_rejected_at_plan_time_with_a_clear_message(
    variables_only: Path, overrides: dict[str, object], message: str
) -> None:
    result = plan_with(variables_only, **overrides)
    assert result.returncode != 0
    assert message in " ".join(result.stderr.split())


def test_python_rendering_of_templates_matches_terraform_templatefile(tmp_path: Path) -> None:
    """Guards the renderer the other tests use: Terraform itself renders the GPU pool."""
    context = {
        "node_class_name": "gpu",
        "gpu_instance_families": ["g5", "g6", "p5"],
        "capacity_types": ["on-demand", "spot"],
        "gpu_limit": 8,
        "cpu_limit": 256,
    }
    template = KARPENTER_TEMPLATES / "nodepool-gpu.yaml.tftpl"
    context_literal = json.dumps(json.dumps(context))  # an HCL string holding the JSON
    (tmp_path / "main.tf").write_text(
        'output "rendered" {\n'
        f'  value = yamldecode(templatefile("{template}", jsondecode({context_literal})))\n'
        "}\n"
    )
    assert terraform("init", "-backend=false", "-input=false", cwd=tmp_path).returncode == 0
    applied = terraform("apply", "-auto-approve", "-input=false", cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    output = terraform("output", "-json", "rendered", cwd=tmp_path)
    by_terraform = json.loads(output.stdout)
    assert by_terraform == render_template(template, context)
