"""The numbers `rayvllm bench` reports, on hand-made timings: vLLM's TPOT, pooled ITL,
percentiles, goodput against SLOs, and failures counted by cause."""

from __future__ import annotations

import pytest

from rayvllm.bench.http import RequestResult
from rayvllm.bench.metrics import Slo, percentile, summarize, tpot


def done(ttft: float, itl: list[float], tokens: int, prompt: int = 10) -> RequestResult:
    return RequestResult(
        start=0.0,
        ok=True,
        ttft=ttft,
        itl=itl,
        e2e=ttft + sum(itl),
        output_tokens=tokens,
        prompt_tokens=prompt,
    )


def failed(error: str) -> RequestResult:
    return RequestResult(start=0.0, error=error)


def test_tpot_spreads_decode_time_over_tokens_after_the_first() -> None:
    # 0.1 s to the first token, then 4 more tokens over 0.4 s: 100 ms per output token.
    result = done(0.1, [0.1, 0.1, 0.1, 0.1], tokens=5)
    assert tpot(result) == pytest.approx(0.1)


def test_tpot_uses_server_token_count_not_chunk_count() -> None:
    # Two chunks carried 9 tokens: TPOT divides by the 8 tokens after the first.
    result = done(0.2, [0.8], tokens=9)
    assert tpot(result) == pytest.approx(0.1)


def test_one_token_reply_has_no_tpot_but_still_counts_for_goodput() -> None:
    one = done(0.05, [], tokens=1)
    assert tpot(one) is None
    metrics = summarize([one], duration_s=1.0, slo=Slo(ttft_ms=100, tpot_ms=1))
    assert metrics.tpot_ms is None
    assert metrics.goodput == pytest.approx(1.0)


def test_itl_pools_every_gap_of_every_request() -> None:
    metrics = summarize([done(0.1, [0.01, 0.03], 3), done(0.1, [0.02], 2)], duration_s=1.0)
    assert metrics.itl_ms is not None
    assert metrics.itl_ms.mean == pytest.approx(20.0)
    assert metrics.itl_ms.p50 == pytest.approx(20.0)


def test_percentiles_interpolate_like_numpy() -> None:
    values = [float(v) for v in range(1, 11)]  # numpy.percentile gives 5.5, 9.1, 9.91
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 90) == pytest.approx(9.1)
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile([3.0], 99) == 3.0


def test_throughputs_count_successful_requests_over_the_duration() -> None:
    results = [done(0.1, [0.1] * 9, tokens=10, prompt=100) for _ in range(4)]
    results.append(failed("503"))
    metrics = summarize(results, duration_s=2.0)
    assert metrics.completed == 4
    assert metrics.failed == 1
    assert metrics.output_throughput == pytest.approx(20.0)
    assert metrics.total_token_throughput == pytest.approx(220.0)
    assert metrics.request_throughput == pytest.approx(2.0)
    assert metrics.goodput is None  # no SLO asked for


def test_goodput_counts_only_requests_meeting_every_slo() -> None:
    fast = done(0.1, [0.02] * 4, tokens=5)  # ttft 100 ms, tpot 20 ms
    slow_start = done(0.5, [0.02] * 4, tokens=5)  # misses ttft
    slow_decode = done(0.1, [0.2] * 4, tokens=5)  # misses tpot
    slo = Slo.parse("ttft=200ms,tpot=50ms")
    metrics = summarize([fast, slow_start, slow_decode], duration_s=2.0, slo=slo)
    assert metrics.goodput == pytest.approx(0.5)


def test_e2e_slo_and_units() -> None:
    slo = Slo.parse("e2e=1.5s, ttft=300")
    assert slo.e2e_ms == 1500.0
    assert slo.ttft_ms == 300.0
    with pytest.raises(ValueError, match="ttft=200ms"):
        Slo.parse("latency=5")


def test_errors_are_counted_by_status_with_503_and_429_apart() -> None:
    results = [failed("503"), failed("503"), failed("429"), failed("connect"), done(0.1, [], 1)]
    metrics = summarize(results, duration_s=1.0)
    assert metrics.errors == {"429": 1, "503": 2, "connect": 1}
    assert metrics.failed == 4


def test_all_failed_level_reports_no_latencies() -> None:
    metrics = summarize([failed("500")], duration_s=1.0)
    assert metrics.ttft_ms is None
    assert metrics.output_throughput == 0.0
