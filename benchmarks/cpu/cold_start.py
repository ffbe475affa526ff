"""Cold start and memory of `rayvllm serve` (Ray) and of bare vLLM, with the embedded model.

Each run starts the server, retries a streamed completion every 0.25 s until its first token
arrives (that time, from process start, is the cold start), optionally drives a concurrency-16
load, and samples the PSS and RSS of the server's whole process tree every 0.5 s throughout.

    flock /tmp/rayvllm-heavy.lock python benchmarks/cpu/cold_start.py --target rayvllm --runs 3
    flock /tmp/rayvllm-heavy.lock python benchmarks/cpu/cold_start.py --target bare --runs 2
    # add --load to also measure memory under a c=16 load after the first token
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import harness as h

PORTS = {"rayvllm": 8000, "bare": 8100}


def server_for(target: str, log: Path, env: dict[str, str]) -> h.Server:
    if target == "rayvllm":
        return h.Server(
            "rayvllm",
            h.rayvllm_cmd("--port", str(PORTS[target])),
            log,
            env={**h.RAYVLLM_ENV, **env},
        )
    return h.Server("bare-vllm", h.bare_vllm_cmd(PORTS[target]), log, env=env)


def load(url: str, out: Path) -> dict[str, Any]:
    """The c=16 load of the side-by-side run (random 256 in / 64 out), 32 requests."""
    cmd = [
        sys.executable,
        "-m",
        "rayvllm.cli.main",
        "bench",
        "--url",
        url,
        "--input-len",
        "256",
        "--output-len",
        "64",
        "--concurrency",
        "16",
        "--num-prompts",
        "32",
        "--seed",
        "7",
        "-o",
        str(out),
    ]
    started = time.monotonic()
    subprocess.run(cmd, check=True, cwd=h.REPO, stdout=subprocess.DEVNULL)
    return {"command": " ".join(cmd[1:]), "seconds": round(time.monotonic() - started, 1)}


def one_run(
    target: str, index: int, out: Path, with_load: bool, env: dict[str, str]
) -> dict[str, Any]:
    if target == "rayvllm":
        h.require_no_ray()
    url = f"http://127.0.0.1:{PORTS[target]}"
    server = server_for(target, out / f"{target}-run{index}.log", env)
    record: dict[str, Any] = {
        "run": index,
        "started_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average_before": h.load_average(),
        "command": " ".join(server.cmd),
        "extra_env": env,
    }
    with h.servers(server), h.TreeMemory(server) as memory:
        server.start()
        first_token_s = h.wait_first_token(url, server, timeout_s=900)
        memory.mark("first_token")
        record["first_token_s"] = round(first_token_s, 1)
        record["load_average_at_first_token"] = h.load_average()
        print(f"{target} run {index}: first token {first_token_s:.1f} s", flush=True)
        if with_load:
            time.sleep(2)  # a few idle samples between startup and load
            memory.mark("load_start")
            record["load"] = load(url, out / f"{target}-run{index}-load")
            memory.mark("load_end")
            record["load_average_after_load"] = h.load_average()
        record["threads"] = h.threads_of(server)
    record["memory"] = memory.summary()
    mem = record["memory"]["whole_run"]
    print(
        f"{target} run {index}: peak PSS {mem.get('peak_pss_gib')} GiB, "
        f"peak RSS {mem.get('peak_rss_gib')} GiB",
        flush=True,
    )
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=sorted(PORTS), required=True)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--load", action="store_true", help="c=16 load after the first token")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the server (repeatable)",
    )
    parser.add_argument("--out", type=Path, help="folder (default: results/cpu-cold-start-DATE)")
    args = parser.parse_args()
    out = h.results_dir(args.out, "cpu-cold-start")
    env = dict(item.split("=", 1) for item in args.env)
    runs = [one_run(args.target, i + 1, out, args.load, env) for i in range(args.runs)]
    h.write_json(
        out / f"{args.target}.json",
        {
            "what": f"cold start (process start to first streamed token) and memory: {args.target}",
            "hardware": h.hardware(),
            "versions": h.versions(),
            "config": {
                "model": h.MODEL_NAME,
                "checkpoint": str(h.CHECKPOINT),
                "engine_args": " ".join(h.BARE_ENGINE_FLAGS),
                "caches": "warm: ~/.cache/vllm compile cache and the converted checkpoint",
            },
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
