"""One log line per API request: route, model, status, duration and the caller's key id. Prompts
are user data: left out unless `logging.log_prompts` is on, and then cut to max_logged_chars."""

from __future__ import annotations

import logging

from pydantic import BaseModel

from rayvllm.config import LogConfig
from rayvllm.server.protocol import ChatCompletionRequest, CompletionRequest, LegacyVLLMRequest

log = logging.getLogger("rayvllm.requests")


def prompt_text(body: BaseModel | None) -> str:
    if isinstance(body, ChatCompletionRequest):
        return "\n".join(f"{m.role}: {m.text()}" for m in body.messages)
    if isinstance(body, CompletionRequest):
        return body.prompt if isinstance(body.prompt, str) else str(body.prompt)
    if isinstance(body, LegacyVLLMRequest):
        return body.prompt
    return ""


def clipped(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, escaped onto one line (no forged log lines)."""
    shown = repr(text[:limit])
    return shown + (f" (+{len(text) - limit} chars)" if len(text) > limit else "")


def enable(config: LogConfig) -> None:
    """Prompt logging writes at INFO: make sure that level reaches a handler."""
    if not config.log_prompts:
        return
    log.setLevel(logging.INFO)
    if not log.hasHandlers():  # else Python's last-resort handler would drop INFO
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        log.addHandler(handler)


def log_request(
    config: LogConfig,
    *,
    route: str,
    model: str,
    status: int,
    seconds: float,
    caller: str,
    body: BaseModel | None,
) -> None:
    level = logging.INFO if config.log_prompts else logging.DEBUG
    if not log.isEnabledFor(level):
        return
    line = "%s model=%s status=%d seconds=%.3f caller=%s"
    args: list[object] = [route, model or "-", status, seconds, caller]
    if config.log_prompts and body is not None:
        line += " prompt=%s"
        args.append(clipped(prompt_text(body), config.max_logged_chars))
    log.log(level, line, *args)
