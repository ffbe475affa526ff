"""How many Ray worker pods a ServeConfig needs, and how big each is.

One worker group: GPU workers when any model reserves GPUs, CPU workers otherwise. Bounds come
from the replicas' reservations: workers = ceil(sum over models of replicas x units per replica /
units per worker), with `min_replicas` for the lower bound and `max_replicas` for the upper one.
It ignores bin-packing losses across models of different sizes: simple, and exact for the common
case of one model or models of one size."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rayvllm.config import ModelConfig, ServeConfig
from rayvllm.render.options import RenderOptions

GPU_WORKER_CPU, GPU_WORKER_MEMORY = "6", "24Gi"
CPU_WORKER_CPU, CPU_WORKER_MEMORY = "4", "8Gi"


@dataclass(frozen=True)
class WorkerPlan:
    group_name: str
    gpus_per_worker: int  # 0 for CPU workers
    cpu: str
    memory: str
    min_workers: int
    max_workers: int
    autoscaling: bool

    @property
    def uses_gpus(self) -> bool:
        return self.gpus_per_worker > 0


def replica_bounds(model: ModelConfig) -> tuple[int, int]:
    d = model.deployment
    if d.autoscaling is not None:
        return d.autoscaling.min_replicas, d.autoscaling.max_replicas
    fixed = d.num_replicas or 1
    return fixed, fixed


def min_total_replicas(config: ServeConfig) -> int:
    return sum(replica_bounds(m)[0] for m in config.models)


def plan_workers(config: ServeConfig, options: RenderOptions) -> WorkerPlan:
    gpus = [m.deployment.ray_actor_options.num_gpus for m in config.models]
    autoscaling = any(lo != hi for lo, hi in map(replica_bounds, config.models))
    if max(gpus) > 0:
        per_worker = options.gpus_per_worker or math.ceil(max(gpus))
        too_big = [m.name for m, g in zip(config.models, gpus, strict=True) if g > per_worker]
        if too_big:
            raise ValueError(
                f"models {', '.join(too_big)} reserve more GPUs per replica than a worker has "
                f"({per_worker}); raise gpus_per_worker"
            )
        lo, hi = _workers(config, gpus, per_worker)
        return WorkerPlan(
            "gpu-workers",
            per_worker,
            options.worker_cpu or GPU_WORKER_CPU,
            options.worker_memory or GPU_WORKER_MEMORY,
            lo,
            hi,
            autoscaling,
        )
    cpu = options.worker_cpu or CPU_WORKER_CPU
    cpus = [m.deployment.ray_actor_options.num_cpus for m in config.models]
    lo, hi = _workers(config, cpus, cpu_cores(cpu))
    return WorkerPlan(
        "cpu-workers", 0, cpu, options.worker_memory or CPU_WORKER_MEMORY, lo, hi, autoscaling
    )


def _workers(config: ServeConfig, units: list[float], per_worker: float) -> tuple[int, int]:
    bounds = [replica_bounds(m) for m in config.models]
    low = sum(lo * u for (lo, _), u in zip(bounds, units, strict=True))
    high = sum(hi * u for (_, hi), u in zip(bounds, units, strict=True))
    # Replicas that reserve none of the unit still need a node to run on.
    needs_one = 1 if any(lo > 0 for lo, _ in bounds) else 0
    return max(needs_one, math.ceil(low / per_worker)), max(1, math.ceil(high / per_worker))


def cpu_cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
