"""The Hugging Face token reaches the pods as a file from an existing Secret: its value is never
rendered, never an env literal, never printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from render_cases import EXAMPLES, load_example, of_kind
from typer.testing import CliRunner

from rayvllm.cli.render import app
from rayvllm.render import RenderOptions, render_manifests, to_yaml

TOKEN = "hf_SECRETvalueTHATmustNEVERappear"


@pytest.fixture
def rendered_with_token_in_env(monkeypatch: pytest.MonkeyPatch) -> str:
    # A user's shell usually has the token exported: rendering must not pick it up.
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", TOKEN)
    files = render_manifests(
        load_example("mistral-7b-gpu.yaml"), RenderOptions(hf_token_secret="hf-token")
    )
    return "".join(to_yaml(docs) for docs in files.values())


def test_token_value_and_token_env_never_appear(rendered_with_token_in_env: str) -> None:
    assert TOKEN not in rendered_with_token_in_env
    assert "HF_TOKEN\n" not in rendered_with_token_in_env
    assert "name: HF_TOKEN" not in rendered_with_token_in_env.replace("HF_TOKEN_PATH", "")
    assert "HUGGING_FACE_HUB_TOKEN" not in rendered_with_token_in_env
    assert "kind: Secret" not in rendered_with_token_in_env


def test_token_is_a_read_only_file_from_the_named_secret() -> None:
    (rayservice,) = [
        d
        for docs in render_manifests(
            load_example("mistral-7b-gpu.yaml"), RenderOptions(hf_token_secret="hf-token")
        ).values()
        for d in docs
        if d["kind"] == "RayService"
    ]
    worker = rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
    (volume,) = [v for v in worker["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == "hf-token"
    container = worker["containers"][0]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_TOKEN_PATH"]["value"] == f"{mount['mountPath']}/token"
    assert all("valueFrom" not in e for e in container["env"])


def test_without_a_secret_no_token_is_mounted_anywhere() -> None:
    for spec in (
        rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
        for rs in of_kind("cpu", "RayService")
    ):
        assert not [v for v in spec["volumes"] if "secret" in v]
        assert "HF_TOKEN_PATH" not in {e["name"] for e in spec["containers"][0]["env"]}


def test_render_command_output_holds_no_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    result = CliRunner().invoke(
        app,
        [
            "--config",
            str(EXAMPLES / "mistral-7b-gpu.yaml"),
            "--out",
            str(tmp_path),
            "--hf-token-secret",
            "hf-token",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    for path in tmp_path.iterdir():
        assert TOKEN not in path.read_text()
