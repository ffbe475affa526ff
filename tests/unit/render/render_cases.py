"""The configurations the render tests cover, and the schema checks they share: Kubernetes
built-ins through kubernetes-validate, the RayService through KubeRay v1.7.0's CRD schema."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from rayvllm.config import ServeConfig
from rayvllm.render import RenderOptions, render_manifests

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = REPO_ROOT / "examples"
GOLDEN = REPO_ROOT / "tests" / "golden"
KUBERAY_CRD = REPO_ROOT / "tests" / "data" / "kuberay" / "ray.io_rayservices.v1.7.0.yaml"
K8S_VERSION = "1.33"  # EKS standard support, and a version kubernetes-validate ships

# The golden renders: docs/deploy-eks.md runs the GPU one (with its own --image).
GOLDEN_CASES: dict[str, tuple[str, RenderOptions]] = {
    "gpu": ("mistral-7b-gpu.yaml", RenderOptions(hf_token_secret="hf-token")),
    "cpu": ("cpu-embedded.yaml", RenderOptions()),
}
# Every option path at least once: fault tolerance, pinned pools, a digest-pinned image.
CASES: dict[str, tuple[str, RenderOptions]] = {
    **GOLDEN_CASES,
    "fake": ("fake.yaml", RenderOptions(namespace="rayvllm-fake")),
    "gpu-ha": (
        "mistral-7b-gpu.yaml",
        RenderOptions(
            image="registry.example/rayvllm@sha256:" + "0" * 64,
            hf_token_secret="hf-token",
            redis_address="redis.rayvllm.svc.cluster.local:6379",
            redis_password_secret="redis-auth",
            gpu_node_pool="gpu",
            cpu_node_pool="cpu",
            gpus_per_worker=4,
        ),
    ),
}


def load_example(file: str) -> ServeConfig:
    return ServeConfig.from_yaml(EXAMPLES / file)


def render_case(case: str) -> dict[str, list[dict[str, Any]]]:
    file, options = CASES[case]
    return render_manifests(load_example(file), options)


def all_docs(case: str) -> list[dict[str, Any]]:
    return [doc for docs in render_case(case).values() for doc in docs]


def of_kind(case: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in all_docs(case) if doc["kind"] == kind]


def validate_builtin(doc: dict[str, Any]) -> None:
    """Raises kubernetes_validate.ValidationError on any unknown or ill-typed field."""
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@functools.cache
def rayservice_schema() -> dict[str, Any]:
    crd = yaml.safe_load(KUBERAY_CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return _forbid_unknown(copy.deepcopy(version["schema"]["openAPIV3Schema"]))


def validate_rayservice(doc: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(rayservice_schema()).validate(doc)
    # The CRD leaves metadata to the API server; check what it would.
    validate_builtin({"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]})


def _forbid_unknown(schema: dict[str, Any]) -> dict[str, Any]:
    """The API server prunes unknown fields silently; a typo would vanish, so reject them."""
    if isinstance(schema.get("properties"), dict):
        for sub in schema["properties"].values():
            _forbid_unknown(sub)
        if "additionalProperties" not in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            schema["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _forbid_unknown(schema[key])
    for key in ("anyOf", "allOf", "oneOf"):
        for sub in schema.get(key, []):
            _forbid_unknown(sub)
    return schema
