"""Writes what `rayvllm client` learned: results.txt in the blueprint's format, for people, and
a versioned JSON document, for machines."""

from __future__ import annotations

from pydantic import BaseModel, Field

from rayvllm.client.runner import ClientRun, ClientSettings, Endpoint, PromptResult

SEPARATOR = "=" * 80
RESULTS_SCHEMA_VERSION = 1


class LatencySummary(BaseModel):
    """Latency over the prompts that succeeded; failures are counted, not timed."""

    total_prompts: int
    succeeded: int
    failed: int
    average_s: float | None
    max_s: float | None
    min_s: float | None
    total_completion_tokens: int | None = Field(
        description="Sum of the server's counts; None when it counted none of the replies."
    )


class RequestSettings(BaseModel):
    """What was asked of the server; never the API key."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int | None
    concurrency: int | None
    timeout_s: float


class ResultsDocument(BaseModel):
    schema_version: int = RESULTS_SCHEMA_VERSION
    url: str
    endpoint: Endpoint
    model: str | None
    settings: RequestSettings
    warmup_error: str | None
    results: list[PromptResult]
    summary: LatencySummary


def summarize(results: list[PromptResult]) -> LatencySummary:
    times = [r.response_time_s for r in results if r.ok and r.response_time_s is not None]
    counts = [r.completion_tokens for r in results if r.ok and r.completion_tokens is not None]
    succeeded = sum(r.ok for r in results)
    return LatencySummary(
        total_prompts=len(results),
        succeeded=succeeded,
        failed=len(results) - succeeded,
        average_s=sum(times) / len(times) if times else None,
        max_s=max(times) if times else None,
        min_s=min(times) if times else None,
        total_completion_tokens=sum(counts) if counts else None,
    )


def seconds(value: float | None) -> str:
    return "N/A" if value is None else f"{value:.2f} seconds"


def _prompt_block(result: PromptResult) -> str:
    tokens = "n/a" if result.completion_tokens is None else str(result.completion_tokens)
    response = result.response if result.ok else f"ERROR {result.error}"
    return (
        f"Prompt: {result.prompt}\n"
        f"Response Time: {seconds(result.response_time_s)}\n"
        f"Token Length: {tokens}\n"
        f"Response: {response}\n"
        f"{SEPARATOR}\n"
    )


def format_results_txt(run: ClientRun) -> str:
    """Each prompt's block, then the latency summary, worded as the blueprint's results.txt."""
    summary = summarize(run.results)
    lines = [
        "",
        "Summary of Latency:",
        f"Total Prompts: {summary.total_prompts}",
    ]
    # Only when something failed, so that a clean run reads exactly like the blueprint's file.
    if summary.failed:
        lines.append(f"Failed Prompts: {summary.failed}")
    lines += [
        f"Average Latency: {seconds(summary.average_s)}",
        f"Max Latency: {seconds(summary.max_s)}",
        f"Min Latency: {seconds(summary.min_s)}",
    ]
    return "".join(_prompt_block(r) for r in run.results) + "\n".join(lines) + "\n"


def results_document(run: ClientRun, settings: ClientSettings) -> ResultsDocument:
    return ResultsDocument(
        url=run.url,
        endpoint=run.endpoint,
        model=run.model,
        settings=RequestSettings(
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=settings.top_k if settings.endpoint is Endpoint.vllm else None,
            concurrency=settings.concurrency,
            timeout_s=settings.timeout_s,
        ),
        warmup_error=run.warmup_error,
        results=run.results,
        summary=summarize(run.results),
    )


def format_results_json(run: ClientRun, settings: ClientSettings) -> str:
    return results_document(run, settings).model_dump_json(indent=2) + "\n"
