from __future__ import annotations

import json

from pydantic import SecretStr

from rayvllm.client.report import SEPARATOR, format_results_json, format_results_txt
from rayvllm.client.runner import ClientRun, ClientSettings, Endpoint, PromptResult


def ok(index: int, prompt: str, seconds: float, tokens: int | None, text: str) -> PromptResult:
    return PromptResult(
        index=index,
        prompt=prompt,
        ok=True,
        response_time_s=seconds,
        completion_tokens=tokens,
        response=text,
        status_code=200,
        error=None,
    )


def failed(
    index: int, prompt: str, seconds: float | None, status: int | None, error: str
) -> PromptResult:
    return PromptResult(
        index=index,
        prompt=prompt,
        ok=False,
        response_time_s=seconds,
        completion_tokens=None,
        response=None,
        status_code=status,
        error=error,
    )


def a_run(*results: PromptResult) -> ClientRun:
    return ClientRun(
        url="http://127.0.0.1:8000",
        endpoint=Endpoint.chat,
        model="smollm2-135m-instruct",
        warmup_error=None,
        results=list(results),
    )


def test_results_txt_reads_like_the_blueprints() -> None:
    run = a_run(
        ok(0, "What is a GAN?", 1.234, 17, "Two networks."),
        ok(1, "What is a VAE?", 3.0, 5, "An autoencoder."),
    )

    assert SEPARATOR == "=" * 80
    assert format_results_txt(run) == (
        "Prompt: What is a GAN?\n"
        "Response Time: 1.23 seconds\n"
        "Token Length: 17\n"
        "Response: Two networks.\n"
        f"{'=' * 80}\n"
        "Prompt: What is a VAE?\n"
        "Response Time: 3.00 seconds\n"
        "Token Length: 5\n"
        "Response: An autoencoder.\n"
        f"{'=' * 80}\n"
        "\n"
        "Summary of Latency:\n"
        "Total Prompts: 2\n"
        "Average Latency: 2.12 seconds\n"
        "Max Latency: 3.00 seconds\n"
        "Min Latency: 1.23 seconds\n"
    )


def test_an_unknown_token_count_reads_n_a_never_a_word_count() -> None:
    text = format_results_txt(a_run(ok(0, "Q?", 0.5, None, "three words here")))

    assert "Token Length: n/a\n" in text


def test_failures_are_shown_and_left_out_of_the_latency_figures() -> None:
    run = a_run(
        ok(0, "Q1?", 2.0, 4, "A1."),
        failed(1, "Q2?", 0.01, 400, "HTTP 400: prompt too long"),
        failed(2, "Q3?", None, None, "No server at http://127.0.0.1:8000"),
    )
    text = format_results_txt(run)

    assert (
        "Prompt: Q2?\nResponse Time: 0.01 seconds\nToken Length: n/a\n"
        "Response: ERROR HTTP 400: prompt too long\n" in text
    )
    assert "Prompt: Q3?\nResponse Time: N/A\n" in text
    assert text.endswith(
        "Total Prompts: 3\nFailed Prompts: 2\nAverage Latency: 2.00 seconds\n"
        "Max Latency: 2.00 seconds\nMin Latency: 2.00 seconds\n"
    )


def test_when_every_prompt_fails_the_latency_is_n_a() -> None:
    text = format_results_txt(a_run(failed(0, "Q?", None, None, "no reply")))

    assert text.endswith("Average Latency: N/A\nMax Latency: N/A\nMin Latency: N/A\n")


def test_json_has_a_schema_version_records_and_summary_but_no_api_key() -> None:
    run = a_run(ok(0, "Q1?", 2.0, 4, "A1."), failed(1, "Q2?", 1.0, 500, "HTTP 500: boom"))
    settings = ClientSettings(api_key=SecretStr("s3cret-key"), concurrency=4)
    text = format_results_json(run, settings)
    document = json.loads(text)

    assert "s3cret-key" not in text
    assert document["schema_version"] == 1
    assert document["model"] == "smollm2-135m-instruct"
    assert document["settings"]["concurrency"] == 4
    assert document["settings"]["top_k"] is None
    assert [r["completion_tokens"] for r in document["results"]] == [4, None]
    assert document["results"][1]["error"] == "HTTP 500: boom"
    assert document["summary"] == {
        "total_prompts": 2,
        "succeeded": 1,
        "failed": 1,
        "average_s": 2.0,
        "max_s": 2.0,
        "min_s": 2.0,
        "total_completion_tokens": 4,
    }
