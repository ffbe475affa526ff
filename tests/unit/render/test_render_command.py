"""`rayvllm render` as a user runs it: files in apply order, flags that reach the manifests, and
errors that say what to change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from render_cases import EXAMPLES
from typer.testing import CliRunner

from rayvllm.cli.render import app

GPU = str(EXAMPLES / "mistral-7b-gpu.yaml")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_render_through_the_rayvllm_entry_point_imports_no_serving_stack(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from rayvllm.cli.main import main\n"
        "try:\n"
        f"    main(['render', '--config', {GPU!r}, '--out', {str(tmp_path)!r}])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "print(sorted(m for m in ('ray', 'vllm', 'torch') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "10-rayservice.yaml").is_file()


def test_writes_one_file_per_kind_in_apply_order(tmp_path: Path) -> None:
    code, output = run("--config", GPU, "--out", str(tmp_path))
    assert code == 0, output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == "00-namespace.yaml" and names[1] == "10-rayservice.yaml"
    assert len(names) == 8
    assert "kubectl apply --server-side -f" in output
    kinds = [d["kind"] for n in names for d in yaml.safe_load_all((tmp_path / n).read_text())]
    assert kinds[0] == "Namespace"


def test_flags_reach_the_manifests(tmp_path: Path) -> None:
    code, output = run(
        "--config",
        GPU,
        "--out",
        str(tmp_path),
        "--image",
        "reg.example/rayvllm:1.2.3",
        "--namespace",
        "llm",
        "--gpu-instance-families",
        "g6e, p5",
        "--max-model-len",
        "4096",
    )
    assert code == 0, output
    rayservice = yaml.safe_load((tmp_path / "10-rayservice.yaml").read_text())
    assert rayservice["metadata"]["namespace"] == "llm"
    worker = rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
    assert worker["containers"][0]["image"] == "reg.example/rayvllm:1.2.3"
    terms = worker["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["g6e", "p5"]
    serve = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    assert serve["applications"][0]["args"]["models"][0]["engine_args"]["max_model_len"] == 4096


def test_a_new_render_replaces_the_old_files(tmp_path: Path) -> None:
    (tmp_path / "99-leftover.yaml").write_text("kind: ConfigMap\n")
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")
    code, _ = run("--config", GPU, "--out", str(tmp_path))
    assert code == 0
    assert not (tmp_path / "99-leftover.yaml").exists()
    assert (tmp_path / "kustomization.yaml").exists()  # not ours: left alone


def test_bad_values_exit_2_and_say_what_to_change(tmp_path: Path) -> None:
    code, output = run("--config", GPU, "--out", str(tmp_path), "--ttft-target", "2")
    assert code == 2
    assert "pick one of" in output and "2.5" in output
    code, output = run("--config", GPU, "--out", str(tmp_path), "--namespace", "Not_Valid")
    assert code == 2 and "namespace" in output
    code, output = run(
        "--config", GPU, "--out", str(tmp_path), "--redis-password-secret", "redis-auth"
    )
    assert code == 2 and "redis_address" in output
    assert not list(tmp_path.iterdir())
