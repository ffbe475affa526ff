from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from client_fakes import FakeServer, openai_error
from pydantic import SecretStr

from rayvllm.client.runner import (
    ClientSettings,
    Endpoint,
    NoModelError,
    ServerUnreachableError,
    load_prompts,
    run_client,
)

PROMPTS = ["What is a GAN?", "How does a VAE work?", "What is latent space?"]


async def test_chat_token_length_is_the_servers_usage_count_not_a_word_count(
    server: FakeServer,
) -> None:
    run = await run_client(ClientSettings(), PROMPTS, client=server.client())

    assert [r.completion_tokens for r in run.results] == [42, 42, 42]
    assert run.results[0].response == "Answer to What is a GAN?"


async def test_chat_token_length_is_unknown_when_the_server_sends_no_usage() -> None:
    server = FakeServer(completion_tokens=None)
    run = await run_client(ClientSettings(), PROMPTS, client=server.client())

    assert all(r.ok and r.completion_tokens is None for r in run.results)


async def test_chat_asks_the_first_listed_model_with_the_blueprint_system_prompt() -> None:
    server = FakeServer(models=("first-model", "second-model"))
    settings = ClientSettings(max_tokens=64, temperature=0.5)
    run = await run_client(settings, ["What is a GAN?"], client=server.client())

    assert run.model == "first-model"
    assert server.prompt_posts == [
        {
            "model": "first-model",
            "messages": [
                {"role": "system", "content": "Keep short answers of no more than 100 sentences."},
                {"role": "user", "content": "What is a GAN?"},
            ],
            "max_tokens": 64,
            "temperature": 0.5,
            "top_p": 1.0,
            "stream": False,
        }
    ]


async def test_a_model_given_by_the_user_skips_the_models_lookup(server: FakeServer) -> None:
    settings = ClientSettings(model="my-model")
    run = await run_client(settings, PROMPTS, client=server.client())

    assert run.model == "my-model"
    assert {body["model"] for body in server.prompt_posts} == {"my-model"}


async def test_vllm_sends_the_blueprint_payload_exactly(server: FakeServer) -> None:
    settings = ClientSettings(endpoint=Endpoint.vllm)
    await run_client(settings, ["What is a GAN?"], client=server.client())

    path, body = server.posts[-1]
    assert path == "/vllm"
    assert body == {
        "prompt": "<s>[INST]<<SYS>>\nKeep short answers of no more than 100 sentences.\n"
        "<</SYS>>\n\nWhat is a GAN?[/INST]",
        "stream": False,
        "max_tokens": 512,
        "temperature": 0.01,
        "top_p": 1,
        "top_k": 20,
        "stop": None,
    }


async def test_vllm_response_is_the_completion_without_the_echoed_prompt(
    server: FakeServer,
) -> None:
    run = await run_client(ClientSettings(endpoint=Endpoint.vllm), PROMPTS, client=server.client())

    assert [r.response for r in run.results] == ["A completion."] * 3
    assert [r.completion_tokens for r in run.results] == [42] * 3
    assert run.model is None


async def test_vllm_token_length_is_unknown_without_the_servers_header() -> None:
    server = FakeServer(completion_tokens=None)
    settings = ClientSettings(endpoint=Endpoint.vllm)
    run = await run_client(settings, PROMPTS, client=server.client())

    assert all(r.ok and r.completion_tokens is None for r in run.results)


async def test_one_uncounted_warm_up_goes_before_the_prompts(server: FakeServer) -> None:
    run = await run_client(ClientSettings(), PROMPTS, client=server.client())

    warmup_path, warmup = server.posts[0]
    assert warmup_path == "/v1/chat/completions"
    assert warmup["messages"][-1]["content"] == "Warmup"
    assert warmup["max_tokens"] == 1
    assert len(server.posts) == len(PROMPTS) + 1
    assert [r.prompt for r in run.results] == PROMPTS


async def test_a_failed_warm_up_is_reported_and_the_prompts_still_run() -> None:
    def fail_warmup(path: str, body: dict[str, Any]) -> httpx.Response | None:
        if body["messages"][-1]["content"] == "Warmup":
            return openai_error(503, "engine is starting")
        return None

    server = FakeServer(fail=fail_warmup)
    run = await run_client(ClientSettings(), PROMPTS, client=server.client())

    assert run.warmup_error == "HTTP 503: engine is starting"
    assert all(r.ok for r in run.results)


@pytest.mark.parametrize(("concurrency", "expected"), [(1, 1), (3, 3), (None, 10)])
async def test_concurrency_bounds_the_prompts_in_flight(
    concurrency: int | None, expected: int
) -> None:
    server = FakeServer(delay_s=0.01)
    prompts = [f"prompt {i}" for i in range(10)]
    run = await run_client(ClientSettings(concurrency=concurrency), prompts, client=server.client())

    assert server.max_in_flight == expected
    assert [r.prompt for r in run.results] == prompts


async def test_a_failed_prompt_carries_the_status_and_the_servers_message() -> None:
    def fail_second(path: str, body: dict[str, Any]) -> httpx.Response | None:
        if body["messages"][-1]["content"] == PROMPTS[1]:
            return openai_error(400, "This model's maximum context length is 2048 tokens")
        return None

    server = FakeServer(fail=fail_second)
    run = await run_client(ClientSettings(), PROMPTS, client=server.client())

    failed = run.results[1]
    assert (failed.ok, failed.status_code, failed.response) == (False, 400, None)
    assert failed.error == "HTTP 400: This model's maximum context length is 2048 tokens"
    assert failed.response_time_s is not None
    assert run.failures == [failed]


async def test_an_unauthorized_reply_says_how_to_pass_a_key() -> None:
    server = FakeServer(fail=lambda path, body: openai_error(401, "Invalid API key"))
    run = await run_client(ClientSettings(model="m"), PROMPTS, client=server.client())

    assert run.results[0].error == (
        "HTTP 401: Invalid API key - pass --api-key-file or set RAYVLLM_API_KEY"
    )


async def test_a_non_openai_error_body_is_still_reported() -> None:
    server = FakeServer(fail=lambda path, body: httpx.Response(500, text="Internal Server Error"))
    run = await run_client(ClientSettings(model="m"), PROMPTS, client=server.client())

    assert run.results[0].error == "HTTP 500: Internal Server Error"


async def test_the_api_key_goes_in_the_authorization_header(server: FakeServer) -> None:
    settings = ClientSettings(api_key=SecretStr("s3cret"))
    await run_client(settings, PROMPTS, client=server.client())

    assert {h["authorization"] for h in server.headers} == {"Bearer s3cret"}


async def test_no_server_stops_the_run_and_says_to_start_one() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    with pytest.raises(ServerUnreachableError) as caught:
        await run_client(ClientSettings(endpoint=Endpoint.vllm), PROMPTS, client=client)

    assert str(caught.value) == (
        "No server at http://127.0.0.1:8000 - start one with `rayvllm serve`, "
        "or point --url at a running one"
    )


async def test_a_timed_out_prompt_fails_with_a_hint() -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        if b"Warmup" in request.content:
            return httpx.Response(200, json={"text": ["Warmup ok"]})
        raise httpx.ReadTimeout("timed out", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(time_out))
    settings = ClientSettings(endpoint=Endpoint.vllm, timeout_s=5)
    run = await run_client(settings, PROMPTS, client=client)

    assert all(not r.ok and r.response_time_s is None for r in run.results)
    assert run.results[0].error == (
        "no reply within 5s - raise --timeout or check the server's logs"
    )


async def test_a_server_with_no_models_asks_for_one() -> None:
    server = FakeServer(models=())
    with pytest.raises(NoModelError, match="lists no model - pass --model"):
        await run_client(ClientSettings(), PROMPTS, client=server.client())


def test_the_packaged_prompts_are_the_blueprints_twenty() -> None:
    prompts = load_prompts()

    assert len(prompts) == 20
    assert prompts[0] == "Explain the concept of generative adversarial networks (GANs)."
    assert prompts[-1] == "Describe the use of generative AI in autonomous vehicles."


def test_blueprint_inst_lines_are_unwrapped_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("[INST] What is a GAN? [/INST]\n\n  Plain question?  \n")

    assert load_prompts(path) == ["What is a GAN?", "Plain question?"]
