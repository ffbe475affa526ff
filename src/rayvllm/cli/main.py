"""Entry point of `rayvllm`. It dispatches on the verb and imports that verb's module only, so
`client` and `bench` never import ray, vllm or torch, and `--help` answers at once.

Written as a small dispatcher rather than a click group: typer 0.29 carries its own click, so a
click group around typer commands loses typer's error handling (usage errors became tracebacks)."""

from __future__ import annotations

import importlib
import sys

# verb -> one-line help shown by `rayvllm --help`; the module is rayvllm.cli.<verb>
COMMANDS: dict[str, str] = {
    "serve": "Serve the configured models (the embedded model by default).",
    "build": "Write the Ray Serve config YAML for `serve deploy` or a RayService.",
    "render": "Write Kubernetes manifests (RayService, monitors, dashboards, alerts).",
    "client": "Send prompts to a server and write results.txt.",
    "bench": "Load-test OpenAI-compatible endpoints and report throughput/latency.",
    "schema": "Print the JSON schema of the config file.",
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name.ljust(width)}  {text}" for name, text in COMMANDS.items()]
    return (
        "Usage: rayvllm COMMAND [OPTIONS]\n\n"
        "rayvllm: serve LLMs with Ray Serve and vLLM, from a laptop to a GPU fleet.\n\n"
        "Commands:\n" + "\n".join(lines) + "\n\n"
        "Options:\n  --version   Show the version and exit.\n  -h, --help  Show this message.\n\n"
        "Run `rayvllm COMMAND --help` for a command's options.\n"
    )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help", "help"}:
        sys.stdout.write(_usage())
        raise SystemExit(0 if args else 2)
    if args[0] == "--version":
        from rayvllm import __version__

        sys.stdout.write(f"rayvllm {__version__}\n")
        raise SystemExit(0)
    verb, rest = args[0], args[1:]
    if verb not in COMMANDS:
        sys.stderr.write(f"rayvllm: unknown command '{verb}'. Try one of: {', '.join(COMMANDS)}\n")
        raise SystemExit(2)
    module = importlib.import_module(f"rayvllm.cli.{verb}")
    module.app(args=rest, prog_name=f"rayvllm {verb}")


if __name__ == "__main__":
    main()
