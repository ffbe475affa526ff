"""`rayvllm build`: the Ray Serve config YAML (for `serve deploy` or a RayService's
serveConfigV2) whose application is built from the same ServeConfig."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from rayvllm.cli import options as o

app = typer.Typer(add_completion=False)


@app.command()
def build(
    config: o.ConfigOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    host: o.HostOpt = None,
    port: o.PortOpt = None,
    engine: o.EngineOpt = None,
    source: o.SourceOpt = None,
    model_name: o.NameOpt = None,
    gpu_memory_utilization: o.GpuMemOpt = None,
    max_model_len: o.MaxLenOpt = None,
    max_num_seqs: o.MaxSeqOpt = None,
    max_num_batched_tokens: o.MaxBatchOpt = None,
) -> None:
    """Write the Ray Serve config YAML for `serve deploy` or a RayService."""
    from rayvllm.deployment.serve_config import serve_config_document

    cfg = o.load_config(config, locals())
    text = yaml.safe_dump(serve_config_document(cfg), sort_keys=False)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}", err=True)
