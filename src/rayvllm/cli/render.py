"""`rayvllm render`: Kubernetes manifests (RayService, network policy, monitors, SLO alerts,
Grafana dashboards) for the same ServeConfig `serve` and `build` read. Needs no cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rayvllm.cli import options as o

app = typer.Typer(add_completion=False)


@app.command()
def render(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Directory to write the manifests into.", file_okay=False),
    ],
    config: o.ConfigOpt = None,
    image: Annotated[
        str | None, typer.Option(help="Serving image (build it from deploy/docker/Dockerfile).")
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="Namespace of every object.")] = None,
    name: Annotated[
        str | None, typer.Option(help="RayService name (default: the config's app_name).")
    ] = None,
    hf_token_secret: Annotated[
        str | None,
        typer.Option(help="Existing Secret with the Hugging Face token, mounted as a file."),
    ] = None,
    hf_token_key: Annotated[str | None, typer.Option(help="Key of the token in it.")] = None,
    redis_address: Annotated[
        str | None, typer.Option(help="host:port of an external Redis: GCS fault tolerance.")
    ] = None,
    redis_password_secret: Annotated[
        str | None, typer.Option(help="Existing Secret with the Redis password (key: password).")
    ] = None,
    gpu_instance_families: Annotated[
        str | None,
        typer.Option(help="Comma-separated EC2 families for GPU workers (default g5,g6,g6e)."),
    ] = None,
    gpu_node_pool: Annotated[
        str | None, typer.Option(help="Karpenter NodePool to pin GPU workers to.")
    ] = None,
    cpu_node_pool: Annotated[
        str | None, typer.Option(help="Karpenter NodePool to pin the head and CPU workers to.")
    ] = None,
    gpus_per_worker: Annotated[
        int | None, typer.Option(min=1, help="GPUs per worker pod (default: per replica).")
    ] = None,
    worker_cpu: Annotated[str | None, typer.Option(help="Worker pod CPU, e.g. 6.")] = None,
    worker_memory: Annotated[str | None, typer.Option(help="Worker pod memory, e.g. 24Gi.")] = None,
    monitoring_namespace: Annotated[
        str | None, typer.Option(help="Namespace of kube-prometheus-stack.")
    ] = None,
    prometheus_release: Annotated[
        str | None, typer.Option(help="Helm release name kube-prometheus-stack selects by.")
    ] = None,
    ttft_target: Annotated[
        float | None, typer.Option(help="p99 time-to-first-token objective, seconds.")
    ] = None,
    tpot_target: Annotated[
        float | None, typer.Option(help="p99 time-per-output-token objective, seconds.")
    ] = None,
    port: o.PortOpt = None,
    engine: o.EngineOpt = None,
    source: o.SourceOpt = None,
    model_name: o.NameOpt = None,
    gpu_memory_utilization: o.GpuMemOpt = None,
    max_model_len: o.MaxLenOpt = None,
    max_num_seqs: o.MaxSeqOpt = None,
    max_num_batched_tokens: o.MaxBatchOpt = None,
) -> None:
    """Write Kubernetes manifests (RayService, monitors, dashboards, alerts)."""
    from pydantic import ValidationError

    from rayvllm.render import RenderOptions, write_manifests

    cfg = o.load_config(config, locals())
    given = {
        "image": image,
        "namespace": namespace,
        "name": name,
        "hf_token_secret": hf_token_secret,
        "hf_token_key": hf_token_key,
        "redis_address": redis_address,
        "redis_password_secret": redis_password_secret,
        "gpu_node_pool": gpu_node_pool,
        "cpu_node_pool": cpu_node_pool,
        "gpus_per_worker": gpus_per_worker,
        "worker_cpu": worker_cpu,
        "worker_memory": worker_memory,
        "monitoring_namespace": monitoring_namespace,
        "prometheus_release": prometheus_release,
        "ttft_target_s": ttft_target,
        "tpot_target_s": tpot_target,
        "gpu_instance_families": (
            tuple(f.strip() for f in gpu_instance_families.split(",") if f.strip())
            if gpu_instance_families
            else None
        ),
    }
    try:
        render_options = RenderOptions(**{k: v for k, v in given.items() if v is not None})
        written = write_manifests(cfg, render_options, out)
    except (ValidationError, ValueError) as exc:
        typer.secho(f"Cannot render: {exc}", fg="red", err=True)
        typer.secho("`rayvllm render --help` lists the flags.", err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(f"wrote {path}", err=True)
    typer.echo(f"Apply with: kubectl apply --server-side -f {out}", err=True)
