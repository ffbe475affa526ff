"""`rayvllm serve`: run the configured models on Ray Serve (a local Ray instance, or the cluster
at --address), or with --standalone under plain uvicorn in this process."""

from __future__ import annotations

from typing import Annotated

import typer

from rayvllm.cli import options as o

app = typer.Typer(add_completion=False)


@app.command()
def serve(
    config: o.ConfigOpt = None,
    host: o.HostOpt = None,
    port: o.PortOpt = None,
    engine: o.EngineOpt = None,
    source: o.SourceOpt = None,
    model_name: o.NameOpt = None,
    gpu_memory_utilization: o.GpuMemOpt = None,
    max_model_len: o.MaxLenOpt = None,
    max_num_seqs: o.MaxSeqOpt = None,
    max_num_batched_tokens: o.MaxBatchOpt = None,
    address: Annotated[
        str | None,
        typer.Option(help="Join the Ray cluster at this address (default: start a local one)."),
    ] = None,
    standalone: Annotated[
        bool, typer.Option(help="Serve in this process with uvicorn, without Ray.")
    ] = False,
) -> None:
    """Serve the configured models (the embedded model by default)."""
    cfg = o.load_config(config, locals())
    from rayvllm.deployment.local import prepare_models, run_ray, run_standalone

    prepare_models(cfg)
    if standalone:
        run_standalone(cfg)
    else:
        run_ray(cfg, address=address)
