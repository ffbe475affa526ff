"""`rayvllm bench`: load-test OpenAI-compatible endpoints (or the legacy /vllm) over HTTP, sweep
concurrency or request rate, compare targets, write report.json and report.png."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from rayvllm.bench.console import LiveProgress, comparison_table, error_hints, results_tables
from rayvllm.bench.http import Endpoint
from rayvllm.bench.metrics import Slo, summarize
from rayvllm.bench.plan import (
    DEFAULT_URL,
    Dataset,
    Workload,
    build_levels,
    build_workload,
    parse_targets,
)
from rayvllm.bench.report import (
    BenchConfig,
    BenchReport,
    LevelReport,
    TargetReport,
    compare,
    host_info,
    tool_info,
    write_json,
)
from rayvllm.bench.runner import BenchError, Target, interleave, probe, run_level
from rayvllm.bench.workload import WorkloadError

API_KEY_ENV = "RAYVLLM_API_KEY"

app = typer.Typer(add_completion=False)


def _usage_error(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]Error:[/] {escape(message)}")
    raise SystemExit(2)


def _api_key(api_key_file: Path | None) -> str | None:
    # Same rule as `rayvllm client`: a file beats the environment; the key is never put on argv.
    if api_key_file is not None:
        return api_key_file.read_text(encoding="utf-8").strip() or None
    return os.environ.get(API_KEY_ENV, "").strip() or None


@app.command()
def bench(
    url: Annotated[
        str | None,
        typer.Option(help="Base URL of the server to measure.", show_default=DEFAULT_URL),
    ] = None,
    compare_with: Annotated[
        list[str] | None,
        typer.Option(
            "--compare",
            help="NAME=URL targets measured in one run, interleaved level by level; repeat the "
            "flag or separate with commas. Ratios are against the first.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Model to request; each target's first GET /v1/models entry if omitted."),
    ] = None,
    endpoint: Annotated[
        Endpoint,
        typer.Option(help="completions: /v1/completions; chat: /v1/chat/completions; vllm: /vllm."),
    ] = Endpoint.completions,
    dataset: Annotated[
        Dataset,
        typer.Option(
            help="random: prompts of exactly --input-len tokens; blueprint: the 20 prompts of "
            "`rayvllm client`; jsonl: --path lines of {prompt, output_len}."
        ),
    ] = Dataset.random,
    path: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="The JSONL file for --dataset jsonl."),
    ] = None,
    input_len: Annotated[int, typer.Option(min=1, help="Prompt tokens (random dataset).")] = 512,
    output_len: Annotated[int, typer.Option(min=1, help="max_tokens of every request.")] = 128,
    tokenizer: Annotated[
        Path | None,
        typer.Option(
            help="Folder with the served model's tokenizer.json (random dataset; /vllm token "
            "counts). Default: the embedded model's checkpoint.",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        str,
        typer.Option(help="Closed-loop levels: clients that each send again once answered."),
    ] = "1,4,16",
    rate: Annotated[
        str | None,
        typer.Option(
            help="Open-loop levels instead: Poisson arrivals at these req/s, e.g. 2,8,32.",
            show_default=False,
        ),
    ] = None,
    max_concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Cap on in-flight requests under --rate.", show_default=False),
    ] = None,
    num_prompts: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Measured requests per level.",
            show_default="10 x concurrency (or rate), at least 50",
        ),
    ] = None,
    warmup: Annotated[
        int, typer.Option(min=0, help="Requests per level and target sent first, not measured.")
    ] = 0,
    ignore_eos: Annotated[
        bool,
        typer.Option(help="Send ignore_eos so every reply is exactly --output-len tokens."),
    ] = True,
    slo: Annotated[
        str | None,
        typer.Option(help="Goodput SLOs, e.g. ttft=200ms,tpot=50ms,e2e=2s.", show_default=False),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of random prompts and arrivals.")] = 0,
    request_timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds before one request counts as timed out.")
    ] = 600.0,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Write DIR/report.json and DIR/report.png.", show_default=False
        ),
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
) -> None:
    """Load-test OpenAI-compatible endpoints and report throughput and latency."""
    console = Console()
    try:
        targets = parse_targets(url, compare_with or [])
        parsed_slo = Slo.parse(slo) if slo else None
        levels = build_levels(concurrency, rate, max_concurrency, num_prompts, warmup)
        with console.status("building prompts"):
            workload = build_workload(
                dataset, levels, path=path, input_len=input_len, output_len=output_len,
                tokenizer_dir=tokenizer, endpoint=endpoint, seed=seed,
            )  # fmt: skip
    except (ValueError, WorkloadError) as error:
        _usage_error(str(error))
    config = BenchConfig(
        endpoint=endpoint,
        dataset=dataset.value,
        dataset_path=str(path) if path else None,
        input_len=input_len if dataset is Dataset.random else None,
        output_len=output_len,
        tokenizer=workload.tokenizer_path,
        ignore_eos=ignore_eos,
        seed=seed,
        request_timeout_s=request_timeout,
        slo=parsed_slo,
        levels=levels,
    )
    key = _api_key(api_key_file)
    report = BenchReport(
        tool=tool_info(),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        command=shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        config=config,
        host=host_info(),
        targets=[],
    )
    try:
        report.targets = asyncio.run(_run(targets, config, workload, key, console))
    except BenchError as error:
        _usage_error(str(error))
    report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    report.comparisons = compare(report.targets)
    for table in results_tables(report):
        console.print(table)
    if (ratios := comparison_table(report)) is not None:
        console.print(ratios)
    for hint in error_hints(report):
        console.print(f"[yellow]hint:[/] {escape(hint)}")
    if output is not None:
        from rayvllm.bench.plot import write_png

        console.print(f"wrote {write_json(report, output)} and {write_png(report, output)}")


async def _run(
    targets: list[Target],
    config: BenchConfig,
    workload: Workload,
    api_key: str | None,
    console: Console,
) -> list[TargetReport]:
    probed = []
    for target in targets:
        found = await probe(target.url, target.model, config.endpoint, api_key)
        probed.append(found.model_copy(update={"name": target.name}))
    reports = [TargetReport(target=t) for t in probed]
    with LiveProgress(console) as progress:
        for level_index, target_index in interleave(len(probed), len(config.levels)):
            level = config.levels[level_index]
            warmup_requests, requests = workload.for_level(level_index)
            run = await run_level(
                probed[target_index], level, warmup_requests, requests,
                endpoint=config.endpoint, ignore_eos=config.ignore_eos, api_key=api_key,
                request_timeout_s=config.request_timeout_s, progress=progress,
                count_tokens=workload.count_tokens, seed=config.seed + level_index,
            )  # fmt: skip
            metrics = summarize(run.results, run.duration_s, config.slo)
            reports[target_index].levels.append(LevelReport(level=level, metrics=metrics))
    return reports
