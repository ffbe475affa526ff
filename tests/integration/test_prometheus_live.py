"""Our Grafana dashboard against a live Prometheus scraping a live server: every query of every
panel returns data. The server is `rayvllm serve --standalone` (fake engine by default; the real
vLLM engine with the embedded model under the `vllm` marker, which also fills the vLLM row).
Prometheus also loads the rendered alert rules, so a rule it cannot evaluate fails here.

Ray's own dashboards need a Ray cluster's metrics and are not checked here."""

from __future__ import annotations

import contextlib
import math
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rayvllm.config import ServeConfig
from rayvllm.render import RenderOptions, render_manifests
from rayvllm.render.monitoring import METRIC_RENAMES, dashboard_json

pytest.importorskip("rayvllm.server.app", reason="needs the FastAPI server (rayvllm.server.app)")

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "rayvllm-live"
PROMETHEUS_HINT = "apt-get install -y prometheus (Debian's package; `make system-deps` does it)"
# Grafana fills these in; here they select what the live server exports.
RATE_INTERVAL = "1m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout_s: float, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready at {url} after {timeout_s:.0f} s")


@contextlib.contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@contextlib.contextmanager
def rayvllm_server(engine: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    config = (
        ServeConfig.from_yaml(REPO_ROOT / "examples" / "fake.yaml")
        if engine == "fake"
        else ServeConfig()
    )
    config_file = tmp_path / "serve.yaml"
    config_file.write_text(config.to_yaml())
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "rayvllm.cli.main",
        "serve",
        "--config",
        str(config_file),
        "--standalone",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env_timeout = 60 if engine == "fake" else 600
    with process(args, tmp_path / "server.log") as proc:
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(f"{base}/ready", env_timeout, proc, "rayvllm serve")
        except RuntimeError:
            pytest.fail((tmp_path / "server.log").read_text()[-3000:])
        yield base, config.models[0].name


@contextlib.contextmanager
def prometheus(target: str, rules: Path, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(f"prometheus is not installed: {PROMETHEUS_HINT}")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "rayvllm",
                "static_configs": [{"targets": [target], "labels": {"namespace": NAMESPACE}}],
                # The same renames the rendered monitors apply: plain names must pass through.
                "metric_relabel_configs": [
                    {
                        "source_labels": ["__name__"],
                        "regex": regex,
                        "target_label": "__name__",
                        "replacement": replacement,
                        "action": "replace",
                    }
                    for regex, replacement in METRIC_RENAMES
                ],
            }
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    args = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    with process(args, tmp_path / "prometheus.log") as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/-/ready", 60, proc, "prometheus")
        yield base


def drive(base: str, model: str, seconds: float) -> None:
    """Traffic on every route, a stream, and a client error, for `seconds`."""
    chat = {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
    calls = [
        ("/v1/chat/completions", chat, 200),
        ("/v1/completions", {"model": model, "prompt": "Once upon", "max_tokens": 8}, 200),
        ("/vllm", {"prompt": "[INST] hi [/INST]", "max_tokens": 8}, 200),
        ("/v1/chat/completions", {**chat, "stream": True}, 200),
        ("/v1/chat/completions", {**chat, "model": "nope"}, 404),
    ]
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=base, timeout=60) as http:
        while time.monotonic() < deadline:
            for path, body, status in calls:
                with http.stream("POST", path, json=body) as reply:
                    reply.read()
                    assert reply.status_code == status, (path, reply.text)


def panel_queries(model: str) -> list[tuple[str, str]]:
    out = []
    for panel in dashboard_json("rayvllm.json")["panels"]:
        for target in panel.get("targets", []):
            expr = (
                target["expr"]
                .replace("$__rate_interval", RATE_INTERVAL)
                .replace("$namespace", NAMESPACE)
                .replace("$model", model)
            )
            out.append((panel["title"], expr))
    return out


def has_data(prom: str, expr: str) -> bool:
    reply = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert reply["status"] == "success", (expr, reply)
    values = [float(r["value"][1]) for r in reply["data"]["result"]]
    return any(math.isfinite(v) for v in values)


def run_dashboard_check(engine: str, tmp_path: Path) -> dict[str, list[str]]:
    """Panel title -> queries without data."""
    rules = tmp_path / "rules.yaml"
    config = ServeConfig.from_yaml(REPO_ROOT / "examples" / "fake.yaml")
    (rule,) = render_manifests(config, RenderOptions(namespace=NAMESPACE))["60-prometheusrule.yaml"]
    rules.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    with rayvllm_server(engine, tmp_path) as (base, model):
        target = base.removeprefix("http://")
        with prometheus(target, rules, tmp_path) as prom:
            wait_until(lambda: has_data(prom, f'up{{namespace="{NAMESPACE}"}} == 1'), 30)
            drive(base, model, seconds=6.0)
            time.sleep(3)  # two more scrapes after the last request
            missing: dict[str, list[str]] = {}
            for title, expr in panel_queries(model):
                if not has_data(prom, expr):
                    missing.setdefault(title, []).append(expr)
            rule_health = httpx.get(f"{prom}/api/v1/rules", timeout=10).json()
            bad = [
                r
                for g in rule_health["data"]["groups"]
                for r in g["rules"]
                if r.get("health") == "err"
            ]
            assert bad == [], bad
            assert sum(len(g["rules"]) for g in rule_health["data"]["groups"]) >= 8
    return missing


def wait_until(check: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.5)


VLLM_ROW = {
    "Running and waiting requests",
    "KV-cache usage",
    "vLLM time to first token (p50, p99)",
    "vLLM inter-token latency (p50, p99)",
    "vLLM tokens per second",
    "vLLM preemptions",
}


@pytest.mark.timeout(300)
def test_every_panel_has_data_with_the_fake_engine(tmp_path: Path) -> None:
    missing = run_dashboard_check("fake", tmp_path)
    # The fake engine has no vLLM inside, so the vLLM row alone stays empty; the `vllm`-marked
    # test below fills it with the real engine.
    assert set(missing) == VLLM_ROW, missing


@pytest.mark.vllm
@pytest.mark.timeout(900)
def test_every_panel_has_data_with_the_real_engine(tmp_path: Path) -> None:
    missing = run_dashboard_check("vllm", tmp_path)
    assert missing == {}, missing
