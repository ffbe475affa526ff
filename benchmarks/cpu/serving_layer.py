"""The serving layer alone: the fake engine (20 ms to the first token, then one every 5 ms) behind
rayvllm on Ray, with the HAProxy ingress and then with Ray's Python proxy, against the same fake
engine behind one plain uvicorn process (`rayvllm serve --standalone`). Besides tokens/s it
records the CPU seconds each server's process tree and the client spent, which tells contention
(client and server sharing 2 cores) apart from a slower serving path.

    flock /tmp/rayvllm-heavy.lock python benchmarks/cpu/serving_layer.py
    flock /tmp/rayvllm-heavy.lock python benchmarks/cpu/serving_layer.py --pin  # client on CPU 0,
                                                                                # servers on CPU 1
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import harness as h

FAKE_YAML = """\
engine: fake
fake: {{ttft_ms: 20, itl_ms: 5}}
http: {{host: 127.0.0.1, port: {port}, ingress: {ingress}}}
"""
STANDALONE = "http://127.0.0.1:8200"
RAY = "http://127.0.0.1:8000"


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def idle_cpu_rate(server: h.Server, seconds: float = 10) -> float:
    """CPU cores a server's tree keeps busy while serving nothing (Ray's background work)."""
    before = h.tree_cpu_seconds(server)
    time.sleep(seconds)
    return round((h.tree_cpu_seconds(server) - before) / seconds, 3)


def compare(
    ray_name: str, standalone: h.Server, ray: h.Server, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "rayvllm.cli.main",
        "bench",
        "--compare",
        f"standalone={STANDALONE},{ray_name}={RAY}",
        "--tokenizer",
        str(h.CHECKPOINT),
        "--input-len",
        "64",
        "--output-len",
        "128",
        "--concurrency",
        args.concurrency,
        "--warmup",
        "64",
        "--seed",
        "5",
        "-o",
        str(out),
    ]
    if args.pin:
        cmd = ["taskset", "-c", "0", *cmd]
    record: dict[str, Any] = {
        "command": " ".join(cmd),
        "idle_cpu_cores": {"standalone": idle_cpu_rate(standalone), ray_name: idle_cpu_rate(ray)},
        "load_average_before": h.load_average(),
    }
    before = {
        "standalone": h.tree_cpu_seconds(standalone),
        ray_name: h.tree_cpu_seconds(ray),
        "client": children_cpu_s(),
    }
    started = time.monotonic()
    subprocess.run(cmd, check=True, cwd=h.REPO)
    if not (standalone.alive() and ray.alive()):
        raise SystemExit(f"a server died during the benchmark; see the logs in {out}")
    record["wall_s"] = round(time.monotonic() - started, 1)
    record["load_average_after"] = h.load_average()
    record["cpu_s"] = {
        "standalone": round(h.tree_cpu_seconds(standalone) - before["standalone"], 1),
        ray_name: round(h.tree_cpu_seconds(ray) - before[ray_name], 1),
        "client": round(children_cpu_s() - before["client"], 1),
    }
    report = json.loads((out / "report.json").read_text())
    record["comparisons"] = report["comparisons"]
    record["per_target"] = summarize(report)
    return record


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """Output tok/s, req/s and TTFT/ITL percentiles per target and level, from report.json."""
    out: dict[str, Any] = {}
    for target in report["targets"]:
        rows = {}
        for level in target["levels"]:
            m = level["metrics"]
            rows[f"c={level['level']['concurrency']}"] = {
                "output_tok_s": round(m["output_throughput"], 1),
                "req_s": round(m["request_throughput"], 2),
                "ttft_p50_ms": round(m["ttft_ms"]["p50"], 1),
                "itl_p50_ms": round(m["itl_ms"]["p50"], 2),
                "itl_p99_ms": round(m["itl_ms"]["p99"], 2),
                "failed": m.get("failed", 0),
                "duration_s": round(m.get("duration_s", 0), 1),
            }
        out[target["target"]["name"]] = rows
    return out


def ray_server(ingress: str, out: Path, pin: bool) -> h.Server:
    config = out / f"fake-{ingress}.yaml"
    config.write_text(FAKE_YAML.format(port=8000, ingress=ingress))
    cmd = h.rayvllm_cmd("--config", str(config))
    return h.Server(
        f"rayvllm-{ingress}",
        ["taskset", "-c", "1", *cmd] if pin else cmd,
        out / f"rayvllm-{ingress}.log",
        env=h.RAYVLLM_ENV,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="64,256")
    parser.add_argument(
        "--pin", action="store_true", help="client on CPU 0, every server process on CPU 1"
    )
    parser.add_argument(
        "--out", type=Path, help="folder (default: results/cpu-serving-layer-DATE[-pinned])"
    )
    args = parser.parse_args()
    suffix = "-pinned" if args.pin else ""
    out = h.results_dir(args.out, "cpu-serving-layer", suffix)
    out.mkdir(parents=True, exist_ok=True)
    h.require_no_ray()
    config = out / "fake-standalone.yaml"
    config.write_text(FAKE_YAML.format(port=8200, ingress="haproxy"))
    cmd = h.rayvllm_cmd("--standalone", "--config", str(config))
    standalone = h.Server(
        "standalone", ["taskset", "-c", "1", *cmd] if args.pin else cmd, out / "standalone.log"
    )
    runs: dict[str, Any] = {}
    with h.servers(standalone):
        standalone.start()
        h.wait_http(STANDALONE, standalone, 120)
        for ingress in ("haproxy", "ray-proxy"):
            ray = ray_server(ingress, out, args.pin)
            with h.servers(ray):
                ray.start()
                ready_s = h.wait_http(RAY, ray, 300)
                h.first_token_probe(RAY, "smollm2-135m-instruct")
                name = f"ray-{ingress}"
                runs[name] = {
                    "ready_s": round(ready_s, 1),
                    **compare(name, standalone, ray, args, out / name),
                }
            time.sleep(5)  # let Ray's processes exit before the next cluster starts
    h.write_json(
        out / "summary.json",
        {
            "what": "serving layer alone: fake engine (ttft 20 ms, itl 5 ms) behind rayvllm on Ray "
            "(HAProxy; Ray proxy) vs behind one uvicorn process (rayvllm serve --standalone)",
            "hardware": h.hardware(),
            "versions": h.versions(),
            "config": {
                "fake_engine": {"ttft_ms": 20, "itl_ms": 5},
                "workload": "random 64 in / 128 out, ignore_eos, completions, stream",
                "concurrency": args.concurrency,
                "pinning": "client CPU 0, servers CPU 1" if args.pin else "none: 2 shared",
            },
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
