"""`rayvllm bench` end to end against stub servers: the report it writes, --compare running
targets level by level, and usage errors that say what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer.main
from bench_stub import StubServer
from click.testing import CliRunner

from rayvllm.cli.bench import app

QUICK = ["--dataset", "blueprint", "--output-len", "4", "--num-prompts", "3"]


def bench(*args: str) -> Any:
    return CliRunner().invoke(typer.main.get_command(app), list(args), env={"COLUMNS": "200"})


def test_report_json_and_png_are_written(stub: StubServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = bench(
        "--url", stub.url, *QUICK, "--concurrency", "1,2", "--slo", "ttft=1s", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["schema_version"] == 1
    assert {"tool", "command", "config", "host", "definitions", "targets", "comparisons"} <= set(
        report
    )
    assert report["tool"]["version"]
    assert {"cpu_model", "cpu_cores", "memory_gib", "gpus"} <= set(report["host"])
    assert {"ttft", "tpot", "itl", "e2e"} <= set(report["definitions"])
    target = report["targets"][0]
    assert target["target"]["model"] == "stub-model"
    assert target["target"]["server_header"] == "stub/1.0"
    assert target["target"]["version"] == {"version": "9.9.9"}
    levels = target["levels"]
    assert [row["level"]["concurrency"] for row in levels] == [1, 2]
    metrics = levels[0]["metrics"]
    for key in ("output_throughput", "total_token_throughput", "request_throughput", "goodput"):
        assert metrics[key] > 0
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        assert set(metrics[key]) == {"mean", "p50", "p90", "p99"}
    assert metrics["output_tokens"] == 3 * 4
    assert (out / "report.png").read_bytes().startswith(b"\x89PNG")
    assert "out tok/s" in result.output


def test_compare_runs_each_level_on_every_target_before_the_next(
    stub_factory: Any, tmp_path: Path
) -> None:
    a, b = stub_factory(), stub_factory()
    result = bench(
        "--compare", f"a={a.url}", "--compare", f"b={b.url}",
        *QUICK, "--concurrency", "1,2", "-o", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    arrivals = sorted(
        [(body["_received"], "a") for body in a.bodies]
        + [(body["_received"], "b") for body in b.bodies]
    )
    order = [name for _, name in arrivals]
    assert order == ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3
    report = json.loads((tmp_path / "report.json").read_text())
    ratios = report["comparisons"]
    assert [(c["target"], c["baseline"], c["level"]) for c in ratios] == [
        ("b", "a", "c=1"),
        ("b", "a", "c=2"),
    ]
    assert all(c["output_throughput_ratio"] > 0 for c in ratios)
    assert "against a" in result.output


def test_compare_takes_a_comma_list(stub_factory: Any) -> None:
    a, b = stub_factory(), stub_factory()
    result = bench("--compare", f"a={a.url},b={b.url}", *QUICK, "--concurrency", "1")
    assert result.exit_code == 0, result.output
    assert len(a.bodies) == len(b.bodies) == 3


def test_errors_show_by_status_with_a_hint(stub: StubServer) -> None:
    stub.fail_with = [503, 503, 429]
    result = bench("--url", stub.url, *QUICK, "--concurrency", "1")
    assert result.exit_code == 0, result.output
    assert "429x1 503x2" in result.output
    assert "rate-limited" in result.output


def test_url_and_compare_together_is_a_usage_error(stub: StubServer) -> None:
    result = bench("--url", stub.url, "--compare", f"x={stub.url}", *QUICK)
    assert result.exit_code == 2
    assert "either --url or --compare" in result.output


def test_unreachable_server_says_how_to_start_one() -> None:
    result = bench("--url", "http://127.0.0.1:9", *QUICK)
    assert result.exit_code == 2
    assert "rayvllm serve" in result.output


def test_max_concurrency_needs_rate(stub: StubServer) -> None:
    result = bench("--url", stub.url, *QUICK, "--max-concurrency", "4")
    assert result.exit_code == 2
    assert "--rate" in result.output
