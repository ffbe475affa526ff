"""`rayvllm client`: send prompts to a running server and write results.txt, as the blueprint's
client.py did, with the server's own token counts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape

from rayvllm.client.console import run_and_report
from rayvllm.client.runner import DEFAULT_URL, ClientSettings, Endpoint, load_prompts

API_KEY_ENV = "RAYVLLM_API_KEY"

app = typer.Typer(add_completion=False)


def _usage_error(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]Error:[/] {escape(message)}")
    raise SystemExit(2)


def _api_key(api_key_file: Path | None) -> SecretStr | None:
    # A file beats the environment, as a flag beats a default; the key is never put on argv.
    if api_key_file is not None:
        key = api_key_file.read_text(encoding="utf-8").strip()
        if not key:
            _usage_error(f"--api-key-file {api_key_file} is empty")
        return SecretStr(key)
    key = os.environ.get(API_KEY_ENV, "").strip()
    return SecretStr(key) if key else None


@app.command()
def client(
    prompts: Annotated[
        Path | None,
        typer.Argument(
            help="Prompts file, one a line; the blueprint's 20 prompts if omitted.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Results file.")] = Path(
        "results.txt"
    ),
    url: Annotated[str, typer.Option(help="Base URL of the server.")] = DEFAULT_URL,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model to ask; the first of GET /v1/models if omitted.",
            show_default=False,
        ),
    ] = None,
    endpoint: Annotated[
        Endpoint,
        typer.Option(help="chat: /v1/chat/completions; vllm: the blueprint's POST /vllm."),
    ] = Endpoint.chat,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Prompts in flight at once; all if omitted.", show_default=False),
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Tokens generated per prompt.")] = 512,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature.")] = 0.01,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help=f"File holding the server's API key; ${API_KEY_ENV} if omitted.",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0.001, help="Seconds one request may take.")
    ] = 180.0,
) -> None:
    """Send each prompt (after one uncounted warm-up) and write the response times, the
    server's token counts and the replies to results.txt."""
    prompt_list = load_prompts(prompts)
    if not prompt_list:
        _usage_error(f"{prompts} holds no prompts - write one prompt a line")
    settings = ClientSettings(
        url=url,
        endpoint=endpoint,
        model=model,
        concurrency=concurrency,
        max_tokens=max_tokens,
        temperature=temperature,
        timeout_s=timeout,
        api_key=_api_key(api_key_file),
    )
    code = run_and_report(settings, prompt_list, output, json_path, Console())
    # SystemExit, not typer.Exit: the lazy click group in cli/main.py does not know typer's.
    raise SystemExit(code)
