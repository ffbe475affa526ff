"""CPU side by side: `rayvllm serve` (Ray, HAProxy ingress, the embedded model with its default
engine arguments) against bare vLLM given exactly those engine arguments, both up at once and
measured interleaved level by level by `rayvllm bench --compare`.

    flock /tmp/rayvllm-heavy.lock python benchmarks/cpu/side_by_side.py
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import harness as h

from rayvllm.engine.vllm_plugin import CPU_ENV

# Log lines that show the engine's resolved settings and thread binding, in both servers' logs.
CONFIG_LINE = re.compile(
    "non-default args|Initializing a V1 LLM|OpenMP thread binding|core ids|reserved_cpus"
    "|Torch threads|OMP_NUM_THREADS|KV cache size|Maximum concurrency|chunked prefill"
    "|max_num_seqs|max_num_batched_tokens"
)


def engine_config_lines(log: Path) -> list[str]:
    """The lines of a server log that show the engine's resolved settings and thread binding."""
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        if CONFIG_LINE.search(line):
            lines.append(line[:3000])
    return lines


def resolved(lines: list[str]) -> dict[str, str]:
    """Pick the values that must agree out of the engine's config line and binding info."""
    text = "\n".join(lines)
    found = {}
    for key in (
        "max_num_seqs",
        "max_num_batched_tokens",
        "enable_chunked_prefill",
        "enable_prefix_caching",
        "dtype",
        "max_seq_len",
        "enforce_eager",
    ):
        match = re.search(rf"\b{key}[=:] ?'?([\w.]+)", text)
        if match:
            found[key] = match.group(1)
    for key in ("core ids", "reserved_cpus"):
        match = re.search(rf"{key}=(\[[^\]]*\])", text)
        if match:
            found[key] = match.group(1)
    match = re.search(r"'mode': <CompilationMode\.(\w+)", text)
    if match:
        found["compilation_mode"] = match.group(1)
    match = re.search(r"KV cache size: ([\d,]+) tokens", text)
    if match:
        found["kv_cache_tokens"] = match.group(1)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--num-prompts", type=int, help="per level (default: rayvllm bench's)")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--out", type=Path, help="folder (default: results/cpu-side-by-side-DATE)")
    args = parser.parse_args()
    out = h.results_dir(args.out, "cpu-side-by-side")
    h.require_no_ray()
    # rayvllm's engine sets CPU_ENV on CPU (an AOT compile cache that loads); bare vLLM gets it
    # too, so that the two engines differ in nothing but the server around them.
    bare = h.Server("bare-vllm", h.bare_vllm_cmd(8100), out / "bare-vllm.log", env=CPU_ENV)
    ray = h.Server(
        "rayvllm", h.rayvllm_cmd("--port", "8000"), out / "rayvllm.log", env=h.RAYVLLM_ENV
    )
    record: dict[str, Any] = {"load_average_before_start": h.load_average(), "bare_env": bare.env}
    with h.servers(bare, ray):
        # One at a time: two engines compiling at once on 2 cores would only slow both.
        bare.start()
        record["bare_ready_s"] = round(h.wait_http("http://127.0.0.1:8100", bare, 900), 1)
        ray.start()
        record["rayvllm_ready_s"] = round(h.wait_http("http://127.0.0.1:8000", ray, 900), 1)
        h.first_token_probe("http://127.0.0.1:8000", h.MODEL_NAME, timeout_s=120)
        record["threads_idle"] = {"bare-vllm": h.threads_of(bare), "rayvllm": h.threads_of(ray)}
        cmd = [
            sys.executable,
            "-m",
            "rayvllm.cli.main",
            "bench",
            "--compare",
            "bare-vllm=http://127.0.0.1:8100,rayvllm=http://127.0.0.1:8000",
            "--input-len",
            "256",
            "--output-len",
            "64",
            "--concurrency",
            args.concurrency,
            "--warmup",
            str(args.warmup),
            "--seed",
            "11",
            "-o",
            str(out),
        ]
        if args.num_prompts:
            cmd += ["--num-prompts", str(args.num_prompts)]
        record["load_average_before_bench"] = h.load_average()
        cpu_before = {"bare-vllm": h.tree_cpu_seconds(bare), "rayvllm": h.tree_cpu_seconds(ray)}
        subprocess.run(cmd, check=True, cwd=h.REPO)
        if not (bare.alive() and ray.alive()):
            # e.g. someone's `ray stop` on this shared machine: the numbers would be garbage
            raise SystemExit("a server died during the benchmark; see the logs in " + str(out))
        record["load_average_after_bench"] = h.load_average()
        record["server_cpu_s_during_bench"] = {
            "bare-vllm": round(h.tree_cpu_seconds(bare) - cpu_before["bare-vllm"], 1),
            "rayvllm": round(h.tree_cpu_seconds(ray) - cpu_before["rayvllm"], 1),
        }
        after = {"bare-vllm": h.threads_of(bare), "rayvllm": h.threads_of(ray)}
        record["threads_busy_during_bench"] = {
            name: h.busy_threads(record["threads_idle"][name], rows) for name, rows in after.items()
        }
        record["threads_after_bench"] = after
    # rayvllm's replica log reaches the driver's stdout (log_to_driver), so both logs hold the
    # engine's own config line.
    lines = {
        name: engine_config_lines(s.log) for name, s in (("bare-vllm", bare), ("rayvllm", ray))
    }
    record["engine_config"] = {name: resolved(v) for name, v in lines.items()}
    record["engine_config_log_lines"] = lines
    report = json.loads((out / "report.json").read_text())
    record["comparisons"] = report["comparisons"]
    h.write_json(
        out / "summary.json",
        {
            "what": "CPU side by side: rayvllm serve (Ray, HAProxy) vs bare vLLM, same engine args",
            "hardware": h.hardware(),
            "versions": h.versions(),
            "config": {
                "model": h.MODEL_NAME,
                "bare_engine_flags": h.BARE_ENGINE_FLAGS,
                "rayvllm": "default config (embedded model, EMBEDDED_ENGINE_ARGS)",
                "workload": "random 256 in / 64 out, ignore_eos, completions, stream",
                "concurrency": args.concurrency,
            },
            "command": " ".join(cmd[1:]),
            "bar": "rayvllm / bare output tok/s >= 0.95 at every concurrency",
            **record,
        },
    )


if __name__ == "__main__":
    main()
