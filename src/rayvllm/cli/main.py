"""Entry point of `rayvllm`. Subcommands load lazily so `client` and `bench` never import ray,
vllm or torch, and `--help` answers at once."""

from __future__ import annotations

import importlib
from typing import Any

import click

# verb -> (module under rayvllm.cli, one-line help shown by `rayvllm --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "Serve the configured models (the embedded model by default)."),
    "build": ("build", "Write the Ray Serve config YAML for `serve deploy` or a RayService."),
    "render": ("render", "Write Kubernetes manifests (RayService, monitors, dashboards, alerts)."),
    "client": ("client", "Send prompts to a server and write results.txt."),
    "bench": ("bench", "Load-test OpenAI-compatible endpoints and report throughput/latency."),
    "schema": ("schema", "Print the JSON schema of the config file."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"rayvllm.cli.{COMMANDS[cmd_name][0]}")
        import typer.main

        command: click.Command = typer.main.get_command(module.app)
        command.name = cmd_name
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rayvllm")
def cli() -> None:
    """rayvllm: serve LLMs with Ray Serve and vLLM, from a laptop to a GPU fleet."""


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="rayvllm")


if __name__ == "__main__":
    main()
