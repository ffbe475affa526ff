"""report.png: output throughput, TTFT and TPOT against load, one line per target. matplotlib is
imported here only, and only when a png is asked for, so `rayvllm bench` starts fast without it."""

from __future__ import annotations

from pathlib import Path

from rayvllm.bench.report import BenchReport, TargetReport


def _x(entry: TargetReport) -> list[float]:
    return [float(row.level.rate or row.level.concurrency or 0) for row in entry.levels]


def write_png(report: BenchReport, directory: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    open_loop = any(level.rate is not None for level in report.config.levels)
    x_label = "request rate (req/s)" if open_loop else "concurrency"
    figure, (throughput, ttft, tpot) = plt.subplots(1, 3, figsize=(16, 4.8))
    for entry in report.targets:
        x = _x(entry)
        name = entry.target.name
        throughput.plot(
            x, [row.metrics.output_throughput for row in entry.levels], marker="o", label=name
        )
        for axis, attribute in ((ttft, "ttft_ms"), (tpot, "tpot_ms")):
            dists = [getattr(row.metrics, attribute) for row in entry.levels]
            (line,) = axis.plot(
                x, [d.p50 if d else float("nan") for d in dists], marker="o", label=f"{name} p50"
            )
            axis.plot(
                x,
                [d.p99 if d else float("nan") for d in dists],
                marker="x",
                linestyle="--",
                color=line.get_color(),
                label=f"{name} p99",
            )
    titles = (
        (throughput, "output throughput", "tokens/s"),
        (ttft, "time to first token", "ms"),
        (tpot, "time per output token", "ms"),
    )
    ticks = sorted({float(level.rate or level.concurrency or 0) for level in report.config.levels})
    for axis, title, unit in titles:
        axis.set_title(title)
        axis.set_xlabel(x_label)
        axis.set_ylabel(unit)
        if not open_loop:
            axis.set_xscale("log", base=2)
        axis.set_xticks(ticks, [f"{t:g}" for t in ticks])  # the levels run, not powers of 2
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    config = report.config
    workload = f"{config.endpoint.value}, {config.dataset}"
    if config.input_len:
        workload += f" in={config.input_len}"
    figure.suptitle(f"rayvllm bench: {workload} out={config.output_len}")
    figure.tight_layout()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
