"""What `rayvllm bench` shows on the terminal: a live progress bar per target and level, then the
results table and, with several targets, the ratio table against the first."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

from rayvllm.bench.http import RequestResult
from rayvllm.bench.report import BenchReport
from rayvllm.bench.runner import Level, Target


class LiveProgress:
    """A rich progress bar that the runner advances once per finished request."""

    def __init__(self, console: Console) -> None:
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[live]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._started = 0.0
        self._tokens = 0
        self._failed = 0
        self._is_warmup = False

    def __enter__(self) -> LiveProgress:
        self._bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def start(self, target: Target, level: Level, warmup: bool, total: int) -> None:
        if self._task is not None and self._is_warmup:
            self._bar.update(self._task, visible=False)  # warmup rows would only clutter
        self._is_warmup = warmup
        phase = "warmup " if warmup else ""
        self._task = self._bar.add_task(f"{target.name} {phase}{level.label}", total=total, live="")
        self._started = time.perf_counter()
        self._tokens = 0
        self._failed = 0

    def advance(self, result: RequestResult) -> None:
        assert self._task is not None
        self._tokens += result.output_tokens if result.ok else 0
        self._failed += not result.ok
        rate = self._tokens / max(time.perf_counter() - self._started, 1e-9)
        failed = f" [red]{self._failed} failed[/]" if self._failed else ""
        self._bar.update(self._task, advance=1, live=f"{rate:8.1f} out tok/s{failed}")


def _errors(counts: dict[str, int]) -> str:
    return " ".join(f"{code}x{n}" for code, n in counts.items()) or "-"


def results_tables(report: BenchReport) -> list[Table]:
    """Throughput, then latency: one wide table would wrap in an 80-column terminal."""
    has_goodput = report.config.slo is not None
    throughput = Table(
        title="throughput", caption="errors: HTTP status or transport failure x count"
    )
    for column in ("target", "level", "ok", "errors"):
        throughput.add_column(column)
    numbers = ["out tok/s", "total tok/s", "req/s", *(["goodput"] if has_goodput else []), "s"]
    for column in numbers:
        throughput.add_column(column, justify="right")
    latency = Table(
        title="latency (ms)",
        caption="TPOT = (E2E - TTFT) / (output tokens - 1); ITL = gaps between streamed chunks",
    )
    latency.add_column("target")
    latency.add_column("level")
    for metric in ("TTFT", "TPOT", "ITL", "E2E"):
        latency.add_column(f"{metric} p50", justify="right")
        latency.add_column("p99", justify="right")
    for entry in report.targets:
        for row in entry.levels:
            m = row.metrics
            cells = [
                entry.target.name,
                row.level.label,
                str(m.completed),
                f"[red]{_errors(m.errors)}[/]" if m.errors else "-",
                f"{m.output_throughput:.1f}",
                f"{m.total_token_throughput:.1f}",
                f"{m.request_throughput:.2f}",
            ]
            if has_goodput:
                cells.append(f"{m.goodput or 0.0:.2f}")
            cells.append(f"{m.duration_s:.1f}")
            throughput.add_row(*cells)
            spans = []
            for dist in (m.ttft_ms, m.tpot_ms, m.itl_ms, m.e2e_ms):
                spans += [f"{dist.p50:.1f}", f"{dist.p99:.1f}"] if dist else ["-", "-"]
            latency.add_row(entry.target.name, row.level.label, *spans)
    return [throughput, latency]


def comparison_table(report: BenchReport) -> Table | None:
    if not report.comparisons:
        return None
    table = Table(title=f"against {report.comparisons[0].baseline}")
    table.add_column("target")
    table.add_column("level")
    table.add_column("out tok/s ratio", justify="right")
    table.add_column("p50 TTFT diff ms", justify="right")
    table.add_column("p99 ITL ratio", justify="right")
    for c in report.comparisons:
        table.add_row(
            c.target,
            c.level,
            "-" if c.output_throughput_ratio is None else f"{c.output_throughput_ratio:.3f}x",
            "-" if c.ttft_p50_diff_ms is None else f"{c.ttft_p50_diff_ms:+.1f}",
            "-" if c.itl_p99_ratio is None else f"{c.itl_p99_ratio:.3f}x",
        )
    return table


def error_hints(report: BenchReport) -> list[str]:
    """What to do about the failures seen, in the user's terms."""
    seen = {code for t in report.targets for row in t.levels for code in row.metrics.errors}
    hints = []
    if seen & {"400", "422"} and report.config.ignore_eos:
        hints.append("400/422: the server may reject ignore_eos; retry with --no-ignore-eos")
    if "429" in seen:
        hints.append("429: the server rate-limited the client; lower --concurrency or --rate")
    if "503" in seen:
        hints.append("503: the server shed load (queue full or not ready); this is its limit")
    if "connect" in seen:
        hints.append("connect: the server stopped accepting connections; is it still running?")
    return hints
