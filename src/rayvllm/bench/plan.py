"""Turns `rayvllm bench` flags into a plan: targets, load levels (with their default sizes) and
the prompts of each level, shared by all targets so they answer the very same requests."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlparse

from rayvllm.bench.http import Endpoint
from rayvllm.bench.runner import Level, Target
from rayvllm.bench.workload import (
    BenchRequest,
    WorkloadError,
    blueprint_requests,
    cycle,
    default_tokenizer_dir,
    jsonl_requests,
    load_tokenizer,
    random_requests,
)

DEFAULT_URL = "http://127.0.0.1:8000"

# Each closed-loop client sends about ten requests, so ramp-up and drain are a small part of a
# level; the floor of 50 keeps p99 from resting on one or two requests at low concurrency.
PROMPTS_PER_CLIENT = 10
MIN_PROMPTS = 50


class Dataset(StrEnum):
    random = "random"
    blueprint = "blueprint"
    jsonl = "jsonl"


def _check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ValueError(f"{url!r} is not an http(s) URL like {DEFAULT_URL}")
    return url.rstrip("/")


def parse_targets(url: str | None, compare: list[str]) -> list[Target]:
    """--url (one unnamed target) or --compare NAME=URL,... (several named ones)."""
    if url and compare:
        raise ValueError("give either --url or --compare NAME=URL ..., not both")
    if not compare:
        checked = _check_url(url or DEFAULT_URL)
        return [Target(name=urlparse(checked).netloc, url=checked)]
    targets = []
    for item in (part.strip() for flag in compare for part in flag.split(",")):
        if not item:
            continue
        name, sep, target_url = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--compare takes NAME=URL, got {item!r}")
        targets.append(Target(name=name.strip(), url=_check_url(target_url.strip())))
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ValueError(f"--compare names must differ, got {names}")
    return targets


def _numbers(text: str, flag: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{flag} takes numbers separated by commas, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"{flag} needs positive numbers, got {text!r}")
    return values


def build_levels(
    concurrency: str,
    rate: str | None,
    max_concurrency: int | None,
    num_prompts: int | None,
    warmup: int,
) -> list[Level]:
    if rate is None:
        if max_concurrency is not None:
            raise ValueError("--max-concurrency caps open-loop load: use it with --rate")
        counts = _numbers(concurrency, "--concurrency")
        if any(c != int(c) for c in counts):
            raise ValueError(f"--concurrency takes whole numbers, got {concurrency!r}")
        return [
            Level(
                concurrency=int(c),
                num_prompts=num_prompts or max(MIN_PROMPTS, PROMPTS_PER_CLIENT * int(c)),
                warmup=warmup,
            )
            for c in counts
        ]
    return [
        Level(
            rate=r,
            max_concurrency=max_concurrency,
            num_prompts=num_prompts or max(MIN_PROMPTS, math.ceil(PROMPTS_PER_CLIENT * r)),
            warmup=warmup,
        )
        for r in _numbers(rate, "--rate")
    ]


@dataclass
class Workload:
    """The (warmup, measured) prompts of each level, and how to count tokens if we can."""

    levels: list[tuple[list[BenchRequest], list[BenchRequest]]]
    count_tokens: Callable[[str], int] | None
    tokenizer_path: str | None

    def for_level(self, index: int) -> tuple[list[BenchRequest], list[BenchRequest]]:
        return self.levels[index]


def build_workload(
    dataset: Dataset,
    levels: list[Level],
    *,
    path: Path | None,
    input_len: int,
    output_len: int,
    tokenizer_dir: Path | None,
    endpoint: Endpoint,
    seed: int,
) -> Workload:
    """Fresh prompts for every level (random dataset), so no level hits another's prefix cache."""
    tokenizer = None
    tokenizer_path = tokenizer_dir or default_tokenizer_dir()
    needs_tokenizer = dataset is Dataset.random or tokenizer_dir is not None
    if needs_tokenizer:
        tokenizer = load_tokenizer(tokenizer_path)
    elif endpoint is Endpoint.vllm:
        # /vllm reports no usage: count its text with the embedded tokenizer when it is cached.
        try:
            tokenizer = load_tokenizer(tokenizer_path)
        except WorkloadError:
            tokenizer = None
    sizes = [(level.warmup, level.num_prompts) for level in levels]
    if dataset is Dataset.random:
        assert tokenizer is not None
        pool = random_requests(tokenizer, sum(w + n for w, n in sizes), input_len, output_len, seed)
    elif dataset is Dataset.blueprint:
        pool = blueprint_requests(output_len)
    else:
        if path is None:
            raise WorkloadError("--dataset jsonl needs --path FILE")
        pool = jsonl_requests(path, output_len)
    slices = []
    start = 0
    for warmup, measured in sizes:
        chosen = cycle(pool, warmup + measured, start)
        slices.append((chosen[:warmup], chosen[warmup:]))
        start += warmup + measured
    count_tokens = None
    if tokenizer is not None:
        encoder = tokenizer

        def count_tokens(text: str) -> int:
            return len(encoder.encode(text, add_special_tokens=False).ids)

    return Workload(
        levels=slices,
        count_tokens=count_tokens,
        tokenizer_path=str(tokenizer_path) if tokenizer is not None else None,
    )
