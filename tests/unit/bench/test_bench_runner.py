"""Load shapes against a stub server: a closed loop holds exactly N requests in flight, an open
loop respects its cap, warmup stays out of the numbers, /vllm replies get counted."""

from __future__ import annotations

from bench_stub import StubServer

from rayvllm.bench.http import Endpoint, RequestResult
from rayvllm.bench.runner import Level, LevelRun, Target, interleave, probe, run_level
from rayvllm.bench.workload import BenchRequest


class Recorder:
    def __init__(self) -> None:
        self.phases: list[tuple[str, bool, int]] = []
        self.finished = 0

    def start(self, target: Target, level: Level, warmup: bool, total: int) -> None:
        self.phases.append((level.label, warmup, total))

    def advance(self, result: RequestResult) -> None:
        self.finished += 1


def prompts(count: int) -> list[BenchRequest]:
    return [BenchRequest(prompt=f"p{i}", output_len=4, prompt_len=3) for i in range(count)]


async def run(
    server: StubServer,
    level: Level,
    warmup: int = 0,
    endpoint: Endpoint = Endpoint.completions,
    progress: Recorder | None = None,
) -> LevelRun:
    target = Target(name="stub", url=server.url, model="stub-model")
    return await run_level(
        target,
        level,
        prompts(warmup),
        prompts(level.num_prompts),
        endpoint=endpoint,
        ignore_eos=True,
        api_key=None,
        request_timeout_s=30,
        progress=progress or Recorder(),
        count_tokens=lambda text: len(text.split()),
    )


def test_targets_are_interleaved_level_by_level() -> None:
    assert interleave(num_targets=3, num_levels=2) == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
    ]


async def test_probe_finds_the_model_and_what_the_server_is(stub: StubServer) -> None:
    target = await probe(stub.url, None, Endpoint.completions, None)
    assert target.model == "stub-model"
    assert target.server_header == "stub/1.0"
    assert target.version == {"version": "9.9.9"}


async def test_closed_loop_keeps_exactly_concurrency_requests_in_flight(
    stub: StubServer,
) -> None:
    stub.token_delay_s = 0.01
    result = await run(stub, Level(concurrency=3, num_prompts=12))
    assert len(result.results) == 12
    assert all(r.ok for r in result.results)
    assert stub.max_in_flight == 3
    assert all(body["ignore_eos"] and body["max_tokens"] == 4 for body in stub.bodies)


async def test_open_loop_sends_every_request_within_its_cap(stub: StubServer) -> None:
    stub.token_delay_s = 0.01
    result = await run(stub, Level(rate=500.0, max_concurrency=2, num_prompts=10))
    assert len(result.results) == 10
    assert stub.max_in_flight <= 2


async def test_warmup_requests_are_sent_but_not_measured(stub: StubServer) -> None:
    progress = Recorder()
    result = await run(stub, Level(concurrency=2, num_prompts=5, warmup=3), 3, progress=progress)
    assert len(stub.bodies) == 8
    assert len(result.results) == 5
    assert progress.phases == [("c=2", True, 3), ("c=2", False, 5)]


async def test_failures_are_returned_not_raised(stub: StubServer) -> None:
    stub.fail_with = [503, 429]
    result = await run(stub, Level(concurrency=1, num_prompts=4))
    assert sorted(r.error or "ok" for r in result.results) == ["429", "503", "ok", "ok"]


async def test_legacy_vllm_replies_are_counted_with_the_tokenizer(stub: StubServer) -> None:
    result = await run(stub, Level(concurrency=1, num_prompts=2), endpoint=Endpoint.vllm)
    # The stub streams " tok" four times; the test's counter splits on whitespace.
    assert [r.output_tokens for r in result.results] == [4, 4]
    assert [r.prompt_tokens for r in result.results] == [3, 3]
