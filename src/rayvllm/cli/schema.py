"""`rayvllm schema`: the JSON schema of the config file, generated from ServeConfig."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False)


@app.command()
def schema() -> None:
    """Print the JSON schema of the config file."""
    from rayvllm.config import json_schema

    typer.echo(json_schema(), nl=False)
