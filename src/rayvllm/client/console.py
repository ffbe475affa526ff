"""What `rayvllm client` shows and writes around a run: a rich progress bar while prompts are in
flight, a summary table after, results.txt and JSON on disk, and the exit code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from rayvllm.client.report import format_results_json, format_results_txt, summarize
from rayvllm.client.runner import ClientError, ClientRun, ClientSettings, PromptResult, run_client

# Room the other columns, borders and padding take, so that they never collapse to an ellipsis.
OTHER_COLUMNS_WIDTH = 40


class _RichProgress:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def warmed_up(self, error: str | None) -> None:
        if error is not None:
            self._progress.console.print(f"[yellow]Warm-up failed:[/] {escape(error)}")
        self._progress.update(self._task, description="Sending prompts")

    def finished(self, result: PromptResult) -> None:
        self._progress.advance(self._task)


def run_with_progress(
    settings: ClientSettings,
    prompts: list[str],
    console: Console,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ClientRun:
    async def run() -> ClientRun:
        async with httpx.AsyncClient(transport=transport) as client:
            return await run_client(settings, prompts, client=client, progress=hook)

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        hook = _RichProgress(progress, progress.add_task("Warming up", total=len(prompts)))
        return asyncio.run(run())


def summary_table(run: ClientRun, width: int = 120) -> Table:
    model = f" ({run.model})" if run.model else ""
    table = Table(title=f"{run.endpoint.value} at {run.url}{model}")
    table.add_column("#", justify="right")
    prompt_width = max(20, min(80, width - OTHER_COLUMNS_WIDTH))
    table.add_column("Prompt", max_width=prompt_width, no_wrap=True, overflow="ellipsis")
    table.add_column("Status")
    table.add_column("Time (s)", justify="right")
    table.add_column("Tokens", justify="right")
    for r in run.results:
        status = str(r.status_code) if r.ok else f"[red]{r.status_code or 'failed'}[/]"
        time_s = "N/A" if r.response_time_s is None else f"{r.response_time_s:.2f}"
        tokens = "n/a" if r.completion_tokens is None else str(r.completion_tokens)
        table.add_row(str(r.index + 1), escape(r.prompt), status, time_s, tokens)
    s = summarize(run.results)
    if s.average_s is not None and s.max_s is not None and s.min_s is not None:
        latency = f"average {s.average_s:.2f} s, max {s.max_s:.2f} s, min {s.min_s:.2f} s"
    else:
        latency = "no latency: every prompt failed"
    table.caption = f"{s.total_prompts} prompts, {s.failed} failed - {latency}"
    return table


def run_and_report(
    settings: ClientSettings,
    prompts: list[str],
    output: Path,
    json_path: Path | None,
    console: Console,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Run, write results.txt (and JSON when asked), show the table; 1 when any prompt failed."""
    try:
        run = run_with_progress(settings, prompts, console, transport)
    except ClientError as exc:
        console.print(f"[red]Error:[/] {escape(str(exc))}")
        return 1
    output.write_text(format_results_txt(run), encoding="utf-8")
    if json_path is not None:
        json_path.write_text(format_results_json(run, settings), encoding="utf-8")
    console.print(summary_table(run, console.width))
    for failure in run.failures:
        console.print(f"[red]Prompt {failure.index + 1} failed:[/] {escape(failure.error or '')}")
    written = f"{output}" + (f" and {json_path}" if json_path is not None else "")
    console.print(f"Wrote {escape(written)}")
    return 1 if run.failures else 0
