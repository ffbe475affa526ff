"""What an autoscaling run did, second by second: the Serve controller's scaling events read from
its log, the requests binned per second (throughput, errors, TTFT, serving replica), the replicas
Serve reported and the CPU per process kind; and the plot of it all."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from load import Sample

_LINE = re.compile(
    r"^(?:INFO|WARNING|ERROR|DEBUG) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
    r"(?:controller|proxy) \S+ -- (.*)$"
)
_EVENTS = {
    "upscale": re.compile(r"^Upscaling .* from (\d+) to (\d+) replicas"),
    "downscale": re.compile(r"^Downscaling .* from (\d+) to (\d+) replicas"),
    "replica_starting": re.compile(r"^Starting Replica\(id='([^']+)'"),
    "replica_running": re.compile(
        r"^Replica\(id='([^']+)'.* started successfully .* after ([\d.]+)s \(PID: (\d+)\)"
    ),
    "replica_stopping": re.compile(r"^Stopping Replica\(id='([^']+)'"),
    "replica_stopped": re.compile(r"^Replica\(id='([^']+)'.* is stopped"),
    # The proxy actor's log: HAProxy now routes by the new replica set.
    "haproxy_reloaded": re.compile(r"^Successfully performed graceful HAProxy reload"),
}


TTFT_WINDOW_S = 5


def controller_events(log_dir: Path) -> list[dict[str, Any]]:
    """Scaling decisions, replica state changes and HAProxy reloads, from the controller's and
    the proxy actor's logs, stamped with the logs' local wall time."""
    events = []
    for path in sorted([*log_dir.glob("controller_*.log"), *log_dir.glob("proxy_*.log")]):
        for line in path.read_text(errors="replace").splitlines():
            m = _LINE.match(line)
            if m is None:
                continue
            stamp, text = m.groups()
            for kind, pattern in _EVENTS.items():
                found = pattern.match(text)
                if found:
                    t = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    events.append(
                        {"t": t, "kind": kind, "args": list(found.groups()), "text": text[:300]}
                    )
    return sorted(events, key=lambda e: e["t"])


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def _spread(counts: dict[int, float], start: float, end: float, amount: float) -> None:
    """Add `amount` to the seconds [start, end) overlaps, pro rata."""
    if end <= start:
        counts[int(start)] += amount
        return
    second = int(start)
    while second < end:
        overlap = min(end, second + 1) - max(start, second)
        counts[second] += amount * overlap / (end - start)
        second += 1


def per_second(
    samples: list[Sample],
    t0: float,
    marks: list[dict[str, Any]],
    events: list[dict[str, Any]],
    cpu: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row a second since t0. Requests done and errors by the second they ended, output
    tokens spread evenly from a request's first token to its end, TTFT percentiles of the
    requests sent in the last TTFT_WINDOW_S seconds (closed-loop users send in bursts, so many
    single seconds send nothing); the replicas RUNNING (by the controller log) and the CPU
    cores at the second's end."""
    done: Counter[int] = Counter()
    errors: dict[int, Counter[str]] = defaultdict(Counter)
    tokens: dict[int, float] = defaultdict(float)
    tokens_by_replica: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    ttft: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        end = int(s.end - t0)
        if s.status != "200":
            errors[end][s.status] += 1
            continue
        done[end] += 1
        ttft[int(s.sent - t0)].append((s.first_token - s.sent) * 1000)
        share: dict[int, float] = defaultdict(float)
        _spread(share, s.first_token - t0, s.end - t0, s.output_tokens)
        for second, amount in share.items():
            tokens[second] += amount
            tokens_by_replica[second][s.replica] += amount
    pids = {e["args"][2]: e["args"][0] for e in events if e["kind"] == "replica_running"}
    cores = {int(x["t"] - t0): x["cores"] for x in cpu}
    last = max(int(s.end - t0) for s in samples)
    changes = [e for e in events if e["kind"] in {"replica_running", "replica_stopping"}]
    rows: list[dict[str, Any]] = []
    target, running, cpu_now = 0, set(), {}
    for second in range(0, last + 1):
        target = next(
            (m["concurrency"] for m in reversed(marks) if m["t"] - t0 <= second + 0.5), target
        )
        while changes and changes[0]["t"] - t0 < second + 1:
            change = changes.pop(0)
            if change["kind"] == "replica_running":
                running.add(change["args"][0])
            else:
                running.discard(change["args"][0])
        cpu_now = cores.get(second, cpu_now)
        recent = [x for s in range(second - TTFT_WINDOW_S + 1, second + 1) for x in ttft[s]]
        rows.append(
            {
                "t_s": second,
                "concurrency": target,
                "requests_done": done[second],
                "errors": dict(errors[second]),
                "output_tokens": round(tokens[second], 1),
                "output_tokens_by_replica": {
                    k: round(v, 1) for k, v in sorted(tokens_by_replica[second].items())
                },
                "ttft_p50_ms": pct(recent, 50),
                "ttft_p99_ms": pct(recent, 99),
                "replicas_running": sorted(running),
                "cpu_cores": {
                    _replica_name(k, pids): round(v, 2)
                    for k, v in sorted(cpu_now.items())
                    if v >= 0.005
                },
            }
        )
    return rows


def window(
    samples: list[Sample], start: float, end: float, rows: list[dict[str, Any]], t0: float
) -> dict[str, Any]:
    """Throughput and TTFT over [start, end) (epoch seconds): tokens from the per-second rows,
    TTFT of the requests sent in it, CPU cores per process kind averaged over it."""
    inside = [r for r in rows if start - t0 <= r["t_s"] < end - t0]
    sent = [s for s in samples if start <= s.sent < end and s.status == "200"]
    ttfts = [(s.first_token - s.sent) * 1000 for s in sent]
    seconds = max(len(inside), 1)
    cpu: dict[str, float] = defaultdict(float)
    for r in inside:
        for label, cores in r["cpu_cores"].items():
            cpu[_group(label)] += cores / seconds
    replicas = Counter(s.replica for s in sent)
    return {
        "from_s": round(start - t0, 1),
        "to_s": round(end - t0, 1),
        "output_tok_s": round(sum(r["output_tokens"] for r in inside) / seconds, 1),
        "requests_s": round(sum(r["requests_done"] for r in inside) / seconds, 2),
        "ttft_p50_ms": pct(ttfts, 50),
        "ttft_p99_ms": pct(ttfts, 99),
        "requests_sent_by_replica": dict(replicas.most_common()),
        "cpu_cores": {k: round(v, 2) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])},
        "cpu_cores_total": round(sum(cpu.values()), 2),
    }


def _replica_name(label: str, pids: dict[str, str]) -> str:
    """`replica pid 123` -> `replica <id>`, by the PID the controller logged at its start."""
    pid = label.removeprefix("replica pid ")
    return f"replica {pids[pid]}" if pid != label and pid in pids else label


def _group(label: str) -> str:
    if label.startswith("replica"):
        return label
    if label in {"client", "haproxy"}:
        return label
    return "ray (controller, raylet, gcs, dashboard, ...)"


def plot(
    rows: list[dict[str, Any]], marks_s: dict[str, float | None], path: Path, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["t_s"] for r in rows]
    fig, axes = plt.subplots(4, 1, figsize=(11, 11), sharex=True)
    ax = axes[0]
    replicas = sorted({k for r in rows for k in r["output_tokens_by_replica"]})
    ax.stackplot(
        t,
        *[[r["output_tokens_by_replica"].get(k, 0) for r in rows] for k in replicas],
        labels=[f"replica {k}" for k in replicas],
        alpha=0.7,
    )
    ax.plot(t, [r["output_tokens"] for r in rows], color="black", lw=0.8, label="total")
    ax.set_ylabel("output tok/s")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[1]
    ax.step(
        t,
        [len(r["replicas_running"] or []) for r in rows],
        where="post",
        color="C2",
        label="replicas RUNNING (Serve)",
    )
    ax.set_ylabel("replicas")
    ax.set_ylim(0, 3)
    twin = ax.twinx()
    twin.step(
        t,
        [r["concurrency"] for r in rows],
        where="post",
        color="C7",
        ls=":",
        label="client concurrency",
    )
    twin.set_ylabel("concurrency")
    ax.legend(loc="upper left", fontsize=8)
    twin.legend(loc="upper right", fontsize=8)
    ax = axes[2]
    ax.plot(t, [r["ttft_p99_ms"] for r in rows], label="p99 TTFT", color="C3")
    ax.plot(t, [r["ttft_p50_ms"] for r in rows], label="p50 TTFT", color="C1", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylabel(f"TTFT ms (sent in last {TTFT_WINDOW_S} s)")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[3]
    groups = sorted({_group(k) for r in rows for k in r["cpu_cores"]})
    series = [
        [sum(v for k, v in r["cpu_cores"].items() if _group(k) == g) for r in rows] for g in groups
    ]
    ax.stackplot(t, *series, labels=groups, alpha=0.7)
    ax.axhline(2, color="black", lw=0.8, ls="--")
    ax.set_ylabel("CPU cores (of 2)")
    ax.set_xlabel("seconds since load start")
    ax.legend(loc="upper left", fontsize=7)
    styles = {
        "upscale decision": "red",
        "2nd replica RUNNING": "green",
        "1st token from 2nd replica": "blue",
        "downscale decision": "orange",
        "replica stopped": "gray",
    }
    for name, color in styles.items():
        x = marks_s.get(name)
        if x is None:
            continue
        for a in axes:
            a.axvline(x, color=color, ls="--", lw=0.9, label=name if a is axes[1] else None)
    axes[1].legend(loc="upper left", fontsize=7)
    axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
