"""Flags shared by `serve` and `build`: they mirror the config file and override it
(flag > file > default). The blueprint's knobs are here one to one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rayvllm.config import ServeConfig

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="ServeConfig YAML file.", exists=True, dir_okay=False),
]
HostOpt = Annotated[str | None, typer.Option(help="Address to listen on (http.host).")]
PortOpt = Annotated[
    int | None, typer.Option(min=1, max=65535, help="Port to listen on (http.port).")
]
EngineOpt = Annotated[str | None, typer.Option("--engine", help="`vllm` or `fake` (engine).")]
SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        "--model-id",
        help="First model's weights: path, HF repo id or embedded:NAME (MODEL_ID).",
    ),
]
NameOpt = Annotated[str | None, typer.Option("--model-name", help="First model's public name.")]
GpuMemOpt = Annotated[
    float | None,
    typer.Option(
        "--gpu-memory-utilization", min=0.01, max=1.0, help="engine_args (GPU_MEMORY_UTILIZATION)."
    ),
]
MaxLenOpt = Annotated[
    int | None, typer.Option("--max-model-len", min=1, help="engine_args (MAX_MODEL_LEN).")
]
MaxSeqOpt = Annotated[
    int | None, typer.Option("--max-num-seqs", min=1, help="engine_args (MAX_NUM_SEQ).")
]
MaxBatchOpt = Annotated[
    int | None,
    typer.Option("--max-num-batched-tokens", min=1, help="engine_args (MAX_NUM_BATCHED_TOKENS)."),
]


# The override flags, by the keyword ServeConfig.with_overrides takes for each.
OVERRIDES = (
    "host",
    "port",
    "engine",
    "source",
    "model_name",
    "gpu_memory_utilization",
    "max_model_len",
    "max_num_seqs",
    "max_num_batched_tokens",
)


def load_config(config: Path | None, flags: dict[str, Any]) -> ServeConfig:
    """The config file (or the defaults) with the override flags a command was given: pass the
    command's `locals()`; names that are not override flags are ignored."""
    from pydantic import ValidationError

    overrides = {name: flags.get(name) for name in OVERRIDES}
    try:
        base = ServeConfig.from_yaml(config) if config else ServeConfig()
        return base.with_overrides(**overrides)
    except (ValidationError, ValueError) as exc:
        where = f" in {config}" if config else ""
        typer.secho(f"Invalid configuration{where}:\n{exc}", fg="red", err=True)
        typer.secho("See `rayvllm schema` for every field.", err=True)
        raise typer.Exit(2) from None
