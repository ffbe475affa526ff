"""`rayvllm serve` as a subprocess on a local Ray instance, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def rayvllm_serve(
    args: list[str], *, port: int, log: Path, timeout_s: float = 600
) -> Iterator[str]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    # HAProxy's metrics and stats listeners have fixed default ports; free ones let this run
    # beside another local Ray Serve (a developer's own `rayvllm serve`, say).
    env.setdefault("RAY_SERVE_HAPROXY_METRICS_PORT", str(_free_port()))
    env.setdefault("RAY_SERVE_HAPROXY_STATS_PORT", str(_free_port()))
    cmd = [sys.executable, "-m", "rayvllm.cli.main", "serve", "--port", str(port), *args]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rayvllm serve exited {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout_s} s:\n{log.read_text()[-4000:]}")
            time.sleep(1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        subprocess.run(
            [sys.executable, "-m", "ray.scripts.scripts", "stop", "--force"],
            capture_output=True,
            check=False,
        )
