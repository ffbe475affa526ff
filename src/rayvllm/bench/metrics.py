"""Latency and throughput of one benchmark level, with `vllm bench serve`'s definitions: TTFT,
TPOT, ITL, E2E distributions, token and request throughput, goodput against SLOs, errors."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, Field

from rayvllm.bench.http import RequestResult

# Written into report.json so a reader need not look the definitions up.
DEFINITIONS = {
    "ttft": "time to first token: from sending the request to the first chunk carrying text",
    "tpot": "time per output token after the first: (e2e - ttft) / (output_tokens - 1), "
    "for requests with more than one output token",
    "itl": "inter-token latency: every gap between consecutive text-bearing chunks, pooled "
    "over all requests (a chunk holding several tokens is one gap)",
    "e2e": "end-to-end latency: from sending the request to the last text-bearing chunk",
    "output_tokens": "completion_tokens from the server's usage chunk (stream_options."
    "include_usage); for /vllm, the tokenizer's count of the streamed text",
    "duration_s": "from the first request sent to the last one finished, warmup excluded",
    "output_throughput": "output tokens of successful requests / duration",
    "total_token_throughput": "(input + output tokens of successful requests) / duration",
    "request_throughput": "successful requests / duration",
    "goodput": "successful requests meeting every SLO / duration (TPOT counts as 0 for "
    "one-token replies)",
    "percentiles": "linear interpolation between closest ranks (numpy's default)",
}

_SLO_PART = re.compile(r"^\s*(ttft|tpot|e2e|e2el)\s*[=:]\s*([0-9.]+)\s*(ms|s)?\s*$")


class Distribution(BaseModel):
    """Summary of a latency sample, in milliseconds."""

    mean: float
    p50: float
    p90: float
    p99: float


class Slo(BaseModel):
    """Service-level objectives a request must meet to count towards goodput (milliseconds)."""

    ttft_ms: float | None = Field(None, gt=0)
    tpot_ms: float | None = Field(None, gt=0)
    e2e_ms: float | None = Field(None, gt=0)

    @classmethod
    def parse(cls, text: str) -> Slo:
        """`ttft=200ms,tpot=50ms,e2e=2s` (a bare number is milliseconds, as in vLLM)."""
        values: dict[str, float] = {}
        for part in text.split(","):
            match = _SLO_PART.match(part)
            if not match:
                raise ValueError(
                    f"bad SLO {part.strip()!r}: write e.g. ttft=200ms,tpot=50ms,e2e=2s"
                )
            name, number, unit = match.groups()
            name = "e2e" if name == "e2el" else name
            values[f"{name}_ms"] = float(number) * (1000.0 if unit == "s" else 1.0)
        return cls(**values)

    def met_by(self, ttft_s: float, tpot_s: float, e2e_s: float) -> bool:
        return all(
            limit is None or value * 1000.0 <= limit
            for limit, value in (
                (self.ttft_ms, ttft_s),
                (self.tpot_ms, tpot_s),
                (self.e2e_ms, e2e_s),
            )
        )


class LevelMetrics(BaseModel):
    """Everything measured at one load level against one target."""

    completed: int
    failed: int
    errors: dict[str, int] = Field(
        description="Failed requests by cause: HTTP status ('503', '429', ...) or transport error."
    )
    duration_s: float
    input_tokens: int
    output_tokens: int
    request_throughput: float
    output_throughput: float
    total_token_throughput: float
    goodput: float | None = Field(None, description="Requests/s meeting all SLOs; None if no SLO.")
    ttft_ms: Distribution | None
    tpot_ms: Distribution | None
    itl_ms: Distribution | None
    e2e_ms: Distribution | None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolating linearly between closest ranks like numpy."""
    if not values:
        raise ValueError("percentile of an empty sample")
    return _percentile_of_sorted(sorted(values), q)


def _percentile_of_sorted(ordered: Sequence[float], q: float) -> float:
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution(seconds: Sequence[float]) -> Distribution | None:
    if not seconds:
        return None
    ms = sorted(s * 1000.0 for s in seconds)
    return Distribution(
        mean=sum(ms) / len(ms),
        p50=_percentile_of_sorted(ms, 50),
        p90=_percentile_of_sorted(ms, 90),
        p99=_percentile_of_sorted(ms, 99),
    )


def tpot(result: RequestResult) -> float | None:
    """Seconds per output token after the first; None for a one-token reply."""
    if result.output_tokens <= 1:
        return None
    return (result.e2e - result.ttft) / (result.output_tokens - 1)


def summarize(
    results: Sequence[RequestResult], duration_s: float, slo: Slo | None = None
) -> LevelMetrics:
    duration_s = max(duration_s, 1e-9)
    ok = [r for r in results if r.ok]
    errors = Counter(r.error or "unknown" for r in results if not r.ok)
    tpots = [t for t in map(tpot, ok) if t is not None]
    input_tokens = sum(r.prompt_tokens for r in ok)
    output_tokens = sum(r.output_tokens for r in ok)
    good = None
    if slo is not None:
        good = sum(1 for r in ok if slo.met_by(r.ttft, tpot(r) or 0.0, r.e2e)) / duration_s
    return LevelMetrics(
        completed=len(ok),
        failed=len(results) - len(ok),
        errors=dict(sorted(errors.items())),
        duration_s=duration_s,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        request_throughput=len(ok) / duration_s,
        output_throughput=output_tokens / duration_s,
        total_token_throughput=(input_tokens + output_tokens) / duration_s,
        goodput=good,
        ttft_ms=distribution([r.ttft for r in ok]),
        tpot_ms=distribution(tpots),
        itl_ms=distribution([gap for r in ok for gap in r.itl]),
        e2e_ms=distribution([r.e2e for r in ok]),
    )
