from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from client_fakes import FakeServer, openai_error
from rich.console import Console
from typer.testing import CliRunner

from rayvllm.cli.client import app
from rayvllm.client.console import run_and_report
from rayvllm.client.runner import ClientSettings

PROMPTS = ["What is a GAN?", "How does a VAE work?"]


def recording_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200), out


def test_a_clean_run_writes_both_files_shows_the_table_and_exits_0(tmp_path: Path) -> None:
    console, out = recording_console()
    results, json_path = tmp_path / "results.txt", tmp_path / "results.json"

    code = run_and_report(
        ClientSettings(), PROMPTS, results, json_path, console, FakeServer().transport
    )

    assert code == 0
    assert results.read_text().startswith("Prompt: What is a GAN?\nResponse Time: ")
    assert json.loads(json_path.read_text())["summary"]["succeeded"] == 2
    shown = out.getvalue()
    assert "2 prompts, 0 failed" in shown
    assert "smollm2-135m-instruct" in shown
    assert f"Wrote {results} and {json_path}" in shown


def test_a_failed_prompt_is_reported_and_exits_non_zero(tmp_path: Path) -> None:
    def fail_vae(path: str, body: dict[str, Any]) -> httpx.Response | None:
        if body["messages"][-1]["content"] == PROMPTS[1]:
            return openai_error(400, "max_tokens must be at least 1")
        return None

    console, out = recording_console()
    results = tmp_path / "results.txt"

    code = run_and_report(
        ClientSettings(), PROMPTS, results, None, console, FakeServer(fail=fail_vae).transport
    )

    assert code == 1
    assert "Response: ERROR HTTP 400: max_tokens must be at least 1" in results.read_text()
    assert "Prompt 2 failed: HTTP 400: max_tokens must be at least 1" in out.getvalue()
    assert "2 prompts, 1 failed" in out.getvalue()


def test_the_command_with_no_server_says_to_start_one_and_exits_1(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = tmp_path / "results.txt"

    outcome = CliRunner().invoke(
        app,
        ["--url", f"http://127.0.0.1:{port}", "-o", str(results)],
        env={"COLUMNS": "200"},
    )

    assert outcome.exit_code == 1
    assert f"No server at http://127.0.0.1:{port} - start one with `rayvllm serve`" in (
        outcome.output
    )
    assert not results.exists()


def test_the_command_refuses_an_empty_prompts_file(tmp_path: Path) -> None:
    empty = tmp_path / "prompts.txt"
    empty.write_text("\n\n")

    outcome = CliRunner().invoke(app, [str(empty)], env={"COLUMNS": "200"})

    assert outcome.exit_code == 2
    assert "holds no prompts" in outcome.output


def test_the_command_loads_without_ray_vllm_torch_or_the_server() -> None:
    heavy = ("ray", "vllm", "torch", "fastapi", "rayvllm.server")
    probe = f"import sys, rayvllm.cli.client; print([m for m in {heavy!r} if m in sys.modules])"

    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout

    assert loaded.strip() == "[]"
