"""The RayService a user applies: the Serve config `rayvllm build` writes, a head that runs no
replica, workers sized from the config, pods that shut down gracefully and run locked down."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from render_cases import CASES, load_example, of_kind, render_case

from rayvllm.config import AutoscalingConfig, RayActorOptions, ServeConfig
from rayvllm.deployment.serve_config import serve_config_document
from rayvllm.render import RenderOptions
from rayvllm.render.rayservice import render_rayservice
from rayvllm.render.sizing import plan_workers


def cluster(case: str) -> dict[str, Any]:
    (rayservice,) = of_kind(case, "RayService")
    spec: dict[str, Any] = rayservice["spec"]["rayClusterConfig"]
    return spec


def pod_specs(case: str) -> list[dict[str, Any]]:
    c = cluster(case)
    return [c["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in c["workerGroupSpecs"]
    ]


def worker_container(case: str) -> dict[str, Any]:
    container: dict[str, Any] = cluster(case)["workerGroupSpecs"][0]["template"]["spec"][
        "containers"
    ][0]
    return container


@pytest.mark.parametrize("case", CASES)
def test_serve_config_is_what_build_writes_for_the_same_config(case: str) -> None:
    file, _ = CASES[case]
    (rayservice,) = of_kind(case, "RayService")
    expected = serve_config_document(load_example(file), host="0.0.0.0")
    assert yaml.safe_load(rayservice["spec"]["serveConfigV2"]) == expected


@pytest.mark.parametrize("case", CASES)
def test_head_runs_no_replica_and_no_gpu(case: str) -> None:
    head = cluster(case)["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    limits = head["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert "nvidia.com/gpu" not in limits
    assert "tolerations" not in head["template"]["spec"]


def test_gpu_example_gets_one_gpu_per_worker_and_scales_one_to_four() -> None:
    (group,) = cluster("gpu")["workerGroupSpecs"]
    assert (group["minReplicas"], group["maxReplicas"], group["replicas"]) == (1, 4, 1)
    resources = group["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "1"
    spec = group["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (expression,) = terms["nodeSelectorTerms"][0]["matchExpressions"]
    assert expression["key"] == "karpenter.k8s.aws/instance-family"
    assert cluster("gpu")["enableInTreeAutoscaling"] is True


def test_four_gpu_workers_hold_four_one_gpu_replicas() -> None:
    (group,) = cluster("gpu-ha")["workerGroupSpecs"]
    assert (group["minReplicas"], group["maxReplicas"]) == (1, 1)
    assert group["template"]["spec"]["nodeSelector"]["karpenter.sh/nodepool"] == "gpu"


def test_cpu_example_gets_a_cpu_worker_group_and_no_autoscaler() -> None:
    c = cluster("cpu")
    (group,) = c["workerGroupSpecs"]
    assert group["groupName"] == "cpu-workers"
    assert (group["minReplicas"], group["maxReplicas"]) == (1, 1)
    container = group["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert "tolerations" not in group["template"]["spec"]
    assert "enableInTreeAutoscaling" not in c


def test_sizing_counts_every_model_and_rejects_a_replica_bigger_than_a_worker() -> None:
    config = ServeConfig.model_validate(
        {
            "models": [
                {
                    "name": "a",
                    "deployment": {
                        "autoscaling": {"min_replicas": 1, "max_replicas": 3},
                        "ray_actor_options": {"num_gpus": 1},
                    },
                },
                {
                    "name": "b",
                    "deployment": {"num_replicas": 2, "ray_actor_options": {"num_gpus": 0.5}},
                },
            ]
        }
    )
    plan = plan_workers(config, RenderOptions(gpus_per_worker=2))
    assert (plan.min_workers, plan.max_workers) == (1, 2)  # ceil(2/2), ceil(4/2)
    config.models[0].deployment.ray_actor_options = RayActorOptions(num_gpus=4)
    with pytest.raises(ValueError, match="more GPUs per replica than a worker has"):
        plan_workers(config, RenderOptions(gpus_per_worker=2))


def test_a_model_scaled_to_zero_lets_workers_scale_to_zero() -> None:
    config = ServeConfig()
    config.models[0].deployment.autoscaling = AutoscalingConfig(min_replicas=0, max_replicas=2)
    config.models[0].deployment.ray_actor_options = RayActorOptions(num_cpus=4)  # a worker each
    (group,) = render_rayservice(config, RenderOptions())["spec"]["rayClusterConfig"][
        "workerGroupSpecs"
    ]
    assert (group["minReplicas"], group["maxReplicas"]) == (0, 2)


@pytest.mark.parametrize("case", CASES)
def test_graceful_shutdown_fits_inside_the_termination_grace_period(case: str) -> None:
    file, _ = CASES[case]
    serve_grace = max(m.deployment.graceful_shutdown_timeout_s for m in load_example(file).models)
    for spec in pod_specs(case):
        assert spec["terminationGracePeriodSeconds"] > serve_grace
        stop = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1]
        assert f"--grace-period {int(serve_grace)}" in stop


@pytest.mark.parametrize("case", CASES)
def test_serving_pods_are_locked_down_and_kept_by_karpenter(case: str) -> None:
    c = cluster(case)
    templates = [c["headGroupSpec"]["template"]] + [g["template"] for g in c["workerGroupSpecs"]]
    for template in templates:
        assert template["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"] == "true"
        pod = template["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = template["spec"]["containers"]
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"] == container["resources"]["limits"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["path"]
        # Ten minutes before liveness may restart a slow-starting Ray node.
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    autoscaler = c.get("autoscalerOptions")
    if autoscaler:
        assert autoscaler["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_worker_readiness_waits_for_the_serve_proxy() -> None:
    probe = worker_container("gpu")["readinessProbe"]
    assert probe["httpGet"] == {"path": "/-/healthz", "port": 8000}


def test_gcs_fault_tolerance_uses_the_external_redis_and_a_secret_password() -> None:
    ft = cluster("gpu-ha")["gcsFaultToleranceOptions"]
    assert ft["redisAddress"] == "redis.rayvllm.svc.cluster.local:6379"
    assert ft["redisPassword"] == {
        "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": "password"}}
    }
    assert "gcsFaultToleranceOptions" not in cluster("gpu")


def test_image_and_namespace_are_parameters() -> None:
    docs = render_case("fake")
    assert all(
        doc["metadata"]["namespace"] == "rayvllm-fake"
        for objects in docs.values()
        for doc in objects
        if doc["kind"] not in {"Namespace", "ConfigMap"}
    )
    digest = "registry.example/rayvllm@sha256:" + "0" * 64
    for spec in pod_specs("gpu-ha"):
        assert spec["containers"][0]["image"] == digest


def test_rayservice_exposes_serving_through_its_own_service() -> None:
    (rayservice,) = of_kind("gpu", "RayService")
    service = rayservice["spec"]["serveService"]
    assert service["metadata"]["name"] == "mistral-serve"
    assert [p["port"] for p in service["spec"]["ports"]] == [8000]
    assert rayservice["spec"]["excludeHeadPodFromServeSvc"] is True
