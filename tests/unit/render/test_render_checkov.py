"""checkov finds nothing to fix in the rendered manifests or the serving image's Dockerfile, and
every check we skip says why beside it.

checkov does not look inside custom resources, so the RayService's head and worker pod
templates are also written out as plain Pods (annotations included, so the skips carry over):
its ~90 pod checks then run on exactly what KubeRay will create. checkov runs from its own
virtual environment, since it pins packaging and networkx far below what vLLM needs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from render_cases import CASES, REPO_ROOT, render_case

from rayvllm.render import to_yaml

CHECKOV_VENV = REPO_ROOT / ".cache" / "checkov"
INSTALL_HINT = (
    f"python3 -m venv {CHECKOV_VENV} && {CHECKOV_VENV}/bin/pip install checkov==3.3.30 "
    "(or set CHECKOV_BIN)"
)
# Every skip, with the reason it is acceptable (the reason itself sits beside the skip).
ALLOWED_SKIPS = {
    "CKV_K8S_22",  # readOnlyRootFilesystem: Ray/vLLM/Triton/HF write under HOME and /tmp
    "CKV_K8S_43",  # image digest: the image is a flag; a digest passed to --image satisfies it
    "CKV_K8S_38",  # service account token: the KubeRay autoscaler sidecar needs it (head only)
    "CKV_DOCKER_2",  # HEALTHCHECK: Kubernetes ignores it; the pods have probes
}


def find_checkov() -> str | None:
    for candidate in (os.environ.get("CHECKOV_BIN"), str(CHECKOV_VENV / "bin" / "checkov")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("checkov")


def pods_of(rayservice: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = rayservice["spec"]["rayClusterConfig"]
    groups = [("head", cluster["headGroupSpec"])] + [
        (g["groupName"], g) for g in cluster["workerGroupSpecs"]
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{rayservice['metadata']['name']}-{group}",
                "namespace": rayservice["metadata"]["namespace"],
                **spec["template"]["metadata"],
            },
            "spec": spec["template"]["spec"],
        }
        for group, spec in groups
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    checkov = find_checkov()
    if checkov is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"checkov is missing in CI: {INSTALL_HINT}")
        pytest.skip(f"checkov is not installed: {INSTALL_HINT}")
    root = tmp_path_factory.mktemp("checkov")
    for case in CASES:
        out = root / case
        out.mkdir()
        for file_name, docs in render_case(case).items():
            (out / file_name).write_text(to_yaml(docs))
            for doc in docs:
                if doc["kind"] == "RayService":
                    (out / "pods.yaml").write_text(yaml.safe_dump_all(pods_of(doc)))
    shutil.copy(REPO_ROOT / "deploy" / "docker" / "Dockerfile", root / "Dockerfile")
    result = subprocess.run(
        [
            checkov,
            "-d",
            str(root),
            "--framework",
            "kubernetes",
            "dockerfile",
            "-o",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    parsed = json.loads(result.stdout)
    reports: list[dict[str, Any]] = parsed if isinstance(parsed, list) else [parsed]
    return reports


def checks(report: list[dict[str, Any]], outcome: str) -> list[dict[str, Any]]:
    return [c for r in report for c in r["results"][f"{outcome}_checks"]]


def test_no_failed_check(report: list[dict[str, Any]]) -> None:
    failed = [(c["check_id"], c["check_name"], c["resource"]) for c in checks(report, "failed")]
    assert failed == []


def test_every_skip_is_allowed_and_says_why(report: list[dict[str, Any]]) -> None:
    skipped = checks(report, "skipped")
    assert skipped, "the skips should show up as skipped, not vanish"
    for check in skipped:
        assert check["check_id"] in ALLOWED_SKIPS, check["check_id"]
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check["check_id"]


def test_pod_templates_and_dockerfile_were_really_checked(report: list[dict[str, Any]]) -> None:
    passed = checks(report, "passed")
    pods = {c["resource"] for c in passed if c["resource"].startswith("Pod.")}
    assert {
        "Pod.rayvllm.mistral-head",
        "Pod.rayvllm.mistral-gpu-workers",
        "Pod.rayvllm.smollm2-cpu-workers",
    } <= pods
    ids = {c["check_id"] for c in passed}
    # seccomp, no privilege escalation, network policy coverage, a Dockerfile USER.
    assert {"CKV_K8S_31", "CKV_K8S_20", "CKV2_K8S_6", "CKV_DOCKER_3"} <= ids


def test_a_digest_pinned_image_needs_no_skip(report: list[dict[str, Any]]) -> None:
    digest_skips = [
        c
        for c in checks(report, "skipped")
        if c["check_id"] == "CKV_K8S_43" and "gpu-ha" in c["file_path"]
    ]
    assert digest_skips == []
