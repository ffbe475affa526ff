"""How flags become a plan: level sizes by default, targets from --url/--compare, and a fresh
slice of prompts for each level that every target shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from rayvllm.bench.http import Endpoint
from rayvllm.bench.plan import Dataset, build_levels, build_workload, parse_targets


def test_default_level_size_is_ten_per_client_with_a_floor_of_fifty() -> None:
    levels = build_levels("1,16,64", None, None, None, warmup=2)
    assert [(lv.concurrency, lv.num_prompts, lv.warmup) for lv in levels] == [
        (1, 50, 2),
        (16, 160, 2),
        (64, 640, 2),
    ]


def test_rate_levels_are_open_loop_and_sized_by_rate() -> None:
    levels = build_levels("1", "2.5,20", 8, None, warmup=0)
    assert [(lv.rate, lv.max_concurrency, lv.num_prompts) for lv in levels] == [
        (2.5, 8, 50),
        (20.0, 8, 200),
    ]
    assert levels[0].label == "2.5 req/s max 8"


@pytest.mark.parametrize("bad", ["0", "a,b", "1.5", ""])
def test_bad_concurrency_lists_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="--concurrency"):
        build_levels(bad, None, None, None, warmup=0)


def test_default_target_is_the_local_server() -> None:
    [target] = parse_targets(None, [])
    assert target.url == "http://127.0.0.1:8000"


def test_compare_names_must_be_given_and_distinct() -> None:
    with pytest.raises(ValueError, match="NAME=URL"):
        parse_targets(None, ["http://a:1"])
    with pytest.raises(ValueError, match="must differ"):
        parse_targets(None, ["a=http://a:1", "a=http://b:1"])
    with pytest.raises(ValueError, match="not an http"):
        parse_targets(None, ["a=localhost:8000"])


def test_each_level_gets_its_own_prompts_and_warmup_is_apart(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(f'{{"prompt": "p{i}"}}\n' for i in range(100)))
    levels = build_levels("1,2", None, None, 3, warmup=1)
    workload = build_workload(
        Dataset.jsonl, levels, path=path, input_len=1, output_len=4,
        tokenizer_dir=None, endpoint=Endpoint.completions, seed=0,
    )  # fmt: skip
    first_warmup, first = workload.for_level(0)
    second_warmup, second = workload.for_level(1)
    assert [r.prompt for r in first_warmup] == ["p0"]
    assert [r.prompt for r in first] == ["p1", "p2", "p3"]
    assert [r.prompt for r in second_warmup + second] == ["p4", "p5", "p6", "p7"]


def test_jsonl_dataset_needs_a_path() -> None:
    levels = build_levels("1", None, None, 1, warmup=0)
    with pytest.raises(ValueError, match="--path"):
        build_workload(
            Dataset.jsonl, levels, path=None, input_len=1, output_len=4,
            tokenizer_dir=None, endpoint=Endpoint.completions, seed=0,
        )  # fmt: skip
