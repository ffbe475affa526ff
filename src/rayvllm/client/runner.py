"""Sends the prompts of `rayvllm client` over HTTP and times each reply: the blueprint's client.py,
with token counts taken from the server instead of from splitting words.

Errors raised here::

    ClientError                   the run cannot go on
     +-- NoModelError             GET /v1/models listed no model to send prompts to
     +-- RequestFailedError       one request got no usable reply (status and time when known)
          +-- ServerUnreachableError   nothing answers at the URL
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Sequence
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

DEFAULT_URL = "http://127.0.0.1:8000"
# The lead's server sets this on /vllm replies, whose body must keep the blueprint's exact shape.
COMPLETION_TOKENS_HEADER = "x-rayvllm-completion-tokens"
# The blueprint's system prompt and Mistral/Llama-2 [INST] wrapping, kept byte for byte.
BLUEPRINT_SYSTEM_PROMPT = "Keep short answers of no more than 100 sentences."
WARMUP_PROMPT = "Warmup"
API_KEY_HINT = "pass --api-key-file or set RAYVLLM_API_KEY"

# The blueprint's own prompts.txt wraps each line in [INST] ... [/INST]; we wrap at send time.
_INST_LINE = re.compile(r"^(?:<s>)?\s*\[INST\]\s*(?P<prompt>.*?)\s*\[/INST\]$", re.DOTALL)


class Endpoint(StrEnum):
    chat = "chat"
    vllm = "vllm"


class ClientSettings(BaseModel):
    """What one `rayvllm client` run sends, and where."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(DEFAULT_URL, description="Base URL of the server.")
    endpoint: Endpoint = Field(
        Endpoint.chat,
        description="`chat`: POST /v1/chat/completions; `vllm`: the blueprint's POST /vllm.",
    )
    model: str | None = Field(None, description="Model to ask; the first of /v1/models if unset.")
    concurrency: int | None = Field(
        None, ge=1, description="Most prompts in flight at once; all of them if unset."
    )
    max_tokens: int = Field(512, gt=0, description="Tokens generated per prompt at most.")
    temperature: float = Field(0.01, ge=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling probability mass.")
    top_k: int = Field(20, description="Top-k sampling; sent on /vllm only, as the blueprint did.")
    timeout_s: float = Field(180.0, gt=0, description="Seconds one request may take.")
    api_key: SecretStr | None = Field(None, description="Bearer token, when the server wants one.")

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")


class PromptResult(BaseModel):
    """The outcome of one prompt."""

    index: int = Field(description="Position of the prompt in the prompts file, from 0.")
    prompt: str
    ok: bool
    response_time_s: float | None = Field(
        description="Wall-clock seconds of the request; None when no reply came back."
    )
    completion_tokens: int | None = Field(
        description="Tokens generated, as counted by the server; None when it did not say."
    )
    response: str | None = Field(description="The completion, without the prompt.")
    status_code: int | None = Field(description="HTTP status; None when no reply came back.")
    error: str | None = Field(description="Why the prompt failed; None when it succeeded.")


class ClientRun(BaseModel):
    """Everything one run learned, in prompt order."""

    url: str
    endpoint: Endpoint
    model: str | None
    warmup_error: str | None = Field(description="Why the uncounted warm-up request failed.")
    results: list[PromptResult]

    @property
    def failures(self) -> list[PromptResult]:
        return [r for r in self.results if not r.ok]


class ProgressHook(Protocol):
    def warmed_up(self, error: str | None) -> None: ...

    def finished(self, result: PromptResult) -> None: ...


class ClientError(Exception):
    """The run cannot go on."""


class NoModelError(ClientError):
    pass


class RequestFailedError(ClientError):
    def __init__(
        self, message: str, *, status_code: int | None = None, response_time_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response_time_s = response_time_s


class ServerUnreachableError(RequestFailedError):
    pass


class _Completion(BaseModel):
    text: str
    completion_tokens: int | None
    response_time_s: float
    status_code: int


def unwrap_inst(line: str) -> str:
    """`[INST] question [/INST]` -> `question`; other lines unchanged."""
    match = _INST_LINE.match(line.strip())
    return match.group("prompt") if match else line.strip()


def load_prompts(path: Path | None = None) -> list[str]:
    """One prompt per non-blank line; the packaged 20 blueprint prompts when `path` is None."""
    if path is None:
        text = resources.files("rayvllm.client").joinpath("prompts.txt").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    return [unwrap_inst(line) for line in text.splitlines() if line.strip()]


def blueprint_prompt(prompt: str) -> str:
    return f"<s>[INST]<<SYS>>\n{BLUEPRINT_SYSTEM_PROMPT}\n<</SYS>>\n\n{prompt}[/INST]"


def vllm_payload(prompt: str, settings: ClientSettings, max_tokens: int) -> dict[str, Any]:
    """The blueprint client's POST /vllm body, field for field."""
    return {
        "prompt": blueprint_prompt(prompt),
        "stream": False,
        "max_tokens": max_tokens,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "top_k": settings.top_k,
        "stop": None,
    }


def chat_payload(
    prompt: str, settings: ClientSettings, model: str | None, max_tokens: int
) -> dict[str, Any]:
    """The same request on the OpenAI API: the chat template does the [INST] wrapping."""
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": BLUEPRINT_SYSTEM_PROMPT},
            {"role": "user", "content": prompt},
        ],
        "max_tokens": max_tokens,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "stream": False,
    }


def unreachable_message(url: str) -> str:
    return f"No server at {url} - start one with `rayvllm serve`, or point --url at a running one"


def server_error_message(response: httpx.Response) -> str:
    """The OpenAI error body's message, or what else the server said, prefixed by the status."""
    message: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"]
        elif isinstance(error, str):
            message = error
        elif "detail" in body:
            message = str(body["detail"])
    if not message:
        message = response.text.strip()[:500] or response.reason_phrase
    text = f"HTTP {response.status_code}: {message}"
    if response.status_code == 401:
        text += f" - {API_KEY_HINT}"
    return text


def _headers(settings: ClientSettings) -> dict[str, str]:
    if settings.api_key is None:
        return {}
    return {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}


async def _send(
    client: httpx.AsyncClient, settings: ClientSettings, method: str, path: str, **kwargs: Any
) -> tuple[httpx.Response, float]:
    start = time.perf_counter()
    try:
        response = await client.request(
            method,
            settings.base_url + path,
            headers=_headers(settings),
            timeout=settings.timeout_s,
            **kwargs,
        )
    except httpx.ConnectError as exc:
        raise ServerUnreachableError(unreachable_message(settings.base_url)) from exc
    except httpx.TimeoutException as exc:
        raise RequestFailedError(
            f"no reply within {settings.timeout_s:g}s - raise --timeout or check the server's logs"
        ) from exc
    except httpx.TransportError as exc:
        raise RequestFailedError(f"the connection failed: {exc!r}") from exc
    elapsed = time.perf_counter() - start
    if not response.is_success:
        raise RequestFailedError(
            server_error_message(response),
            status_code=response.status_code,
            response_time_s=elapsed,
        )
    return response, elapsed


def _json(response: httpx.Response, elapsed: float) -> Any:
    # The blueprint's /vllm replies carry no JSON content type, so parse the bytes as they come.
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise RequestFailedError(
            f"the reply is not JSON: {response.text[:200]!r}",
            status_code=response.status_code,
            response_time_s=elapsed,
        ) from exc


async def first_model_id(client: httpx.AsyncClient, settings: ClientSettings) -> str:
    response, elapsed = await _send(client, settings, "GET", "/v1/models")
    body = _json(response, elapsed)
    models = body.get("data") if isinstance(body, dict) else None
    if not models or not isinstance(models[0], dict) or "id" not in models[0]:
        raise NoModelError(f"{settings.base_url}/v1/models lists no model - pass --model")
    return str(models[0]["id"])


async def _complete(
    client: httpx.AsyncClient,
    settings: ClientSettings,
    model: str | None,
    prompt: str,
    max_tokens: int,
) -> _Completion:
    if settings.endpoint is Endpoint.vllm:
        payload = vllm_payload(prompt, settings, max_tokens)
        response, elapsed = await _send(client, settings, "POST", "/vllm", json=payload)
        body = _json(response, elapsed)
        try:
            text = str(body["text"][0])
        except (TypeError, KeyError, IndexError) as exc:
            raise RequestFailedError(
                f"the /vllm reply has no text: {response.text[:200]!r}",
                status_code=response.status_code,
                response_time_s=elapsed,
            ) from exc
        text = text.removeprefix(payload["prompt"])
        header = response.headers.get(COMPLETION_TOKENS_HEADER)
        tokens = int(header) if header is not None and header.strip().isdigit() else None
    else:
        payload = chat_payload(prompt, settings, model, max_tokens)
        response, elapsed = await _send(
            client, settings, "POST", "/v1/chat/completions", json=payload
        )
        body = _json(response, elapsed)
        try:
            text = str(body["choices"][0]["message"]["content"] or "")
        except (TypeError, KeyError, IndexError) as exc:
            raise RequestFailedError(
                f"the reply has no choices[0].message: {response.text[:200]!r}",
                status_code=response.status_code,
                response_time_s=elapsed,
            ) from exc
        usage = body.get("usage") if isinstance(body, dict) else None
        count = usage.get("completion_tokens") if isinstance(usage, dict) else None
        tokens = count if isinstance(count, int) else None
    return _Completion(
        text=text.strip(),
        completion_tokens=tokens,
        response_time_s=elapsed,
        status_code=response.status_code,
    )


async def send_prompt(
    client: httpx.AsyncClient,
    settings: ClientSettings,
    model: str | None,
    index: int,
    prompt: str,
) -> PromptResult:
    """One prompt, timed; a failure becomes a result, never an exception."""
    try:
        completion = await _complete(client, settings, model, prompt, settings.max_tokens)
    except RequestFailedError as exc:
        return PromptResult(
            index=index,
            prompt=prompt,
            ok=False,
            response_time_s=exc.response_time_s,
            completion_tokens=None,
            response=None,
            status_code=exc.status_code,
            error=str(exc),
        )
    return PromptResult(
        index=index,
        prompt=prompt,
        ok=True,
        response_time_s=completion.response_time_s,
        completion_tokens=completion.completion_tokens,
        response=completion.text,
        status_code=completion.status_code,
        error=None,
    )


async def run_client(
    settings: ClientSettings,
    prompts: Sequence[str],
    *,
    client: httpx.AsyncClient | None = None,
    progress: ProgressHook | None = None,
) -> ClientRun:
    """Warm up once (not counted), then send every prompt, at most `concurrency` at a time.

    Raises ServerUnreachableError when nothing answers, rather than failing every prompt alike.
    """
    if not prompts:
        raise ValueError("no prompts to send")
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(httpx.AsyncClient())
        model = settings.model
        if model is None and settings.endpoint is Endpoint.chat:
            model = await first_model_id(client, settings)

        warmup_error: str | None = None
        try:
            await _complete(client, settings, model, WARMUP_PROMPT, max_tokens=1)
        except ServerUnreachableError:
            raise
        except RequestFailedError as exc:
            warmup_error = str(exc)
        if progress is not None:
            progress.warmed_up(warmup_error)

        slots = asyncio.Semaphore(settings.concurrency or len(prompts))

        async def bounded(index: int, prompt: str) -> PromptResult:
            async with slots:
                result = await send_prompt(client, settings, model, index, prompt)
            if progress is not None:
                progress.finished(result)
            return result

        results = await asyncio.gather(*(bounded(i, p) for i, p in enumerate(prompts)))
    return ClientRun(
        url=settings.base_url,
        endpoint=settings.endpoint,
        model=model,
        warmup_error=warmup_error,
        results=list(results),
    )
