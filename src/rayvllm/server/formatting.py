"""OpenAI's reply shapes: streamed chunks (built as bytes with a precomputed prefix, since they
are on the per-token path) and whole responses, with logprobs in chat and completions form."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from rayvllm.engine.base import ChoiceDelta, TokenLogprob


class ChunkHead:
    """The fields every chunk of one response repeats, serialized once."""

    __slots__ = ("created", "id", "model", "object", "prefix")

    def __init__(self, id_: str, object_: str, model: str) -> None:
        self.id, self.object, self.model = id_, object_, model
        self.created = int(time.time())
        head = {"id": id_, "object": object_, "created": self.created, "model": model}
        self.prefix = b"data: " + json.dumps(head)[:-1].encode() + b', "choices": '


def _chat_logprobs(items: list[TokenLogprob] | None) -> dict[str, Any] | None:
    if items is None:
        return None
    return {
        "content": [
            {
                "token": t.token,
                "logprob": t.logprob,
                "bytes": list(t.token.encode()),
                "top_logprobs": [
                    {"token": tok, "logprob": lp, "bytes": list(tok.encode())} for tok, lp in t.top
                ],
            }
            for t in items
        ]
    }


def _completion_logprobs(items: list[TokenLogprob] | None, offset: int) -> dict[str, Any] | None:
    if items is None:
        return None
    offsets, pos = [], offset
    for t in items:
        offsets.append(pos)
        pos += len(t.token)
    return {
        "tokens": [t.token for t in items],
        "token_logprobs": [t.logprob for t in items],
        "top_logprobs": [dict(t.top) for t in items],
        "text_offset": offsets,
    }


def chat_opening(head: ChunkHead, n: int) -> bytes:
    choices = [
        {
            "index": i,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
        for i in range(n)
    ]
    return head.prefix + json.dumps(choices).encode() + b"}\n\n"


def chat_chunk(head: ChunkHead, deltas: list[ChoiceDelta]) -> bytes:
    choices = [
        {
            "index": d.index,
            "delta": {"content": d.text} if d.text or not d.finish_reason else {},
            "logprobs": _chat_logprobs(d.logprobs),
            "finish_reason": d.finish_reason,
        }
        for d in deltas
    ]
    return head.prefix + json.dumps(choices).encode() + b"}\n\n"


def completion_chunk(head: ChunkHead, deltas: list[ChoiceDelta]) -> bytes:
    choices = [
        {
            "index": d.index,
            "text": d.text,
            "logprobs": _completion_logprobs(d.logprobs, 0),
            "finish_reason": d.finish_reason,
        }
        for d in deltas
    ]
    return head.prefix + json.dumps(choices).encode() + b"}\n\n"


def usage_chunk(head: ChunkHead, usage: dict[str, int]) -> bytes:
    return head.prefix + b'[], "usage": ' + json.dumps(usage).encode() + b"}\n\n"


@dataclass(slots=True)
class Choice:
    """A whole choice, accumulated from its deltas."""

    index: int
    text: str = ""
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None
    parts: list[str] = field(default_factory=list)

    def add(self, delta: ChoiceDelta) -> None:
        self.parts.append(delta.text)
        self.text = ""  # joined lazily in `full_text`
        if delta.logprobs is not None:
            self.logprobs = (self.logprobs or []) + delta.logprobs
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason

    def full_text(self) -> str:
        if self.parts:
            self.text, self.parts = self.text + "".join(self.parts), []
        return self.text


def chat_response(head: ChunkHead, choices: list[Choice], usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": head.id,
        "object": "chat.completion",
        "created": head.created,
        "model": head.model,
        "choices": [
            {
                "index": c.index,
                "message": {"role": "assistant", "content": c.full_text()},
                "logprobs": _chat_logprobs(c.logprobs),
                "finish_reason": c.finish_reason,
            }
            for c in choices
        ],
        "usage": usage,
    }


def completion_response(
    head: ChunkHead, choices: list[Choice], usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": head.id,
        "object": "text_completion",
        "created": head.created,
        "model": head.model,
        "choices": [
            {
                "index": c.index,
                "text": c.full_text(),
                "logprobs": _completion_logprobs(c.logprobs, 0),
                "finish_reason": c.finish_reason,
            }
            for c in choices
        ],
        "usage": usage,
    }
