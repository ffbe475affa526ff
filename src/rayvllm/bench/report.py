"""report.json: the machine-readable result of a `rayvllm bench` run (schema, host facts,
per-target per-level metrics, ratios against the first target)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path

from pydantic import BaseModel, Field

from rayvllm.bench.http import Endpoint
from rayvllm.bench.metrics import DEFINITIONS, LevelMetrics, Slo
from rayvllm.bench.runner import Level, Target

# Bump when a field is renamed or removed; adding fields keeps the version.
SCHEMA_VERSION = 1


class GpuInfo(BaseModel):
    name: str
    memory_mib: int | None = None
    driver: str | None = None


class HostInfo(BaseModel):
    """The machine the client ran on (which is also the server's, for a local target)."""

    platform: str
    python: str
    cpu_model: str
    cpu_cores: int
    memory_gib: float | None
    load_average: list[float] | None = Field(
        None, description="1, 5 and 15 minute load when the run began: a busy host skews latency."
    )
    gpus: list[GpuInfo] = Field(default_factory=list, description="From nvidia-smi, if present.")


class ToolInfo(BaseModel):
    name: str = "rayvllm bench"
    version: str


class BenchConfig(BaseModel):
    """The workload as run, after defaults were filled in."""

    endpoint: Endpoint
    dataset: str
    dataset_path: str | None = None
    input_len: int | None = Field(None, description="Prompt tokens (random dataset only).")
    output_len: int
    tokenizer: str | None = None
    ignore_eos: bool
    seed: int
    request_timeout_s: float
    slo: Slo | None = None
    levels: list[Level]


class LevelReport(BaseModel):
    level: Level
    metrics: LevelMetrics


class TargetReport(BaseModel):
    target: Target
    levels: list[LevelReport] = Field(default_factory=list)


class Comparison(BaseModel):
    """One target against the first (the baseline) at one level."""

    level: str
    target: str
    baseline: str
    output_throughput_ratio: float | None = Field(description="target / baseline output tok/s.")
    ttft_p50_diff_ms: float | None = Field(description="target - baseline p50 TTFT.")
    itl_p99_ratio: float | None = Field(description="target / baseline p99 ITL.")


class BenchReport(BaseModel):
    schema_version: int = SCHEMA_VERSION
    tool: ToolInfo
    started_at: str
    finished_at: str | None = None
    command: str = Field(description="The command line (API keys never appear on it).")
    config: BenchConfig
    host: HostInfo
    definitions: dict[str, str] = Field(default_factory=lambda: dict(DEFINITIONS))
    targets: list[TargetReport]
    comparisons: list[Comparison] = Field(default_factory=list)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def compare(targets: list[TargetReport]) -> list[Comparison]:
    """Each later target against the first, level by level."""
    if len(targets) < 2:
        return []
    baseline = targets[0]
    comparisons = []
    for other in targets[1:]:
        for base, mine in zip(baseline.levels, other.levels, strict=True):
            b, m = base.metrics, mine.metrics
            comparisons.append(
                Comparison(
                    level=base.level.label,
                    target=other.target.name,
                    baseline=baseline.target.name,
                    output_throughput_ratio=_ratio(m.output_throughput, b.output_throughput),
                    ttft_p50_diff_ms=(
                        m.ttft_ms.p50 - b.ttft_ms.p50 if m.ttft_ms and b.ttft_ms else None
                    ),
                    itl_p99_ratio=_ratio(
                        m.itl_ms.p99 if m.itl_ms else None, b.itl_ms.p99 if b.itl_ms else None
                    ),
                )
            )
    return comparisons


def tool_info() -> ToolInfo:
    try:
        version = importlib.metadata.version("rayvllm")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return ToolInfo(version=version)


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        return None
    return None


def _gpus() -> list[GpuInfo]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        name, memory, driver = ([*line.split(","), "", ""])[:3]
        gpus.append(
            GpuInfo(
                name=name.strip(),
                memory_mib=int(memory) if memory.strip().isdigit() else None,
                driver=driver.strip() or None,
            )
        )
    return gpus


def host_info() -> HostInfo:
    memory_kib = _proc_field("/proc/meminfo", "MemTotal")
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return HostInfo(
        platform=platform.platform(),
        python=platform.python_version(),
        cpu_model=_proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        cpu_cores=os.cpu_count() or 0,
        memory_gib=round(int(memory_kib.split()[0]) / 2**20, 1) if memory_kib else None,
        load_average=load,
        gpus=_gpus(),
    )


def write_json(report: BenchReport, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.json"
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path
